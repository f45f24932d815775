"""`/metrics` for Prometheus: serving and job metrics, read from the database at scrape time.

Serving runs in several processes, so in-process counters would each tell part of the story;
the per-minute aggregates are the whole of it. Scraping reads a short recent window (the last
METRICS_WINDOW_MINUTES full minutes) instead of all history, so a scrape costs the same after a
year as after a day: request, error and row counts are gauges over that window, and latency a
histogram of it (`histogram_quantile(0.95, causeway_endpoint_latency_ms_bucket)` works as is,
without `rate()`).

Access: a bearer token (METRICS_TOKEN) and/or client networks (METRICS_ALLOWED_NETWORKS, CIDRs).
Neither configured: 404, the endpoint does not exist. A token configured and not given by a
client outside the allowed networks: 401. Only networks configured and the client outside: 404.
"""

from __future__ import annotations

import datetime as dt
import hmac
import ipaddress

from django.conf import settings
from django.db.models import Count, Sum
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.core import CollectorRegistry, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.exposition import generate_latest

from apps.deployments.models import Endpoint
from apps.jobs.models import Job
from apps.monitoring import selectors
from apps.monitoring.models import LATENCY_BUCKETS_MS, LATENCY_FIELDS, Heartbeat, TrafficMinute
from apps.monitoring.telemetry import recorder

WINDOW_MINUTES = 5


class CausewayCollector:
    def collect(self):
        now = timezone.now().replace(second=0, microsecond=0)
        start = now - dt.timedelta(minutes=WINDOW_MINUTES)
        names = dict(Endpoint.objects.values_list("pk", "name"))
        labels = ["endpoint"]
        requests = GaugeMetricFamily(
            "causeway_endpoint_requests", f"Requests served in the last {WINDOW_MINUTES} full minutes.", labels=labels
        )
        errors = GaugeMetricFamily(
            "causeway_endpoint_errors", f"Failed requests in the last {WINDOW_MINUTES} full minutes.", labels=labels
        )
        rows = GaugeMetricFamily(
            "causeway_endpoint_rows", f"Rows scored in the last {WINDOW_MINUTES} full minutes.", labels=labels
        )
        latency = HistogramMetricFamily(
            "causeway_endpoint_latency_ms",
            f"Request latency (ms) over the last {WINDOW_MINUTES} full minutes.",
            labels=labels,
        )
        sums = {"requests": Sum("requests"), "errors": Sum("errors"), "rows": Sum("rows"), "ms": Sum("latency_sum_ms")}
        sums |= {name: Sum(name) for name in LATENCY_FIELDS}
        for row in (
            TrafficMinute.objects.filter(minute__gte=start, minute__lt=now)
            .values("endpoint_id")
            .annotate(**sums)
            .order_by()
        ):
            name = names.get(row["endpoint_id"], str(row["endpoint_id"]))
            requests.add_metric([name], row["requests"] or 0)
            errors.add_metric([name], row["errors"] or 0)
            rows.add_metric([name], row["rows"] or 0)
            cumulative, buckets = 0, []
            for bound, field in zip([*LATENCY_BUCKETS_MS, float("inf")], LATENCY_FIELDS, strict=True):
                cumulative += row[field] or 0
                buckets.append(("+Inf" if bound == float("inf") else repr(float(bound)), cumulative))
            latency.add_metric([name], buckets, row["ms"] or 0.0)
        yield from (requests, errors, rows, latency)

        drift = GaugeMetricFamily("causeway_endpoint_drift_score", "Latest drift score (highest PSI).", labels=labels)
        verdict = GaugeMetricFamily(
            "causeway_endpoint_drift_alert", "1 when the latest drift verdict is alert, 0.5 warn, 0 ok.", labels=labels
        )
        for endpoint_id, report in selectors.latest_verdicts(names).items():
            name = names[endpoint_id]
            if report.overall_score is not None:
                drift.add_metric([name], report.overall_score)
            verdict.add_metric([name], {"alert": 1.0, "warn": 0.5}.get(report.verdict, 0.0))
        yield from (drift, verdict)

        jobs = GaugeMetricFamily("causeway_jobs", "Jobs by kind and status.", labels=["kind", "status"])
        for row in Job.objects.values("kind", "status").annotate(n=Count("pk")).order_by():
            jobs.add_metric([row["kind"], row["status"]], row["n"])
        yield jobs
        failed = GaugeMetricFamily("causeway_jobs_failed_last_hour", "Jobs that failed in the last hour.")
        failed.add_metric(
            [], Job.objects.filter(status=Job.Status.FAILED, finished_at__gte=now - dt.timedelta(hours=1)).count()
        )
        yield failed
        heartbeat = Heartbeat.objects.filter(key="worker").first()
        if heartbeat is not None:
            age = GaugeMetricFamily(
                "causeway_worker_heartbeat_age_seconds", "Seconds since a worker last ran a periodic task."
            )
            age.add_metric([], (timezone.now() - heartbeat.at).total_seconds())
            yield age
        buffered = GaugeMetricFamily(
            "causeway_telemetry_buffered", "Invocations waiting to be flushed in this process."
        )
        buffered.add_metric([], recorder.pending())
        yield buffered


def _client_allowed(request: HttpRequest, networks: list[str]) -> bool:
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    for network in networks:
        try:
            if address in ipaddress.ip_network(network, strict=False):
                return True
        except ValueError:
            continue
    return False


def _token_matches(request: HttpRequest, token: str) -> bool:
    header = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _, given = header.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())


@require_GET
@never_cache
def metrics(request: HttpRequest) -> HttpResponse:
    token = settings.METRICS_TOKEN
    networks = settings.METRICS_ALLOWED_NETWORKS
    if not token and not networks:
        return HttpResponse("Not found.\n", status=404, content_type="text/plain")
    allowed = (bool(networks) and _client_allowed(request, networks)) or (
        bool(token) and _token_matches(request, token)
    )
    if not allowed:
        if token:
            response = HttpResponse("A bearer token is required.\n", status=401, content_type="text/plain")
            response["WWW-Authenticate"] = 'Bearer realm="metrics"'
            return response
        return HttpResponse("Not found.\n", status=404, content_type="text/plain")
    registry = CollectorRegistry(auto_describe=False)
    registry.register(CausewayCollector())
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
