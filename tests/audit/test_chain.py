from contextlib import contextmanager

import pytest
from django.core.management import CommandError, call_command
from django.db import connection, transaction

from apps.audit import services as audit
from apps.audit.models import AppendOnlyError, AuditEvent
from apps.audit.selectors import verify_chain

pytestmark = pytest.mark.django_db


@contextmanager
def tampering_allowed():
    """What a DBA with DDL rights could do: switch off the append-only triggers."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ALTER TABLE audit_auditevent DISABLE TRIGGER USER")
        try:
            yield
        finally:
            with connection.cursor() as cursor:
                cursor.execute("ALTER TABLE audit_auditevent ENABLE TRIGGER USER")
    else:
        yield


def write_events(users, n=3):
    return [
        audit.record(
            actor=users["admin"],
            action="thing.change",
            object_type="x.thing",
            object_id=str(i),
            before={"v": i},
            after={"v": i + 1},
        )
        for i in range(n)
    ]


def test_each_event_links_to_the_previous_one(users):
    first, second, third = write_events(users)
    assert second.prev_hash == first.hash and third.prev_hash == second.hash
    assert third.sequence == second.sequence + 1 == first.sequence + 2
    assert verify_chain().ok


def test_record_keeps_only_changed_keys_in_the_diff(users):
    event = audit.record(actor=users["admin"], action="x", before={"a": 1, "b": 2}, after={"a": 1, "b": 3, "c": 4})
    assert event.changes == {"b": [2, 3], "c": [None, 4]}


def test_record_captures_request_id_and_ip(users, client):
    from apps.accounts import services

    client.force_login(users["scientist"])
    client.post(
        "/accounts/me/tokens/",
        {"name": "t", "expires_in_days": 5},
        HTTP_X_REQUEST_ID="req-abc-123",
        REMOTE_ADDR="10.1.2.3",
    )
    event = AuditEvent.objects.filter(action="token.create").latest("sequence")
    assert event.request_id == "req-abc-123"
    assert event.ip_address == "10.1.2.3"
    assert event.actor_username == "scientist"
    assert services  # the token service wrote the event, not the view


def test_an_edited_event_is_detected(users):
    events = write_events(users)
    with tampering_allowed(), connection.cursor() as cursor:
        cursor.execute("UPDATE audit_auditevent SET after = %s WHERE id = %s", ['{"v": 999}', events[1].pk])
    report = verify_chain()
    assert not report.ok
    assert any(f"#{events[1].sequence}" in p and "edited" in p for p in report.problems)


def test_a_deleted_event_is_detected(users):
    events = write_events(users)
    with tampering_allowed(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM audit_auditevent WHERE id = %s", [events[1].pk])
    report = verify_chain()
    assert any("missing" in p for p in report.problems)
    assert any("broken" in p for p in report.problems)


def test_a_deleted_newest_event_is_detected(users):
    events = write_events(users)
    with tampering_allowed(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM audit_auditevent WHERE id = %s", [events[-1].pk])
    report = verify_chain()
    assert any("deleted tail" in p for p in report.problems)


def test_verify_audit_command_fails_on_a_broken_chain(users):
    events = write_events(users)
    call_command("verify_audit")
    with tampering_allowed(), connection.cursor() as cursor:
        cursor.execute("UPDATE audit_auditevent SET action = 'nothing' WHERE id = %s", [events[0].pk])
    with pytest.raises(CommandError, match="audit chain broken"):
        call_command("verify_audit")


def test_the_application_cannot_update_or_delete_events(users):
    event = write_events(users, 1)[0]
    event.action = "rewritten"
    with pytest.raises(AppendOnlyError):
        event.save()
    with pytest.raises(AppendOnlyError):
        event.delete()
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.filter(pk=event.pk).update(action="rewritten")
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.all().delete()


@pytest.mark.skipif("connection.vendor != 'postgresql'", reason="database triggers are PostgreSQL's")
def test_postgresql_refuses_raw_updates_and_deletes(users):
    from django.db import DatabaseError

    event = write_events(users, 1)[0]
    for sql in ("UPDATE audit_auditevent SET action = 'x' WHERE id = %s", "DELETE FROM audit_auditevent WHERE id = %s"):
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql, [event.pk])


def test_an_event_rolled_back_with_its_change_leaves_the_chain_intact(users):
    write_events(users, 2)
    with pytest.raises(RuntimeError), transaction.atomic():
        audit.record(actor=users["admin"], action="doomed")
        raise RuntimeError("the change failed")
    write_events(users, 1)
    assert not AuditEvent.objects.filter(action="doomed").exists()
    assert verify_chain().ok
