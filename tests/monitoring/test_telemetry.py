"""Serving telemetry: every /invocations call is buffered, then aggregated per endpoint,
version and minute; concurrent requests and concurrent flushes add up exactly."""

from __future__ import annotations

import datetime as dt
import json
import threading

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone

from apps.accounts import services as accounts
from apps.deployments.models import Endpoint, Environment
from apps.deployments.serving import observers
from apps.monitoring import selectors, services
from apps.monitoring.models import PredictionRecord, TrafficMinute
from apps.monitoring.telemetry import Recorder, recorder
from tests.conftest import make_user
from tests.deployments.test_serving_loader import (  # noqa: F401  (serving_storage is a fixture)
    FEATURES,
    serving_storage,
    skops_version,
)
from tests.monitoring.factories import make_endpoint, make_training_data

URL = "/serve/{}/invocations"


@pytest.fixture(autouse=True)
def empty_buffer():
    recorder.drain()
    recorder.forget_configs()
    yield
    recorder.drain()
    recorder.forget_configs()


@pytest.fixture
def owner(db):
    return make_user("endpoint-owner")


@pytest.fixture
def endpoint(serving_storage, owner):  # noqa: F811
    version = skops_version(owner, name="churn")
    make_training_data(version, owner)
    environment = Environment.objects.create(name="production")
    return Endpoint.objects.create(name="churn", environment=environment, owner=owner, current_version=version)


@pytest.fixture
def client(owner):
    _, secret = accounts.create_token(user=owner, name="serving")
    return Client(HTTP_AUTHORIZATION=f"Bearer {secret}")


def post(client, frame=FEATURES.head(3), **extra):
    body = {"dataframe_split": {"columns": list(frame.columns), "data": frame.values.tolist()}}
    return client.post(URL.format("churn"), data=json.dumps(body), content_type="application/json", **extra)


def test_every_answer_names_its_request_id(endpoint, client):
    response = post(client)
    assert response.status_code == 200
    assert len(response["X-Request-Id"]) == 32


def test_a_well_formed_request_id_from_the_caller_is_kept(endpoint, client):
    response = post(client, HTTP_X_REQUEST_ID="order-42.a")
    assert response["X-Request-Id"] == "order-42.a"


def test_a_malformed_request_id_is_replaced(endpoint, client):
    response = post(client, HTTP_X_REQUEST_ID="bad id<script>")
    assert response["X-Request-Id"] != "bad id<script>"


def test_a_served_request_is_buffered_not_written(endpoint, client):
    post(client)
    assert recorder.pending() == 1
    assert not TrafficMinute.objects.exists()


def test_flush_writes_counts_latency_and_rows_per_minute(endpoint, client):
    post(client)
    post(client, FEATURES.head(5))
    assert recorder.flush() == 2
    row = TrafficMinute.objects.get()
    assert (row.endpoint_id, row.model_version_id) == (endpoint.pk, endpoint.current_version_id)
    assert (row.requests, row.errors, row.rows) == (2, 0, 8)
    assert sum(getattr(row, f"latency_b{i:02d}") for i in range(14)) == 2


def test_errors_are_counted_by_kind(endpoint, client):
    client.post(URL.format("churn"), data="{not json", content_type="application/json")
    post(client, FEATURES.drop(columns=["a"]))
    post(client)
    recorder.flush()
    row = TrafficMinute.objects.get()
    assert (row.requests, row.errors) == (3, 2)
    assert row.errors_by_kind == {"bad_request": 2}


def test_calls_refused_before_reaching_the_endpoint_are_not_counted(endpoint):
    Client().post(URL.format("churn"), data="{}", content_type="application/json")  # no token: 401
    assert recorder.pending() == 0


def test_input_features_are_binned_on_the_training_profile(endpoint, client):
    post(client, FEATURES)  # a: 0.1, 1.5, -0.3, 2.2, -1.1, 0.7, 1.9, -2.0
    recorder.flush()
    features = TrafficMinute.objects.get().features
    # [under -2, -2..-1, -1..0, 0..1, 1..2 (2 included), over 2]
    assert features["a"]["bins"] == [0, 2, 1, 2, 2, 1]
    assert features["region"]["cats"] == {"east": 2, "north": 2, "south": 2, "west": 2}
    assert features["b"]["n"] == 8  # not profiled: summarised on the log scale
    assert "lbins" in features["b"]


def test_predictions_are_summarised_and_recorded_by_request_id(endpoint, client):
    response = post(client, FEATURES.head(4))
    recorder.flush()
    record = PredictionRecord.objects.get(request_id=response["X-Request-Id"])
    assert record.predictions == json.loads(response.content)["predictions"]
    assert record.rows == 4
    assert record.inputs is None  # payloads only on opt-in
    assert TrafficMinute.objects.get().predictions["n"] == 4


def test_payloads_are_kept_with_an_expiry_when_the_endpoint_opts_in(endpoint, client, owner):
    services.update_settings(
        endpoint=endpoint,
        by=owner,
        drift_warn_psi=0.1,
        drift_alert_psi=0.25,
        drift_window_hours=24,
        store_payloads=True,
        payload_retention_days=3,
    )
    response = post(client, FEATURES.head(2))
    recorder.flush()
    record = PredictionRecord.objects.get(request_id=response["X-Request-Id"])
    assert record.inputs["columns"] == list(FEATURES.columns)
    assert record.inputs_expire_at > timezone.now() + dt.timedelta(days=2)


