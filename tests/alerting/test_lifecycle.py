"""An alert's life: opened by the evaluator, acknowledged and resolved by people (audited in the
same transaction, impossible moves refused in words), resolved by the evaluator when the
condition clears, and never opened twice while one is open."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError

from apps.alerting import services
from apps.alerting.models import Alert
from apps.alerting.services import TransitionRefused
from apps.audit.models import AuditEvent
from tests.alerting.conftest import clear_failures, fail_job, job_rule

pytestmark = pytest.mark.django_db


def _open_alert(endpoint, people) -> Alert:
    rule = job_rule(endpoint, people["owner_user"])
    fail_job(endpoint)
    assert services.evaluate(rule=rule, endpoint=endpoint) == "opened"
    return Alert.objects.get(rule=rule)


def test_a_breached_rule_opens_a_firing_alert_with_its_value_and_threshold(endpoint, people):
    alert = _open_alert(endpoint, people)
    assert alert.state == "firing"
    assert alert.value == 1 and alert.threshold == 1
    assert alert.severity == "critical"
    assert "1 failed jobs for churn-propensity" in alert.summary
    assert AuditEvent.objects.filter(action="alerting.alert.opened", object_id=str(alert.pk)).count() == 1


def test_a_rule_within_its_threshold_opens_nothing(endpoint, people):
    rule = job_rule(endpoint, people["owner_user"], threshold=3)
    fail_job(endpoint)
    assert services.evaluate(rule=rule, endpoint=endpoint) == "clear"
    assert not Alert.objects.exists()


def test_failures_outside_the_window_do_not_count(endpoint, people):
    rule = job_rule(endpoint, people["owner_user"], window_minutes=5)
    fail_job(endpoint, minutes_ago=30)
    assert services.evaluate(rule=rule, endpoint=endpoint) == "clear"


def test_a_job_kind_filter_counts_only_that_kind(endpoint, people):
    rule = job_rule(endpoint, people["owner_user"], job_kind="monitoring.drift")
    fail_job(endpoint, kind="deployments.deploy")
    assert services.evaluate(rule=rule, endpoint=endpoint) == "clear"
    fail_job(endpoint, kind="monitoring.drift")
    assert services.evaluate(rule=rule, endpoint=endpoint) == "opened"


def test_evaluating_again_while_firing_updates_the_open_alert_instead_of_opening_another(endpoint, people):
    alert = _open_alert(endpoint, people)
    fail_job(endpoint)
    assert services.evaluate(rule=alert.rule, endpoint=endpoint) == "still_firing"
    assert Alert.objects.count() == 1
    alert.refresh_from_db()
    assert alert.value == 2


def test_an_acknowledged_alert_is_not_reopened_while_the_condition_holds(endpoint, people):
    alert = _open_alert(endpoint, people)
    services.acknowledge(alert=alert, by=people["owner_user"], comment="Looking.")
    assert services.evaluate(rule=alert.rule, endpoint=endpoint) == "still_firing"
    assert Alert.objects.count() == 1
    assert Alert.objects.get().state == "acknowledged"


def test_the_owner_acknowledges_a_firing_alert_and_it_says_who_and_when(endpoint, people):
    alert = _open_alert(endpoint, people)
    alert = services.acknowledge(alert=alert, by=people["owner_user"], comment="On it.")
    assert alert.state == "acknowledged"
    assert alert.acknowledged_by == people["owner_user"] and alert.acknowledged_at is not None
    event = AuditEvent.objects.get(action="alerting.alert.acknowledged")
    assert event.actor == people["owner_user"]
    assert event.changes["state"] == ["firing", "acknowledged"]


def test_acknowledging_twice_is_refused_in_words(endpoint, people):
    alert = _open_alert(endpoint, people)
    services.acknowledge(alert=alert, by=people["owner_user"])
    with pytest.raises(TransitionRefused, match="Only firing alerts can be acknowledged"):
        services.acknowledge(alert=alert, by=people["ops"])


def test_resolving_records_who_and_the_comment(endpoint, people):
    alert = _open_alert(endpoint, people)
    alert = services.resolve(alert=alert, by=people["ops"], comment="Redeployed the previous version.")
    assert alert.state == "resolved" and alert.resolved_by == people["ops"] and not alert.auto_resolved
    assert alert.resolve_comment == "Redeployed the previous version."
    assert AuditEvent.objects.filter(action="alerting.alert.resolved", actor=people["ops"]).exists()


def test_a_resolved_alert_cannot_be_acknowledged_or_resolved_again(endpoint, people):
    alert = _open_alert(endpoint, people)
    services.resolve(alert=alert, by=people["ops"])
    with pytest.raises(TransitionRefused, match="already resolved"):
        services.resolve(alert=alert, by=people["ops"])
    with pytest.raises(TransitionRefused, match="resolved"):
        services.acknowledge(alert=alert, by=people["ops"])


def test_the_evaluator_resolves_the_alert_when_the_condition_clears(endpoint, people):
    alert = _open_alert(endpoint, people)
    clear_failures()
    assert services.evaluate(rule=alert.rule, endpoint=endpoint) == "resolved"
    alert.refresh_from_db()
    assert alert.state == "resolved" and alert.auto_resolved and alert.resolved_by is None
    assert "Condition cleared" in alert.resolve_comment
    assert AuditEvent.objects.filter(action="alerting.alert.auto_resolved", object_id=str(alert.pk)).exists()


def test_a_new_alert_opens_when_the_condition_returns_after_resolution(endpoint, people):
    alert = _open_alert(endpoint, people)
    services.resolve(alert=alert, by=people["ops"])
    assert services.evaluate(rule=alert.rule, endpoint=endpoint) == "opened"
    assert Alert.objects.filter(rule=alert.rule).count() == 2
    assert Alert.objects.filter(rule=alert.rule, state="firing").count() == 1


def test_the_database_refuses_a_second_open_alert_for_the_same_rule_and_subject(endpoint, people):
    alert = _open_alert(endpoint, people)
    duplicate = Alert(
        rule=alert.rule,
        endpoint=endpoint,
        subject_key=alert.subject_key,
        subject_label="dup",
        severity="critical",
        summary="dup",
        threshold=1,
    )
    with pytest.raises(IntegrityError):
        duplicate.save()


def test_someone_without_a_part_in_the_endpoint_cannot_acknowledge(endpoint, people):
    alert = _open_alert(endpoint, people)
    for user in (people["stranger"], people["engineer"], people["approver"]):
        with pytest.raises(PermissionDenied):
            services.acknowledge(alert=alert, by=user)
    assert Alert.objects.get().state == "firing"


def test_the_on_call_team_may_acknowledge(endpoint, people):
    alert = _open_alert(endpoint, people)
    assert services.acknowledge(alert=alert, by=people["oncall"]).state == "acknowledged"


def test_an_environment_default_rule_covers_its_endpoints_unless_they_have_their_own(endpoint, people):
    from tests.alerting.conftest import make_endpoint

    other = make_endpoint(people["owner_user"], environment=endpoint.environment, name="other-endpoint")
    services.create_rule(
        by=people["ops"], kind="job_failures", environment=endpoint.environment, threshold=1, name="Env default"
    )
    job_rule(endpoint, people["owner_user"], threshold=5)  # the endpoint's own, stricter one
    fail_job(endpoint)
    fail_job(other)
    outcomes = services.evaluate_all()
    assert outcomes == {"opened": 1, "clear": 1}
    assert list(Alert.objects.values_list("endpoint__name", "rule__name")) == [("other-endpoint", "Env default")]


def test_one_broken_rule_does_not_stop_the_others(endpoint, people, monkeypatch):
    good = job_rule(endpoint, people["owner_user"])
    services.create_rule(by=people["owner_user"], kind="latency_p95", endpoint=endpoint, threshold=100, name="p95")
    real_measure = services.measure

    def measure(rule, endpoint, *, now):
        if rule.kind == "latency_p95":
            raise RuntimeError("telemetry store unavailable")
        return real_measure(rule, endpoint, now=now)

    monkeypatch.setattr(services, "measure", measure)
    fail_job(endpoint)
    assert services.evaluate_all() == {"error": 1, "opened": 1}
    assert Alert.objects.get().rule == good
