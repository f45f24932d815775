"""Who hears about an alert and how: the endpoint's owner and the on-call team, in-app and by
e-mail (after commit); webhook channels with a JSON or Slack-compatible payload, posted to a
real local receiver; silences keep all of it quiet and the alert says so."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from apps.accounts.models import Notification
from apps.alerting import services
from apps.alerting.models import Alert, WebhookDelivery
from apps.jobs.models import Job
from tests.alerting.conftest import clear_failures, fail_job, job_rule

pytestmark = pytest.mark.django_db


def _fire(endpoint, people, django_capture_on_commit_callbacks) -> Alert:
    rule = job_rule(endpoint, people["owner_user"])
    fail_job(endpoint)
    with django_capture_on_commit_callbacks(execute=True):
        assert services.evaluate(rule=rule, endpoint=endpoint) == "opened"
    return Alert.objects.get(rule=rule)


def test_a_firing_alert_emails_the_owner_and_the_on_call_team(endpoint, people, django_capture_on_commit_callbacks):
    alert = _fire(endpoint, people, django_capture_on_commit_callbacks)
    recipients = sorted(address for message in mail.outbox for address in message.to)
    assert recipients == ["endpoint-owner@example.test", "oncall-member@example.test", "ops@example.test"]
    message = mail.outbox[0]
    assert message.subject == "[CRITICAL] Failed jobs on churn-propensity"
    assert alert.summary in message.body and f"/alerts/{alert.pk}/" in message.body


def test_a_firing_alert_is_an_in_app_notification_too(endpoint, people, django_capture_on_commit_callbacks):
    alert = _fire(endpoint, people, django_capture_on_commit_callbacks)
    notes = Notification.objects.filter(verb="alerting.alert.fired")
    assert {n.recipient.username for n in notes} == {"endpoint-owner", "oncall-member", "ops"}
    assert all(n.url == f"/alerts/{alert.pk}/" for n in notes)


def test_the_rules_own_on_call_team_replaces_the_environments_deployer_team(
    endpoint, people, django_capture_on_commit_callbacks
):
    from apps.accounts import services as accounts
    from tests.conftest import make_user

    night = accounts.create_team(name="Night shift", by=people["admin"])
    accounts.add_team_member(team=night, user=make_user("night-owl"), by=people["admin"])
    rule = job_rule(endpoint, people["owner_user"], on_call_team=night)
    fail_job(endpoint)
    with django_capture_on_commit_callbacks(execute=True):
        services.evaluate(rule=rule, endpoint=endpoint)
    assert sorted(a for m in mail.outbox for a in m.to) == ["endpoint-owner@example.test", "night-owl@example.test"]


def test_a_rolled_back_evaluation_mails_nobody(endpoint, people, django_capture_on_commit_callbacks):
    from django.db import transaction

    rule = job_rule(endpoint, people["owner_user"])
    fail_job(endpoint)
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(RuntimeError), transaction.atomic():
        services.evaluate(rule=rule, endpoint=endpoint)
        raise RuntimeError("something later failed")
    assert mail.outbox == []
    assert not Alert.objects.exists()


def test_acknowledging_sends_nothing_but_resolving_tells_the_same_people(
    endpoint, people, django_capture_on_commit_callbacks
):
    alert = _fire(endpoint, people, django_capture_on_commit_callbacks)
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        services.acknowledge(alert=alert, by=people["oncall"])
    assert mail.outbox == []
    with django_capture_on_commit_callbacks(execute=True):
        services.resolve(alert=alert, by=people["oncall"], comment="Fixed the feature store credentials.")
    assert len(mail.outbox) == 3
    assert mail.outbox[0].subject == "Resolved: Failed jobs on churn-propensity"
    assert "Fixed the feature store credentials." in mail.outbox[0].body


def test_an_auto_resolved_alert_tells_the_people_it_cleared(endpoint, people, django_capture_on_commit_callbacks):
    alert = _fire(endpoint, people, django_capture_on_commit_callbacks)
    mail.outbox.clear()
    clear_failures()
    with django_capture_on_commit_callbacks(execute=True):
        assert services.evaluate(rule=alert.rule, endpoint=endpoint) == "resolved"
    assert len(mail.outbox) == 3 and "Condition cleared" in mail.outbox[0].body


# --- Silences ------------------------------------------------------------------------------------


def test_a_silence_on_the_endpoint_keeps_the_alert_quiet_and_the_alert_says_so(
    endpoint, people, django_capture_on_commit_callbacks
):
    silence = services.create_silence(
        by=people["owner_user"], endpoint=endpoint, ends_at=timezone.now() + timedelta(hours=2), reason="Maintenance"
    )
    alert = _fire(endpoint, people, django_capture_on_commit_callbacks)
    assert alert.state == "firing"
    assert alert.silenced_by == silence
    assert mail.outbox == []
    assert not Notification.objects.filter(verb__startswith="alerting").exists()


def test_a_silence_on_another_rule_does_not_match(endpoint, people, django_capture_on_commit_callbacks):
    other = job_rule(endpoint, people["owner_user"], name="Other", threshold=50)
    services.create_silence(
        by=people["owner_user"], rule=other, ends_at=timezone.now() + timedelta(hours=1), reason="Noisy"
    )
    alert = _fire(endpoint, people, django_capture_on_commit_callbacks)
    assert alert.silenced_by is None and len(mail.outbox) == 3


def test_an_ended_silence_no_longer_suppresses(endpoint, people, django_capture_on_commit_callbacks):
    silence = services.create_silence(
        by=people["owner_user"], endpoint=endpoint, ends_at=timezone.now() + timedelta(hours=2), reason="Deploy"
    )
    services.end_silence(silence=silence, by=people["owner_user"])
    alert = _fire(endpoint, people, django_capture_on_commit_callbacks)
    assert alert.silenced_by is None and len(mail.outbox) == 3


def test_a_silence_must_end_in_the_future_and_give_a_reason(endpoint, people):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError) as caught:
        services.create_silence(by=people["owner_user"], endpoint=endpoint, ends_at=timezone.now(), reason=" ")
    assert set(caught.value.message_dict) == {"ends_at", "reason"}


def test_only_operations_may_silence_a_whole_environment(endpoint, people):
    from django.core.exceptions import PermissionDenied

    ends = timezone.now() + timedelta(hours=1)
    with pytest.raises(PermissionDenied):
        services.create_silence(by=people["owner_user"], environment=endpoint.environment, ends_at=ends, reason="x")
    assert services.create_silence(by=people["ops"], environment=endpoint.environment, ends_at=ends, reason="x")


# --- Webhooks ------------------------------------------------------------------------------------


def _deliver_all() -> list[WebhookDelivery]:
    for job in Job.objects.filter(kind=services.DELIVER_JOB).order_by("created_at"):
        services.deliver(delivery_id=job.params["delivery_id"], final=False)
    return list(WebhookDelivery.objects.order_by("pk"))


def test_a_json_webhook_receives_the_alert(endpoint, people, receiver, django_capture_on_commit_callbacks):
    services.create_channel(by=people["owner_user"], name="pager", url=f"{receiver.url}/hook", endpoint=endpoint)
    alert = _fire(endpoint, people, django_capture_on_commit_callbacks)
    (delivery,) = _deliver_all()
    assert delivery.status == "delivered" and delivery.attempts == 1 and delivery.response_status == 200
    (received,) = receiver.requests
    assert received["path"] == "/hook"
    assert received["headers"]["Content-Type"] == "application/json"
    body = received["json"]
    assert body["event"] == "fired"
    assert body["alert"]["id"] == alert.pk and body["alert"]["state"] == "firing"
    assert body["alert"]["severity"] == "critical" and body["alert"]["value"] == 1.0
    assert body["rule"]["kind"] == "job_failures"
    assert body["endpoint"] == {"name": "churn-propensity", "environment": "production"}


def test_a_slack_compatible_webhook_receives_a_text_message(
    endpoint, people, receiver, django_capture_on_commit_callbacks
):
    services.create_channel(by=people["ops"], name="slack", url=receiver.url, format="slack", team=people["ops_team"])
    alert = _fire(endpoint, people, django_capture_on_commit_callbacks)
    _deliver_all()
    body = receiver.requests[0]["json"]
    assert set(body) == {"text"}
    assert body["text"].startswith(":rotating_light: [CRITICAL] Failed jobs on churn-propensity (production)")
    assert f"/alerts/{alert.pk}/|Alert #{alert.pk}>" in body["text"]


def test_a_webhook_with_a_secret_signs_the_body(endpoint, people, receiver, django_capture_on_commit_callbacks):
    services.create_channel(
        by=people["owner_user"], name="signed", url=receiver.url, endpoint=endpoint, secret="s3cret"
    )
    _fire(endpoint, people, django_capture_on_commit_callbacks)
    _deliver_all()
    received = receiver.requests[0]
    assert received["headers"]["X-Causeway-Signature"] == services.signature("s3cret", received["body"])


def test_a_resolution_is_posted_as_well(endpoint, people, receiver, django_capture_on_commit_callbacks):
    services.create_channel(by=people["owner_user"], name="pager", url=receiver.url, endpoint=endpoint)
    alert = _fire(endpoint, people, django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=True):
        services.resolve(alert=alert, by=people["owner_user"], comment="ok")
    _deliver_all()
    assert [r["json"]["event"] for r in receiver.requests] == ["fired", "resolved"]
    assert receiver.requests[1]["json"]["alert"]["state"] == "resolved"


def test_a_channel_above_the_alerts_severity_is_not_posted_to(
    endpoint, people, receiver, django_capture_on_commit_callbacks
):
    services.create_channel(
        by=people["owner_user"], name="p1", url=receiver.url, endpoint=endpoint, min_severity="critical"
    )
    rule = job_rule(endpoint, people["owner_user"], severity="warning")
    fail_job(endpoint)
    services.evaluate(rule=rule, endpoint=endpoint)
    assert not WebhookDelivery.objects.exists()


def test_a_silenced_alert_is_not_posted(endpoint, people, receiver, django_capture_on_commit_callbacks):
    services.create_channel(by=people["owner_user"], name="pager", url=receiver.url, endpoint=endpoint)
    services.create_silence(
        by=people["owner_user"], endpoint=endpoint, ends_at=timezone.now() + timedelta(hours=1), reason="Drill"
    )
    _fire(endpoint, people, django_capture_on_commit_callbacks)
    assert not WebhookDelivery.objects.exists()


def test_a_failing_receiver_is_retried_then_the_delivery_marked_failed(
    endpoint, people, receiver, django_capture_on_commit_callbacks
):
    services.create_channel(by=people["owner_user"], name="pager", url=receiver.url, endpoint=endpoint)
    _fire(endpoint, people, django_capture_on_commit_callbacks)
    delivery = WebhookDelivery.objects.get()
    receiver.statuses = [500, 502]
    with pytest.raises(services.DeliveryFailed, match="HTTP 500"):
        services.deliver(delivery_id=delivery.pk, final=False)
    delivery.refresh_from_db()
    assert delivery.status == "pending" and delivery.attempts == 1 and delivery.response_status == 500
    with pytest.raises(services.DeliveryFailed, match="HTTP 502"):
        services.deliver(delivery_id=delivery.pk, final=True)
    delivery.refresh_from_db()
    assert delivery.status == "failed" and delivery.attempts == 2


def test_an_unreachable_webhook_never_breaks_the_evaluation(endpoint, people, django_capture_on_commit_callbacks):
    services.create_channel(by=people["owner_user"], name="dead", url="http://127.0.0.1:9/hook", endpoint=endpoint)
    alert = _fire(endpoint, people, django_capture_on_commit_callbacks)
    assert alert.state == "firing" and len(mail.outbox) == 3
    delivery = WebhookDelivery.objects.get()
    with pytest.raises(services.DeliveryFailed):
        services.deliver(delivery_id=delivery.pk, final=True)
    delivery.refresh_from_db()
    assert delivery.status == "failed" and delivery.last_error.startswith("NewConnectionError")
    assert "Connection refused" in delivery.last_error


def test_a_delivered_payload_is_not_posted_twice(endpoint, people, receiver, django_capture_on_commit_callbacks):
    services.create_channel(by=people["owner_user"], name="pager", url=receiver.url, endpoint=endpoint)
    _fire(endpoint, people, django_capture_on_commit_callbacks)
    delivery = WebhookDelivery.objects.get()
    services.deliver(delivery_id=delivery.pk, final=False)
    services.deliver(delivery_id=delivery.pk, final=False)
    assert len(receiver.requests) == 1
    assert json.loads(receiver.requests[0]["body"])["event"] == "fired"