def test_purge_clears_expired_payloads(endpoint):
    now = timezone.now()
    PredictionRecord.objects.create(
        endpoint=endpoint, request_id="old", inputs={"data": [1]}, inputs_expire_at=now - dt.timedelta(minutes=1)
    )
    PredictionRecord.objects.create(
        endpoint=endpoint, request_id="new", inputs={"data": [2]}, inputs_expire_at=now + dt.timedelta(days=1)
    )
    assert services.purge_expired(now)["payloads_cleared"] == 1
    assert PredictionRecord.objects.get(request_id="old").inputs is None
    assert PredictionRecord.objects.get(request_id="new").inputs == {"data": [2]}


def test_a_failed_flush_keeps_the_aggregates_for_the_next_one(endpoint, client, monkeypatch):
    post(client)

    def broken(*args, **kwargs):
        raise RuntimeError("database away")

    monkeypatch.setattr(services, "merge_minutes", broken)
    with pytest.raises(RuntimeError):
        recorder.flush()
    monkeypatch.undo()
    assert recorder.flush() == 1
    assert TrafficMinute.objects.get().requests == 1


def test_an_observer_that_raises_never_breaks_serving(endpoint, client):
    def broken(invocation):
        raise RuntimeError("boom")

    observers.register_invocation_observer(broken)
    try:
        assert post(client).status_code == 200
    finally:
        observers.unregister_invocation_observer(broken)


@pytest.mark.django_db(transaction=True)
def test_concurrent_requests_are_counted_exactly(serving_storage, owner):  # noqa: F811
    version = skops_version(owner, name="churn")
    environment = Environment.objects.create(name="production")
    endpoint = Endpoint.objects.create(name="churn", environment=environment, owner=owner, current_version=version)
    _, secret = accounts.create_token(user=owner, name="serving")
    recorder.drain()
    threads, per_thread, failures = 8, 15, []

    def call():
        client = Client(HTTP_AUTHORIZATION=f"Bearer {secret}")
        try:
            for _ in range(per_thread):
                if post(client).status_code != 200:
                    failures.append("status")
        finally:
            connection.close()

    workers = [threading.Thread(target=call) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    recorder.flush()
    assert not failures
    stats = selectors.endpoint_window_stats(
        endpoint, start=timezone.now() - dt.timedelta(hours=1), end=timezone.now() + dt.timedelta(minutes=1)
    )
    assert (stats.requests, stats.rows) == (threads * per_thread, threads * per_thread * 3)
    assert PredictionRecord.objects.filter(endpoint=endpoint).count() == threads * per_thread


@pytest.mark.django_db(transaction=True)
def test_concurrent_flushes_of_the_same_minute_add_up(users):
    endpoint = make_endpoint(users["engineer"])
    minute = timezone.now().replace(second=0, microsecond=0)
    flushers, rounds, failures = 6, 10, []

    def flush():
        try:
            for _ in range(rounds):
                batch = services.MinuteBatch(endpoint_id=endpoint.pk, model_version_id=None, minute=minute)
                batch.add_request(latency_ms=12.0, rows=2)
                batch.add_request(latency_ms=30.0, rows=1, error_kind="bad_request")
                batch.features = {"x": {"n": 3, "nulls": 0, "cats": {"a": 3}}}
                services.merge_minutes([batch])
        except Exception as exc:  # surfaced below: a lost update would show as wrong counts
            failures.append(exc)
        finally:
            connection.close()

    workers = [threading.Thread(target=flush) for _ in range(flushers)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert not failures
    row = TrafficMinute.objects.get(endpoint=endpoint)
    total = flushers * rounds
    assert (row.requests, row.errors, row.rows) == (2 * total, total, 3 * total)
    assert row.errors_by_kind == {"bad_request": total}
    assert row.features["x"]["cats"] == {"a": 3 * total}


def test_a_recorder_groups_invocations_by_minute_and_version(endpoint):
    local = Recorder()
    base = timezone.now().replace(second=0, microsecond=0).timestamp()
    for at, version in [(base + 1, 1), (base + 2, 1), (base + 61, 1), (base + 3, 2)]:
        local.observe(
            observers.Invocation(
                endpoint_id=endpoint.pk,
                endpoint_name="churn",
                model_version_id=None if version == 2 else endpoint.current_version_id,
                request_id=f"r{at}",
                at=at,
                latency_ms=5.0,
                status=200,
                error_kind="",
            )
        )
    batches, _ = local.aggregate(local.drain())
    assert sorted(b.requests for b in batches) == [1, 1, 2]


def test_a_canarys_calls_are_logged_apart_from_the_primarys(endpoint, client, owner, monkeypatch):
    from apps.deployments.serving import views

    canary = skops_version(owner, model=endpoint.current_version.registered_model)
    Endpoint.objects.filter(pk=endpoint.pk).update(canary_version=canary, canary_percent=10)
    draws = iter([5.0, 50.0, 50.0])  # the first request goes to the canary
    monkeypatch.setattr(views, "draw", lambda: next(draws))
    for _ in range(3):
        assert post(client).status_code == 200
    recorder.flush()
    by_version = dict(TrafficMinute.objects.values_list("model_version_id", "requests"))
    assert by_version == {canary.pk: 1, endpoint.current_version_id: 2}


def test_a_flush_skips_what_was_observed_for_an_endpoint_deleted_since(db, users):
    endpoint = make_endpoint(users["engineer"])
    gone = make_endpoint(users["engineer"], name="gone-soon")
    minute = timezone.now().replace(second=0, microsecond=0)
    batches = [
        services.MinuteBatch(endpoint_id=endpoint.pk, model_version_id=None, minute=minute, requests=2),
        services.MinuteBatch(endpoint_id=gone.pk, model_version_id=None, minute=minute, requests=3),
    ]
    gone.delete()
    services.merge_minutes(batches)
    assert list(TrafficMinute.objects.values_list("endpoint_id", "requests")) == [(endpoint.pk, 2)]
