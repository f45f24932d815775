"""Builders for the alerting tests: an environment with a live endpoint, rules on it, failed
jobs that concern it, and a real webhook receiver (an http.server thread on 127.0.0.1)."""

from __future__ import annotations

import contextlib
import http.server
import itertools
import json
import socket
import threading
from datetime import timedelta

import pytest
from django.contrib.contenttypes.models import ContentType
from django.utils import timezone

from apps.accounts import services as accounts
from apps.alerting import services, webhook_urls
from apps.alerting.models import AlertRule
from apps.deployments.models import Endpoint, Environment
from apps.jobs.models import Job
from tests.conftest import make_user

_names = itertools.count(1)


@pytest.fixture(autouse=True)
def jobs_stay_queued_without_a_worker(request, monkeypatch):
    """Jobs (webhook deliveries) are recorded but not sent unless the test runs a worker."""
    if "celery_worker" not in request.fixturenames:
        monkeypatch.setattr("apps.jobs.services.send_job", lambda *, job_id: False)


@pytest.fixture(autouse=True)
def webhooks_may_reach_local_receivers(settings, monkeypatch):
    """The alerting tests post to a receiver on 127.0.0.1, which production refuses; and the
    sandbox has no DNS, so names under the reserved .test TLD resolve to a public address.
    tests/alerting/test_webhook_safety.py turns the first off and stubs DNS its own way."""
    settings.ALERTING_WEBHOOK_ALLOW_PRIVATE = True
    real_getaddrinfo = webhook_urls.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        if str(host).endswith(".test"):
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", port))]
        return real_getaddrinfo(host, port, *args, **kwargs)

    monkeypatch.setattr(webhook_urls, "getaddrinfo", getaddrinfo)


@pytest.fixture
def people(users):
    """The role users, an endpoint owner, and an on-call team (Platform Ops) with a member."""
    everyone = dict(users)
    everyone["owner_user"] = make_user("endpoint-owner")
    everyone["oncall"] = make_user("oncall-member")
    everyone["stranger"] = make_user("stranger")
    team = accounts.create_team(name="Platform Ops", by=users["admin"], lead=users["ops"])
    accounts.add_team_member(team=team, user=everyone["oncall"], by=users["admin"])
    everyone["ops_team"] = team
    return everyone


def make_environment(name: str | None = None, **fields) -> Environment:
    return Environment.objects.create(name=name or f"env-{next(_names)}", **fields)


def make_endpoint(owner, *, environment: Environment | None = None, name: str | None = None, team=None) -> Endpoint:
    return Endpoint.objects.create(
        name=name or f"endpoint-{next(_names)}",
        environment=environment or make_environment(),
        owner=owner,
        team=team,
    )


@pytest.fixture
def endpoint(people) -> Endpoint:
    environment = make_environment("production", deployer_team=people["ops_team"])
    return make_endpoint(people["owner_user"], environment=environment, name="churn-propensity")


def job_rule(endpoint: Endpoint, by, **fields) -> AlertRule:
    """A rule on failed jobs for the endpoint: fires at one failed job in the last 15 minutes."""
    fields.setdefault("name", "Failed jobs")
    fields.setdefault("threshold", 1)
    fields.setdefault("severity", "critical")
    return services.create_rule(by=by, kind=AlertRule.Kind.JOB_FAILURES, endpoint=endpoint, **fields)


def fail_job(endpoint: Endpoint, *, kind: str = "deployments.deploy", minutes_ago: float = 1) -> Job:
    finished = timezone.now() - timedelta(minutes=minutes_ago)
    return Job.objects.create(
        kind=kind,
        status=Job.Status.FAILED,
        target_type=ContentType.objects.get_for_model(Endpoint),
        target_id=str(endpoint.pk),
        target_label=endpoint.name,
        error="boom",
        created_at=finished - timedelta(seconds=5),
        finished_at=finished,
    )


def clear_failures() -> None:
    Job.objects.filter(status=Job.Status.FAILED).update(finished_at=timezone.now() - timedelta(days=1))


class Receiver:
    """A local HTTP server that records what it is sent (any method) and answers with the queued
    statuses (200 once they run out), `reply_headers` and `reply_body`."""

    def __init__(self):
        self.requests: list[dict] = []
        self.statuses: list[int] = []
        self.reply_headers: dict[str, str] = {}
        self.reply_body = b"ok"
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                body = self.rfile.read(length)
                receiver.requests.append(
                    {
                        "method": self.command,
                        "path": self.path,
                        "headers": dict(self.headers),
                        "body": body,
                        "json": json.loads(body) if body else None,
                    }
                )
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                for name, value in receiver.reply_headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(receiver.reply_body)))
                self.end_headers()
                # The client may stop reading a long body part-way, as it should.
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.wfile.write(receiver.reply_body)

            do_GET = do_PUT = do_POST

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.close()
