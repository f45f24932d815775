"""Monitoring pages: the ops view (every visible endpoint's health with sparklines, the job
queue, worker and broker health, recent deployments), an endpoint's monitoring page with charts
over a chosen range, its drift reports, its monitoring settings, and the home page's health
card. Thin: reads in selectors, writes in services. An endpoint the user may not see is 404."""

from __future__ import annotations

import datetime as dt

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods

from apps.catalog.selectors import can_view_dataset_id
from apps.jobs.models import Job
from apps.jobs.selectors import jobs_visible_to, status_counts
from apps.monitoring import charts, selectors, services
from apps.monitoring.forms import MonitoringSettingsForm
from apps.monitoring.models import Heartbeat
from apps.monitoring.tasks import HEARTBEAT_KEY

HEARTBEAT_STALE_SECONDS = 60


def _fragment_url(url_name: str, **kwargs) -> str | None:
    """A downstream app's fragment URL, or None when that app is not installed."""
    try:
        return reverse(url_name, kwargs=kwargs or None)
    except NoReverseMatch:
        return None


def _endpoint_or_404(request: HttpRequest, name: str):
    endpoint = selectors.endpoint_for(request.user, name)
    if endpoint is None:
        raise Http404
    return endpoint


def _range(request: HttpRequest) -> str:
    key = request.GET.get("range", selectors.DEFAULT_RANGE)
    return key if key in selectors.RANGES else selectors.DEFAULT_RANGE


@login_required
@require_GET
def ops(request: HttpRequest) -> HttpResponse:
    now = timezone.now()
    endpoints = list(
        selectors.monitored_endpoints(request.user)
        .select_related("environment", "owner", "current_version__registered_model")
        .order_by("name")
    )
    ids = [e.pk for e in endpoints]
    hour_stats = selectors.window_stats_by_endpoint(ids, start=now - dt.timedelta(hours=1), end=now)
    drift = selectors.latest_verdicts(ids)
    lines = selectors.sparklines(ids, start=now - dt.timedelta(hours=24), end=now, step="hour")
    drift_lines = selectors.drift_score_series(ids, start=now - dt.timedelta(days=7))
    rows = []
    for endpoint in endpoints:
        health = selectors.health_of(endpoint, hour_stats[endpoint.pk], drift.get(endpoint.pk))
        points = lines.get(endpoint.pk, [])
        rows.append(
            {
                "endpoint": endpoint,
                "health": health,
                "drift": drift.get(endpoint.pk),
                "traffic": charts.sparkline([p["requests"] for p in points]),
                "latency": charts.sparkline([p["p95"] for p in points], color="#6f42c1"),
                "errors": charts.sparkline([p["error_rate"] for p in points], color="#dc3545"),
                "drift_line": charts.sparkline([s for _, s in drift_lines.get(endpoint.pk, [])], color="#fd7e14"),
            }
        )
    rows.sort(key=lambda r: (selectors.HEALTH_ORDER[r["health"].status], r["endpoint"].name))
    jobs = jobs_visible_to(request.user)
    context = {
        "rows": rows,
        "job_counts": status_counts(request.user),
        "running_jobs": list(jobs.filter(status=Job.Status.RUNNING).order_by("-started_at")[:10]),
        "failed_jobs": list(jobs.filter(status=Job.Status.FAILED).order_by("-finished_at")[:10]),
        "retrying_jobs": list(jobs.filter(status=Job.Status.QUEUED, attempts__gt=0).order_by("-created_at")[:10]),
        "revisions": list(selectors.recent_revisions(request.user, limit=10)),
        "open_alerts_url": _fragment_url("alerting:open_alerts_fragment"),
    }
    return render(request, "monitoring/ops.html", context)


@login_required
@require_GET
def health_fragment(request: HttpRequest) -> HttpResponse:
    """Worker, beat and broker health (loaded by htmx: the broker probe may take a moment)."""
    from apps.core import health

    heartbeat = Heartbeat.objects.filter(key=HEARTBEAT_KEY).first()
    age = (timezone.now() - heartbeat.at).total_seconds() if heartbeat else None
    context = {
        "database": health.check_database(),
        "broker": health.check_broker(),
        "heartbeat": heartbeat,
        "heartbeat_age": age,
        "worker_ok": age is not None and age <= HEARTBEAT_STALE_SECONDS,
        "stale_after": HEARTBEAT_STALE_SECONDS,
    }
    return render(request, "monitoring/_health.html", context)


