"""The alerting pages and fragments: who sees which alerts (hidden endpoints answer 404),
who may acknowledge, resolve and edit rules, silences from the page, and fragments whose cost
does not grow with the number of alerts."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from apps.alerting import services
from apps.alerting.models import Alert, AlertRule, Silence
from apps.audit.models import AuditEvent
from apps.deployments.services import grant_invoke
from tests.alerting.conftest import fail_job, job_rule, make_endpoint

pytestmark = pytest.mark.django_db


@pytest.fixture
def alert(endpoint, people) -> Alert:
    rule = job_rule(endpoint, people["owner_user"])
    fail_job(endpoint)
    services.evaluate(rule=rule, endpoint=endpoint)
    return Alert.objects.get(rule=rule)


def _as(client, user):
    client.force_login(user)
    return client


# --- Seeing alerts -------------------------------------------------------------------------------


def test_anonymous_visitors_are_sent_to_sign_in(client, alert):
    for url in (reverse("alerting:alert_list"), reverse("alerting:alert", args=[alert.pk])):
        response = client.get(url)
        assert response.status_code == 302 and "/login" in response["Location"]


def test_a_user_without_a_part_in_the_endpoint_gets_404_and_sees_no_alerts(client, alert, people):
    client = _as(client, people["stranger"])
    assert client.get(reverse("alerting:alert", args=[alert.pk])).status_code == 404
    assert client.post(reverse("alerting:alert_acknowledge", args=[alert.pk])).status_code == 404
    page = client.get(reverse("alerting:alert_list"))
    assert page.status_code == 200 and "Failed jobs" not in page.content.decode()
    assert client.get(reverse("alerting:endpoint_alerts_fragment", args=[alert.endpoint.name])).status_code == 404
    assert "Failed jobs" not in client.get(reverse("alerting:open_alerts_fragment")).content.decode()
    assert 'data-testid="alerts-total">0<' in client.get(reverse("alerting:home_widget")).content.decode()


def test_someone_granted_the_endpoint_sees_its_alert_but_may_not_act(client, alert, people):
    grant_invoke(endpoint=alert.endpoint, by=people["owner_user"], user=people["stranger"])
    client = _as(client, people["stranger"])
    page = client.get(reverse("alerting:alert", args=[alert.pk]))
    assert page.status_code == 200
    assert "acknowledge-button" not in page.content.decode()
    assert client.post(reverse("alerting:alert_acknowledge", args=[alert.pk])).status_code == 403
    assert Alert.objects.get().state == "firing"


def test_the_list_filters_by_state_severity_environment_and_endpoint(client, alert, people):
    client = _as(client, people["ops"])
    url = reverse("alerting:alert_list")
    assert "Failed jobs" in client.get(url).content.decode()
    assert "Failed jobs" not in client.get(url, {"severity": "info"}).content.decode()
    assert "Failed jobs" not in client.get(url, {"state": "resolved"}).content.decode()
    assert "Failed jobs" not in client.get(url, {"environment": "staging"}).content.decode()
    assert "Failed jobs" in client.get(url, {"endpoint": "churn", "environment": "production"}).content.decode()
    fragment = client.get(url, {"state": "all"}, HTTP_HX_REQUEST="true")
    assert fragment.content.decode().startswith('<div id="alert-results">')


def test_bad_filters_are_ignored_not_an_error(client, alert, people):
    response = _as(client, people["ops"]).get(reverse("alerting:alert_list"), {"state": "nonsense", "page": "x"})
    assert response.status_code == 200


# --- Acting on alerts ----------------------------------------------------------------------------


def test_the_owner_acknowledges_then_resolves_from_the_page(client, alert, people):
    client = _as(client, people["owner_user"])
    response = client.post(reverse("alerting:alert_acknowledge", args=[alert.pk]), {"comment": "Looking into it"})
    assert response.status_code == 302
    alert.refresh_from_db()
    assert alert.state == "acknowledged" and alert.acknowledge_comment == "Looking into it"
    client.post(reverse("alerting:alert_resolve", args=[alert.pk]), {"comment": "Credentials rotated"})
    alert.refresh_from_db()
    assert alert.state == "resolved" and alert.resolved_by == people["owner_user"]
    page = client.get(reverse("alerting:alert", args=[alert.pk])).content.decode()
    assert "Credentials rotated" in page and "resolve-button" not in page


def test_an_impossible_move_comes_back_as_a_message(client, alert, people):
    client = _as(client, people["ops"])
    client.post(reverse("alerting:alert_resolve", args=[alert.pk]))
    response = client.post(reverse("alerting:alert_acknowledge", args=[alert.pk]), follow=True)
    assert "Only firing alerts can be acknowledged" in response.content.decode()


def test_an_engineer_who_sees_all_models_still_cannot_resolve(client, alert, people):
    assert _as(client, people["engineer"]).post(reverse("alerting:alert_resolve", args=[alert.pk])).status_code == 404


# --- Rules ---------------------------------------------------------------------------------------


def test_the_owner_creates_a_rule_for_their_endpoint(client, endpoint, people):
    client = _as(client, people["owner_user"])
    url = reverse("alerting:rule_new") + "?endpoint=churn-propensity"
    assert client.get(url).status_code == 200
    response = client.post(
        url,
        {
            "name": "Slow",
            "kind": "latency_p95",
            "threshold": "800",
            "window_minutes": "10",
            "severity": "warning",
            "enabled": "on",
        },
    )
    assert response.status_code == 302
    rule = AlertRule.objects.get(name="Slow")
    assert rule.endpoint == endpoint and rule.comparison == ">" and rule.owner == people["owner_user"]
    assert AuditEvent.objects.filter(action="alerting.rule.created", object_id=str(rule.pk)).exists()


def test_a_bad_rule_is_shown_inline_and_not_saved(client, endpoint, people):
    client = _as(client, people["owner_user"])
    response = client.post(
        reverse("alerting:rule_new") + "?endpoint=churn-propensity",
        {"kind": "live_metric_below", "threshold": "0.8", "window_minutes": "10", "severity": "warning"},
    )
    assert response.status_code == 400
    assert "Name the live metric to watch." in response.content.decode()
    assert not AlertRule.objects.exists()


def test_only_owners_and_ops_may_create_or_edit_rules(client, endpoint, people):
    rule = job_rule(endpoint, people["owner_user"])
    grant_invoke(endpoint=endpoint, by=people["owner_user"], user=people["stranger"])
    client = _as(client, people["stranger"])
    assert client.get(reverse("alerting:rule_new") + "?endpoint=churn-propensity").status_code == 403
    assert client.post(reverse("alerting:rule_edit", args=[rule.pk]), {"threshold": "9"}).status_code == 403
    client = _as(client, people["scientist"])
    assert client.get(reverse("alerting:rule_edit", args=[rule.pk])).status_code == 404
    client = _as(client, people["ops"])
    response = client.post(
        reverse("alerting:rule_edit", args=[rule.pk]),
        {
            "name": "Failed jobs",
            "kind": "job_failures",
            "threshold": "3",
            "window_minutes": "30",
            "severity": "critical",
        },
    )
    assert response.status_code == 302
    rule.refresh_from_db()
    assert rule.threshold == 3 and rule.window_minutes == 30 and rule.enabled is False
    assert AuditEvent.objects.filter(action="alerting.rule.updated", actor=people["ops"]).exists()


def test_environment_defaults_are_for_operations_only(client, endpoint, people):
    url = reverse("alerting:rule_new") + "?environment=production"
    assert _as(client, people["owner_user"]).get(url).status_code == 403
    assert _as(client, people["ops"]).get(url).status_code == 200


# --- Silences ------------------------------------------------------------------------------------


def test_the_owner_silences_their_endpoint_and_ends_it(client, endpoint, people):
    client = _as(client, people["owner_user"])
    response = client.post(
        reverse("alerting:silence_list"), {"endpoint": "churn-propensity", "hours": "2", "reason": "Planned migration"}
    )
    assert response.status_code == 302
    silence = Silence.objects.get()
    assert silence.endpoint == endpoint and silence.ends_at > timezone.now() + timedelta(hours=1)
    client.post(reverse("alerting:silence_end", args=[silence.pk]))
    silence.refresh_from_db()
    assert silence.ends_at <= timezone.now() and silence.ended_by == people["owner_user"]


def test_a_silence_without_a_target_is_a_400_with_the_reason(client, people):
    response = _as(client, people["ops"]).post(reverse("alerting:silence_list"), {"hours": "1", "reason": "x"})
    assert response.status_code == 400
    assert "Say what to silence" in response.content.decode()


def test_a_stranger_cannot_silence_someone_elses_endpoint(client, endpoint, people):
    response = _as(client, people["stranger"]).post(
        reverse("alerting:silence_list"), {"endpoint": "churn-propensity", "hours": "1", "reason": "x"}
    )
    assert response.status_code == 400 and "No such endpoint" in response.content.decode()
    assert not Silence.objects.exists()


# --- Fragments: constant cost --------------------------------------------------------------------


def _alerts_on(count, people):
    for i in range(count):
        endpoint = make_endpoint(people["owner_user"], name=f"fleet-{i}-{Alert.objects.count()}")
        rule = job_rule(endpoint, people["owner_user"], severity=["info", "warning", "critical"][i % 3])
        fail_job(endpoint)
        services.evaluate(rule=rule, endpoint=endpoint)


@pytest.mark.parametrize("url_name", ["alerting:open_alerts_fragment", "alerting:home_widget", "alerting:alert_list"])
def test_the_fragments_cost_the_same_for_many_alerts(client, people, url_name):
    client = _as(client, people["owner_user"])
    url = reverse(url_name)
    _alerts_on(1, people)
    client.get(url)  # warm the session and caches
    with CaptureQueriesContext(connection) as one:
        assert client.get(url).status_code == 200
    _alerts_on(6, people)
    with CaptureQueriesContext(connection) as many:
        response = client.get(url)
    assert response.content.decode().count("fleet-") >= 5
    assert len(many) == len(one), [q["sql"] for q in many.captured_queries]


def test_the_endpoint_fragment_costs_the_same_for_many_alerts(client, endpoint, people, django_assert_max_num_queries):
    client = _as(client, people["owner_user"])
    url = reverse("alerting:endpoint_alerts_fragment", args=[endpoint.name])
    rule = job_rule(endpoint, people["owner_user"])
    fail_job(endpoint)
    services.evaluate(rule=rule, endpoint=endpoint)
    client.get(url)
    with CaptureQueriesContext(connection) as one:
        client.get(url)
    for _ in range(5):
        Alert.objects.filter(state="firing").update(state="resolved", resolved_at=timezone.now())
        services.evaluate(rule=rule, endpoint=endpoint)
    with django_assert_max_num_queries(len(one)):
        response = client.get(url)
    assert response.content.decode().count('data-testid="endpoint-alert"') == 6


def test_the_open_alerts_fragment_for_ops_shows_every_endpoint(client, people):
    _alerts_on(3, people)
    body = _as(client, people["ops"]).get(reverse("alerting:open_alerts_fragment")).content.decode()
    assert body.count('data-testid="open-alert"') == 3


# --- Webhooks and the silenced note ----------------------------------------------------------------


def test_the_owner_adds_a_slack_webhook_for_their_endpoint(client, endpoint, people):
    client = _as(client, people["owner_user"])
    response = client.post(
        reverse("alerting:channel_list"),
        {
            "name": "#churn-alerts",
            "url": "https://hooks.example.test/T1",
            "format": "slack",
            "endpoint": "churn-propensity",
            "min_severity": "warning",
        },
    )
    assert response.status_code == 302
    page = client.get(reverse("alerting:channel_list")).content.decode()
    assert "#churn-alerts" in page and "hooks.example.test/T1" in page
    assert AuditEvent.objects.filter(action="alerting.webhook.created").exists()


def test_a_team_webhook_needs_the_teams_lead_or_ops(client, endpoint, people):
    data = {
        "name": "ops",
        "url": "https://hooks.example.test/ops",
        "format": "json",
        "team": people["ops_team"].pk,
        "min_severity": "info",
    }
    response = _as(client, people["oncall"]).post(reverse("alerting:channel_list"), data)
    assert response.status_code == 400 and "may not add webhooks" in response.content.decode()
    assert _as(client, people["ops"]).post(reverse("alerting:channel_list"), data).status_code == 302


def test_the_alert_page_says_which_silence_kept_it_quiet(client, endpoint, people):
    services.create_silence(
        by=people["owner_user"], endpoint=endpoint, ends_at=timezone.now() + timedelta(hours=1), reason="Load test"
    )
    rule = job_rule(endpoint, people["owner_user"])
    fail_job(endpoint)
    services.evaluate(rule=rule, endpoint=endpoint)
    page = _as(client, people["owner_user"]).get(reverse("alerting:alert", args=[Alert.objects.get().pk]))
    assert 'data-testid="silenced-note"' in page.content.decode() and "Load test" in page.content.decode()


def test_open_alerts_list_firing_before_acknowledged_and_critical_before_warning(client, people):
    _alerts_on(3, people)  # info, warning, critical
    critical = Alert.objects.get(severity="critical")
    services.acknowledge(alert=critical, by=people["ops"])
    body = _as(client, people["ops"]).get(reverse("alerting:open_alerts_fragment")).content.decode()
    order = [body.index(f">{s.capitalize()}<") for s in ("warning", "info")]
    assert order == sorted(order)
    assert body.index(">Acknowledged<") > max(order)


def test_an_alerts_history_is_visible_to_those_who_see_the_alert_only(client, alert, people):
    url = reverse("audit:object_history", args=["alerting.alert", alert.pk])
    response = _as(client, people["owner_user"]).get(url)
    assert response.status_code == 200 and "alerting.alert.opened" in response.content.decode()
    assert _as(client, people["stranger"]).get(url).status_code in (403, 404)


def _teamed_rules_and_silences(count, people):
    from apps.accounts import services as accounts

    for _ in range(count):
        n = AlertRule.objects.count()
        team = accounts.create_team(name=f"squad-{n}", by=people["admin"], lead=people["owner_user"])
        endpoint = make_endpoint(people["oncall"], name=f"teamed-{n}", team=team)  # led, not owned
        job_rule(endpoint, people["owner_user"])
        services.create_silence(
            by=people["owner_user"], endpoint=endpoint, ends_at=timezone.now() + timedelta(hours=1), reason="x"
        )


@pytest.mark.parametrize("url_name", ["alerting:rule_list", "alerting:silence_list"])
def test_rule_and_silence_lists_cost_the_same_for_many_rows(client, people, url_name):
    client = _as(client, people["owner_user"])
    url = reverse(url_name)
    _teamed_rules_and_silences(1, people)
    client.get(url)
    with CaptureQueriesContext(connection) as one:
        assert client.get(url).status_code == 200
    _teamed_rules_and_silences(5, people)
    with CaptureQueriesContext(connection) as many:
        assert client.get(url).status_code == 200
    assert len(many) == len(one), [q["sql"] for q in many.captured_queries]


def test_the_admin_only_reads_alerting_rows(rf, people):
    """Writes go through services (permission + audit); the admin must not bypass them."""
    from django.contrib import admin

    from apps.alerting.models import WebhookChannel, WebhookDelivery

    request = rf.get("/")
    request.user = people["admin"]
    for model in (Alert, AlertRule, Silence, WebhookChannel, WebhookDelivery):
        model_admin = admin.site._registry[model]
        assert not model_admin.has_add_permission(request)
        assert not model_admin.has_change_permission(request)
        assert not model_admin.has_delete_permission(request)
    assert "secret" in admin.site._registry[WebhookChannel].exclude
