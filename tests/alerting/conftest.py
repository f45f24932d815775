"""Builders for the alerting tests: an environment with a live endpoint, rules on it, failed
jobs that concern it, and a real webhook receiver (an http.server thread on 127.0.0.1)."""

from __future__ import annotations

import http.server
import itertools
import json
import threading
from datetime import timedelta

import pytest
from django.contrib.contenttypes.models import ContentType
from django.utils import timezone

from apps.accounts import services as accounts
from apps.alerting import services
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
    """A local HTTP server that records what it is sent and answers with the queued statuses
    (200 once they run out)."""

    def __init__(self):
        self.requests: list[dict] = []
        self.statuses: list[int] = []
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                body = self.rfile.read(length)
                receiver.requests.append(
                    {"path": self.path, "headers": dict(self.headers), "body": body, "json": json.loads(body)}
                )
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

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