@login_required
@require_GET
def endpoint_monitoring(request: HttpRequest, name: str) -> HttpResponse:
    endpoint = _endpoint_or_404(request, name)
    range_key = _range(request)
    start, end = selectors.range_bounds(range_key)
    step = selectors.step_for(range_key)
    series = selectors.traffic_series(endpoint, start=start, end=end, step=step)
    by_version = selectors.traffic_by_version_series(endpoint, start=start, end=end, step=step)
    labels = selectors.version_labels(list(by_version))
    config = selectors.monitoring_settings(endpoint)
    reports = list(selectors.drift_reports(endpoint, start=start - dt.timedelta(days=30)).defer("features")[:200])
    offline = selectors.offline_metrics(endpoint.current_version_id)
    live_series = selectors.live_metric_series(endpoint, start=start, end=end, step=step)
    figures = [
        {"id": "fig-traffic", "json": charts.traffic_figure(series)},
        {"id": "fig-latency", "json": charts.latency_figure(series)},
    ]
    if len(by_version) > 1:
        figures.append({"id": "fig-versions", "json": charts.versions_figure(by_version, labels)})
    live_figure = charts.live_metrics_figure(live_series, offline)
    if live_figure:
        figures.append({"id": "fig-live", "json": live_figure})
    if reports:
        figures.append(
            {
                "id": "fig-drift",
                "json": charts.drift_score_figure(
                    [(r.computed_at, r.overall_score) for r in reversed(reports)],
                    config.drift_warn_psi,
                    config.drift_alert_psi,
                ),
            }
        )
    context = {
        "endpoint": endpoint,
        "range": range_key,
        "ranges": list(selectors.RANGES),
        "stats": selectors.endpoint_window_stats(endpoint, start=start, end=end),
        "by_version": {
            labels.get(k, "—"): v for k, v in selectors.window_stats_by_version(endpoint, start=start, end=end).items()
        },
        "errors_by_kind": selectors.errors_by_kind(endpoint, start=start, end=end),
        "live": selectors.live_metrics(endpoint, start=start, end=end),
        "offline": offline,
        "figures": figures,
        "latest": reports[0] if reports else None,
        "reports": reports[:10],
        "config": config,
        "can_change": services.can_change_settings(request.user, endpoint),
        "alerts_url": _fragment_url("alerting:endpoint_alerts_fragment", name=endpoint.name),
        "outcomes_api": reverse("api:monitoring-outcomes", kwargs={"name": endpoint.name}),
    }
    return render(request, "monitoring/endpoint.html", context)


@login_required
@require_GET
def drift_report(request: HttpRequest, name: str, report_id: int) -> HttpResponse:
    endpoint = _endpoint_or_404(request, name)
    report = selectors.drift_report_for(endpoint, report_id)
    if report is None:
        raise Http404
    history = list(selectors.drift_reports(endpoint).values_list("computed_at", "overall_score")[:200])[::-1]
    features = [
        {"feature": feature, "id": f"fig-feature-{index}", "json": charts.feature_figure(feature)}
        for index, feature in enumerate(report.features or [])
    ]
    context = {
        "endpoint": endpoint,
        "report": report,
        # The reference may be a dataset the viewer may not see: then it is not named.
        "reference_visible": report.reference_version is not None
        and can_view_dataset_id(request.user, str(report.reference_version.dataset_id)),
        "features": features,
        "score_figure": charts.drift_score_figure(history, report.warn_threshold, report.alert_threshold),
        "prediction_figure": charts.feature_figure({"name": "prediction", **report.prediction})
        if report.prediction
        else None,
    }
    return render(request, "monitoring/drift_report.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def endpoint_settings(request: HttpRequest, name: str) -> HttpResponse:
    endpoint = _endpoint_or_404(request, name)
    if not services.can_change_settings(request.user, endpoint):
        raise PermissionDenied("Only the endpoint's owner, its operators or an admin may change its monitoring.")
    config = selectors.monitoring_settings(endpoint)
    form = MonitoringSettingsForm(request.POST or None, instance=config, user=request.user)
    if request.method == "POST" and form.is_valid():
        try:
            services.update_settings(endpoint=endpoint, by=request.user, **form.cleaned_data)
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                form.add_error(field if field in form.fields else None, errors)
        else:
            messages.success(request, "Monitoring settings saved.")
            return redirect("monitoring:endpoint", name=endpoint.name)
    return render(
        request, "monitoring/settings.html", {"endpoint": endpoint, "form": form}, status=400 if form.errors else 200
    )


@login_required
@require_GET
def home_widget(request: HttpRequest) -> HttpResponse:
    """The endpoint health card for the role home pages (htmx fragment; constant queries)."""
    return render(request, "monitoring/_home_widget.html", {"summary": selectors.health_summary(request.user)})


@login_required
@require_GET
def endpoint_fragment(request: HttpRequest, name: str) -> HttpResponse:
    """A compact health card for the endpoint's deployment page (htmx; 404 when not visible)."""
    endpoint = _endpoint_or_404(request, name)
    now = timezone.now()
    stats = selectors.endpoint_window_stats(endpoint, start=now - dt.timedelta(hours=1), end=now)
    health = selectors.health_of(endpoint, stats, selectors.latest_drift_report(endpoint))
    return render(request, "monitoring/_endpoint_card.html", {"endpoint": endpoint, "health": health})
