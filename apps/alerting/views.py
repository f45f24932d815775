"""Alerting pages: the alert list and an alert's page (acknowledge, resolve), rules, silences,
webhook channels, and the fragments other pages embed by URL (ops view, endpoint page, role
home pages). Thin: permission-filtered reads from selectors, writes through services whose
refusals come back as messages. What the user may not see answers 404; what they see but may
not change, 403."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from apps.alerting import permissions, selectors, services
from apps.alerting.forms import AlertListForm, ChannelForm, CommentForm, RuleForm, SilenceForm
from apps.alerting.models import Alert, AlertRule, Severity
from apps.core.forms import add_service_errors
from apps.deployments.models import Environment

PER_PAGE = 25
FRAGMENT_LIMIT = 10


def _environment_names() -> list[str]:
    return list(Environment.objects.order_by("display_order", "name").values_list("name", flat=True))


def _errors(exc: ValidationError) -> str:
    if hasattr(exc, "error_dict"):
        return " ".join(f"{m}" for messages_ in exc.message_dict.values() for m in messages_)
    return " ".join(exc.messages)


# --- Alerts --------------------------------------------------------------------------------------


@login_required
@require_GET
def alert_list(request: HttpRequest) -> HttpResponse:
    choice = AlertListForm(request.GET).values()
    alerts = selectors.with_alert_data(selectors.visible_alerts(request.user))
    if choice["state"] == "":
        alerts = alerts.filter(state__in=Alert.OPEN_STATES)
    elif choice["state"] != "all":
        alerts = alerts.filter(state=choice["state"])
    if choice["severity"]:
        alerts = alerts.filter(severity=choice["severity"])
    if choice["environment"]:
        alerts = alerts.filter(endpoint__environment__name=choice["environment"])
    if choice["endpoint"]:
        alerts = alerts.filter(endpoint__name__icontains=choice["endpoint"])
    page = Paginator(alerts.order_by("-opened_at", "-id"), PER_PAGE).get_page(request.GET.get("page"))
    context = {
        "page": page,
        "choice": choice,
        "states": Alert.State.choices,
        "severities": Severity.choices,
        "environments": _environment_names(),
    }
    if request.headers.get("HX-Request"):
        return render(request, "alerting/_alert_results.html", context)
    return render(request, "alerting/alert_list.html", context)


def _alert_or_404(request: HttpRequest, pk: int) -> Alert:
    alert = selectors.alert_for(request.user, pk)
    if alert is None:
        raise Http404
    return alert


@login_required
@require_GET
def alert_detail(request: HttpRequest, pk: int) -> HttpResponse:
    alert = _alert_or_404(request, pk)
    context = {
        "alert": alert,
        "rule": alert.rule,
        "deliveries": list(selectors.deliveries_of(alert)),
        "can_respond": alert.is_open and permissions.can_respond(request.user, alert),
        "form": CommentForm(),
    }
    return render(request, "alerting/alert_detail.html", context)


@login_required
@require_POST
def alert_acknowledge(request: HttpRequest, pk: int) -> HttpResponse:
    return _respond(request, _alert_or_404(request, pk), services.acknowledge, "Acknowledged.")


@login_required
@require_POST
def alert_resolve(request: HttpRequest, pk: int) -> HttpResponse:
    return _respond(request, _alert_or_404(request, pk), services.resolve, "Resolved.")


def _respond(request: HttpRequest, alert: Alert, action, done: str) -> HttpResponse:
    if not permissions.can_respond(request.user, alert):
        raise PermissionDenied("You may not act on this alert.")
    form = CommentForm(request.POST)
    if not form.is_valid():
        messages.error(request, _errors(ValidationError(form.errors)))
        return redirect("alerting:alert", alert.pk)
    try:
        action(alert=alert, by=request.user, comment=form.cleaned_data["comment"])
    except ValidationError as exc:
        messages.error(request, _errors(exc))
    else:
        messages.success(request, done)
    return redirect("alerting:alert", alert.pk)


# --- Rules ---------------------------------------------------------------------------------------


@login_required
@require_GET
def rule_list(request: HttpRequest) -> HttpResponse:
    rules = selectors.visible_rules(request.user)
    endpoint_name = (request.GET.get("endpoint") or "").strip()[:100]
    if endpoint_name:
        rules = rules.filter(endpoint__name=endpoint_name)
    page = Paginator(rules.order_by("environment__name", "endpoint__name", "name", "pk"), PER_PAGE).get_page(
        request.GET.get("page")
    )
    for rule in page.object_list:
        rule.editable = permissions.can_edit_rule(request.user, rule)
    context = {
        "page": page,
        "endpoint_name": endpoint_name,
        "environments": _environment_names(),
        "can_set_defaults": permissions.can_manage_environment_alerting(request.user),
    }
    return render(request, "alerting/rule_list.html", context)


def _scope(request: HttpRequest) -> dict:
    """The endpoint (or environment) a new rule is for, from ?endpoint= / ?environment=."""
    endpoint_name = (request.GET.get("endpoint") or "").strip()[:100]
    environment_name = (request.GET.get("environment") or "").strip()[:50]
    if endpoint_name:
        endpoint = selectors.endpoint_for(request.user, endpoint_name)
        if endpoint is None:
            raise Http404
        if not permissions.can_manage_endpoint_alerting(request.user, endpoint):
            raise PermissionDenied("You may not set alert rules on this endpoint.")
        return {"endpoint": endpoint}
    if environment_name:
        environment = Environment.objects.filter(name=environment_name).first()
        if environment is None:
            raise Http404
        if not permissions.can_manage_environment_alerting(request.user):
            raise PermissionDenied("Only Operations and platform admins set environment-wide rules.")
        return {"environment": environment}
    raise Http404


@login_required
@require_http_methods(["GET", "POST"])
def rule_new(request: HttpRequest) -> HttpResponse:
    scope = _scope(request)
    form = RuleForm(request.POST or None, initial={"window_minutes": 15, "severity": "warning", "enabled": True})
    if request.method == "POST" and form.is_valid():
        try:
            rule = services.create_rule(by=request.user, **scope, **_rule_values(form))
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(request, f"Rule “{rule.name}” created.")
            return redirect(_rules_url(rule))
    status = 400 if request.method == "POST" else 200
    return render(request, "alerting/rule_form.html", {"form": form, "scope": scope, "rule": None}, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def rule_edit(request: HttpRequest, pk: int) -> HttpResponse:
    rule = selectors.rule_for(request.user, pk)
    if rule is None:
        raise Http404
    if not permissions.can_edit_rule(request.user, rule):
        raise PermissionDenied("You may not edit this rule.")
    scope = {"endpoint": rule.endpoint} if rule.endpoint_id else {"environment": rule.environment}
    form = RuleForm(request.POST or None, instance=None, initial=_rule_initial(rule))
    if request.method == "POST" and form.is_valid():
        try:
            rule = services.update_rule(rule=rule, by=request.user, **_rule_values(form))
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(request, "Rule saved.")
            return redirect(_rules_url(rule))
    status = 400 if request.method == "POST" else 200
    return render(request, "alerting/rule_form.html", {"form": form, "scope": scope, "rule": rule}, status=status)


def _rule_values(form: RuleForm) -> dict:
    data = form.cleaned_data
    values = {name: data.get(name) for name in services.RULE_FIELDS}
    values["comparison"] = data.get("comparison") or AlertRule.DEFAULT_COMPARISON.get(data["kind"], ">")
    values["name"] = (data.get("name") or "").strip() or f"{dict(AlertRule.Kind.choices)[data['kind']]}"
    values["metric_name"] = data.get("metric_name") or ""
    values["job_kind"] = data.get("job_kind") or ""
    values["baseline"] = data.get("baseline") or AlertRule.Baseline.PREVIOUS
    values["enabled"] = bool(data.get("enabled"))
    return values


def _rule_initial(rule: AlertRule) -> dict:
    return {name: getattr(rule, name) for name in services.RULE_FIELDS}


def _rules_url(rule: AlertRule) -> str:
    from django.urls import reverse

    url = reverse("alerting:rule_list")
    return f"{url}?endpoint={rule.endpoint.name}" if rule.endpoint_id else url


# --- Silences ------------------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def silence_list(request: HttpRequest) -> HttpResponse:
    form = SilenceForm(request.POST or None, initial={"endpoint": request.GET.get("endpoint", "")[:100]})
    if request.method == "POST" and form.is_valid():
        try:
            matcher = _silence_matcher(request, form)
            silence = services.create_silence(
                by=request.user, ends_at=form.ends_at(), reason=form.cleaned_data["reason"], **matcher
            )
        except ValidationError as exc:
            add_service_errors(form, exc)
        except PermissionDenied as exc:
            form.add_error(None, str(exc) or "You may not create this silence.")
        else:
            messages.success(request, f"Silenced {silence.matcher_label} until {silence.ends_at:%Y-%m-%d %H:%M}.")
            return redirect("alerting:silence_list")
    silences = selectors.visible_silences(request.user)
    show = request.GET.get("show", "active")
    if show != "all":
        from django.utils import timezone

        silences = silences.filter(ends_at__gt=timezone.now())
    page = Paginator(silences.order_by("-ends_at", "-id"), PER_PAGE).get_page(request.GET.get("page"))
    for silence in page.object_list:
        silence.endable = silence.is_active() and permissions.can_end_silence(request.user, silence)
    status = 400 if request.method == "POST" else 200
    return render(request, "alerting/silence_list.html", {"page": page, "form": form, "show": show}, status=status)


def _silence_matcher(request: HttpRequest, form: SilenceForm) -> dict:
    data = form.cleaned_data
    matcher: dict = {}
    if data.get("endpoint"):
        endpoint = selectors.endpoint_for(request.user, data["endpoint"].strip())
        if endpoint is None:
            raise ValidationError({"endpoint": "No such endpoint."})
        matcher["endpoint"] = endpoint
    if data.get("environment"):
        environment = Environment.objects.filter(name=data["environment"].strip()).first()
        if environment is None:
            raise ValidationError({"environment": "No such environment."})
        matcher["environment"] = environment
    if data.get("rule"):
        rule = selectors.rule_for(request.user, data["rule"])
        if rule is None:
            raise ValidationError({"rule": "No such rule."})
        matcher["rule"] = rule
    return matcher


@login_required
@require_POST
def silence_end(request: HttpRequest, pk: int) -> HttpResponse:
    silence = selectors.silence_for(request.user, pk)
    if silence is None:
        raise Http404
    if not permissions.can_end_silence(request.user, silence):
        raise PermissionDenied("You may not end this silence.")
    try:
        services.end_silence(silence=silence, by=request.user)
    except ValidationError as exc:
        messages.error(request, _errors(exc))
    else:
        messages.success(request, "Silence ended.")
    return redirect("alerting:silence_list")


# --- Webhook channels ----------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def channel_list(request: HttpRequest) -> HttpResponse:
    form = ChannelForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            endpoint = None
            if data.get("endpoint"):
                endpoint = selectors.endpoint_for(request.user, data["endpoint"].strip())
                if endpoint is None:
                    raise ValidationError({"endpoint": "No such endpoint."})
            services.create_channel(
                by=request.user,
                name=data["name"],
                url=data["url"],
                format=data["format"],
                secret=data.get("secret") or "",
                team=data.get("team"),
                endpoint=endpoint,
                min_severity=data["min_severity"],
            )
        except ValidationError as exc:
            add_service_errors(form, exc)
        except PermissionDenied as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, "Webhook added.")
            return redirect("alerting:channel_list")
    channels = list(selectors.visible_channels(request.user).order_by("name", "pk")[:200])
    status = 400 if request.method == "POST" else 200
    return render(request, "alerting/channel_list.html", {"channels": channels, "form": form}, status=status)


# --- Fragments (embedded by other pages through their URL names) -----------------------------------


@login_required
@require_GET
def open_alerts_fragment(request: HttpRequest) -> HttpResponse:
    """Open alerts the user may see (the ops view)."""
    alerts = list(selectors.open_alerts(request.user)[:FRAGMENT_LIMIT])
    counts = selectors.open_alert_counts(request.user)
    return render(
        request,
        "alerting/_open_alerts.html",
        {"alerts": alerts, "counts": counts, "total": sum(counts.values()), "limit": FRAGMENT_LIMIT},
    )


@login_required
@require_GET
def endpoint_alerts_fragment(request: HttpRequest, name: str) -> HttpResponse:
    """An endpoint's open and recent alerts, for its page."""
    endpoint = selectors.endpoint_for(request.user, name)
    if endpoint is None:
        raise Http404
    alerts = list(
        selectors.with_alert_data(selectors.visible_alerts(request.user).filter(endpoint=endpoint)).order_by(
            "-opened_at", "-id"
        )[:FRAGMENT_LIMIT]
    )
    context = {
        "endpoint": endpoint,
        "alerts": alerts,
        "can_manage": permissions.can_manage_endpoint_alerting(request.user, endpoint),
    }
    return render(request, "alerting/_endpoint_alerts.html", context)


@login_required
@require_GET
def home_widget(request: HttpRequest) -> HttpResponse:
    """A small card of open alerts for role home pages."""
    counts = selectors.open_alert_counts(request.user)
    alerts = list(selectors.open_alerts(request.user)[:5])
    return render(
        request, "alerting/_home_widget.html", {"alerts": alerts, "counts": counts, "total": sum(counts.values())}
    )
