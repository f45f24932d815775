"""OpenLineage RunEvents posted to /api/v1/lineage, by the stock openlineage-python client over
HTTP (a live server, a personal access token) and as raw JSON for the malformed cases."""

import gzip
import json
import uuid
from datetime import UTC, datetime

import pytest
import requests
from django.contrib.auth.models import Group
from openlineage.client import OpenLineageClient
from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
from openlineage.client.facet_v2 import schema_dataset
from openlineage.client.transport.http import ApiKeyTokenProvider, HttpCompression, HttpConfig, HttpTransport

from apps.accounts import services as accounts
from apps.audit.models import AuditEvent
from apps.catalog import services
from apps.catalog.models import Dataset, DatasetVersion, LineageRun, LineageRunDataset
from apps.catalog.openlineage import ingest_run_event

PRODUCER = "https://example.test/pipelines"
LIVE = pytest.mark.django_db(transaction=True)
DB = pytest.mark.django_db


def schema_facet(*fields: tuple[str, str]) -> dict:
    return {
        "schema": schema_dataset.SchemaDatasetFacet(
            fields=[
                schema_dataset.SchemaDatasetFacetFields(name=name, type=type_, description=f"The {name}.")
                for name, type_ in fields
            ]
        )
    }


def run_event(state, run_id, *, inputs=(), outputs=(), job="daily_orders") -> RunEvent:
    return RunEvent(
        eventType=state,
        eventTime=datetime.now(UTC).isoformat(),
        run=Run(runId=str(run_id)),
        job=Job(namespace="airflow", name=job),
        inputs=list(inputs),
        outputs=list(outputs),
        producer=PRODUCER,
    )


def raw_event(**overrides) -> dict:
    event = {
        "eventType": "COMPLETE",
        "eventTime": "2026-03-01T10:00:00.000Z",
        "producer": PRODUCER,
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
        "run": {"runId": str(uuid.uuid4()), "facets": {}},
        "job": {"namespace": "airflow", "name": "daily_orders", "facets": {}},
        "inputs": [{"namespace": "postgres://db:5432", "name": "shop.public.orders"}],
        "outputs": [],
    }
    event.update(overrides)
    return event


@pytest.fixture
def token_for():
    def make(user):
        return accounts.create_token(user=user, name="pipeline")[1]

    return make


@pytest.fixture
def lineage_client(live_server, token_for, monkeypatch):
    """An OpenLineageClient for `user`, sending to the live server with the user's token."""
    monkeypatch.delenv("OPENLINEAGE_DISABLED", raising=False)

    def make(user, **config) -> OpenLineageClient:
        transport = HttpTransport(
            HttpConfig(
                url=live_server.url,
                endpoint="api/v1/lineage",
                auth=ApiKeyTokenProvider({"apiKey": token_for(user)}),
                timeout=30,
                **config,
            )
        )
        return OpenLineageClient(transport=transport)

    return make


@pytest.fixture
def bearer(api_client, token_for):
    def authenticate(user):
        api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {token_for(user)}")
        return api_client

    return authenticate


def post(api_client, body, **extra):
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return api_client.post("/api/v1/lineage", data=data, content_type="application/json", **extra)


# --- the stock client over HTTP ------------------------------------------------------------


@LIVE
def test_start_then_complete_registers_datasets_links_them_and_records_the_output_schema(users, lineage_client):
    scientist = users["scientist"]
    client = lineage_client(scientist)
    run_id = uuid.uuid4()
    orders = InputDataset(namespace="postgres://db:5432", name="shop.public.orders")
    daily = OutputDataset(
        namespace="s3://warehouse",
        name="marts/daily_orders",
        facets=schema_facet(("day", "DATE"), ("orders", "BIGINT"), ("revenue", "DECIMAL(12,2)")),
    )

    client.emit(run_event(RunState.START, run_id, inputs=[orders], outputs=[daily]))
    run = LineageRun.objects.get(run_id=run_id)
    assert run.state == "START" and run.started_at is not None and run.ended_at is None
    assert not DatasetVersion.objects.exists(), "a schema is recorded when the run completes, not before"

    client.emit(run_event(RunState.COMPLETE, run_id, inputs=[orders], outputs=[daily]))
    run.refresh_from_db()
    assert run.state == "COMPLETE" and run.ended_at >= run.started_at
    assert run.job_namespace == "airflow" and run.job_name == "daily_orders" and run.producer == PRODUCER

    source = Dataset.objects.get(external_namespace="postgres://db:5432", external_name="shop.public.orders")
    target = Dataset.objects.get(external_namespace="s3://warehouse", external_name="marts/daily_orders")
    for dataset in (source, target):
        assert dataset.owner == scientist and dataset.source_kind == "uri" and dataset.format == "other"
        assert dataset.visibility == "organisation" and dataset.classification == "internal"
    assert target.source_uri == "s3://warehouse/marts/daily_orders"
    links = set(LineageRunDataset.objects.filter(run=run).values_list("dataset__name", "direction"))
    assert links == {("shop.public.orders", "input"), ("marts/daily_orders", "output")}

    version = target.versions.get()
    assert version.status == DatasetVersion.Status.EXTERNAL and version.produced_by == run
    assert target.current_version == version
    columns = list(version.columns.values_list("name", "type", "physical_type", "description"))
    assert columns == [
        ("day", "date", "DATE", "The day."),
        ("orders", "integer", "BIGINT", "The orders."),
        ("revenue", "float", "DECIMAL(12,2)", "The revenue."),
    ]
    assert LineageRunDataset.objects.get(run=run, direction="output").version == version
    assert not source.versions.exists(), "inputs are linked, not versioned"
    events = AuditEvent.objects.filter(action="lineage.event", object_id=str(run.pk))
    assert events.count() == 2 and events.filter(actor=scientist).count() == 2


@LIVE
def test_an_event_touching_a_private_dataset_the_poster_cannot_see_is_refused_and_writes_nothing(users, lineage_client):
    hidden = services.create_dataset(
        by=users["engineer"],
        name="Salaries",
        visibility="private",
        external_namespace="postgres://hr:5432",
        external_name="hr.salaries",
    )
    client = lineage_client(users["scientist"])
    before = (Dataset.objects.count(), AuditEvent.objects.count())
    run_id = uuid.uuid4()
    event = run_event(
        RunState.COMPLETE,
        run_id,
        inputs=[InputDataset(namespace="postgres://hr:5432", name="hr.salaries")],
        outputs=[OutputDataset(namespace="s3://warehouse", name="marts/pay", facets=schema_facet(("x", "INT")))],
    )
    with pytest.raises(requests.HTTPError) as refused:
        client.emit(event)

    response = refused.value.response
    assert response.status_code == 403
    error = response.json()["error"]
    assert error["code"] == "permission_denied"
    assert error["message"] == "not allowed to write lineage for one of the datasets"
    assert "salaries" not in response.text.lower() and "Salaries" not in response.text
    assert not LineageRun.objects.filter(run_id=run_id).exists()
    assert not LineageRunDataset.objects.exists()
    assert not Dataset.objects.filter(external_name="marts/pay").exists(), "the whole event is rolled back"
    assert (Dataset.objects.count(), AuditEvent.objects.count()) == before
    assert not hidden.versions.exists()


@LIVE
def test_gzip_compressed_events_from_the_client_are_accepted(users, lineage_client):
    client = lineage_client(users["engineer"], compression=HttpCompression.GZIP)
    run_id = uuid.uuid4()
    client.emit(
        run_event(RunState.COMPLETE, run_id, inputs=[InputDataset(namespace="file", name="/data/raw/events.csv")])
    )
    dataset = Dataset.objects.get(external_namespace="file", external_name="/data/raw/events.csv")
    assert dataset.source_uri == "file:///data/raw/events.csv"
    assert LineageRun.objects.get(run_id=run_id).datasets.get().dataset == dataset


# --- raw JSON --------------------------------------------------------------------------------


@DB
def test_the_answer_counts_the_runs_inputs_and_outputs(users, bearer):
    event = raw_event(outputs=[{"namespace": "s3://w", "name": "a"}, {"namespace": "s3://w", "name": "b"}])
    response = post(bearer(users["scientist"]), event)
    assert response.status_code == 201
    assert response.json() == {"run_id": event["run"]["runId"], "inputs": 1, "outputs": 2}


@DB
def test_unknown_fields_are_ignored(users, bearer):
    event = raw_event(
        somethingNew={"nested": [1, 2, 3]},
        run={"runId": str(uuid.uuid4()), "facets": {"custom": {"_producer": PRODUCER, "anything": True}}, "x": 1},
        job={"namespace": "airflow", "name": "daily_orders", "unknownJobField": "ignored"},
        inputs=[{"namespace": "postgres://db:5432", "name": "shop.public.orders", "inputFacets": {}, "extra": 1}],
    )
    response = post(bearer(users["scientist"]), event)
    assert response.status_code == 201, response.content
    run = LineageRun.objects.get(run_id=event["run"]["runId"])
    assert run.facets["run"]["custom"]["anything"] is True
    assert "somethingNew" not in json.dumps(run.facets)


@DB
def test_a_missing_run_id_is_a_400_naming_the_field(users, bearer):
    event = raw_event(run={"facets": {}})
    response = post(bearer(users["scientist"]), event)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert error["details"] == {"run.runId": ["required"]}
    assert not LineageRun.objects.exists() and not Dataset.objects.exists()


@DB
def test_malformed_fields_are_all_reported_by_their_path(users, bearer):
    event = raw_event(
        eventType="FINISHED",
        eventTime="yesterday",
        run={"runId": "not-a-uuid"},
        job={"namespace": "airflow"},
        inputs=[{"namespace": "s3://w"}, "orders"],
        outputs=[
            {
                "namespace": "s3://w",
                "name": "out",
                "facets": {"schema": {"fields": [{"name": "id", "type": "INT"}, {"name": "id"}, {"type": "INT"}]}},
            }
        ],
    )
    response = post(bearer(users["scientist"]), event)
    assert response.status_code == 400
    assert set(response.json()["error"]["details"]) == {
        "eventType",
        "eventTime",
        "run.runId",
        "job.name",
        "inputs[0].name",
        "inputs[1]",
        "outputs[0].facets.schema.fields[1].name",
        "outputs[0].facets.schema.fields[2].name",
    }


@DB
def test_a_body_that_is_not_an_object_is_a_400(users, bearer):
    assert post(bearer(users["scientist"]), [raw_event()]).status_code == 400
    assert post(bearer(users["scientist"]), "{not json").status_code == 400


@DB
def test_bodies_over_one_megabyte_are_refused_with_413(users, bearer):
    client = bearer(users["scientist"])
    big = raw_event(job={"namespace": "airflow", "name": "big", "facets": {"blob": {"x": "a" * (1024 * 1024)}}})
    response = post(client, big)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "too_large"
    bomb = gzip.compress(json.dumps(big).encode())  # small on the wire, too big once inflated
    response = post(client, bomb, HTTP_CONTENT_ENCODING="gzip")
    assert response.status_code == 413
    assert not LineageRun.objects.exists()


@DB
def test_anonymous_posts_are_refused(api_client):
    response = post(api_client, raw_event())
    assert response.status_code in (401, 403)
    assert not LineageRun.objects.exists()


@DB
def test_users_whose_roles_do_not_register_datasets_cannot_write_lineage(users, bearer):
    response = post(bearer(users["approver"]), raw_event())
    assert response.status_code == 403
    assert not LineageRun.objects.exists()


@DB
def test_only_post_is_allowed(users, bearer):
    assert bearer(users["scientist"]).get("/api/v1/lineage").status_code == 405


@DB
def test_the_endpoint_is_described_in_the_openapi_schema(client):
    schema = client.get("/api/schema/").content.decode()
    assert "/api/v1/lineage" in schema and "OpenLineageRunEvent" in schema


# --- the service -----------------------------------------------------------------------------


@DB
def test_an_existing_dataset_is_found_by_its_openlineage_identity(users):
    orders = services.create_dataset(
        by=users["engineer"], name="Orders", external_namespace="postgres://db:5432", external_name="shop.public.orders"
    )
    run = ingest_run_event(event=raw_event(), by=users["scientist"])
    assert run.datasets.get().dataset == orders
    assert Dataset.objects.count() == 1


@DB
def test_the_same_schema_again_records_no_new_version(users):
    output = {
        "namespace": "s3://w",
        "name": "daily",
        "facets": {"schema": {"fields": [{"name": "day", "type": "DATE"}, {"name": "n", "type": "BIGINT"}]}},
    }
    first = ingest_run_event(event=raw_event(outputs=[output]), by=users["scientist"])
    second = ingest_run_event(event=raw_event(outputs=[output]), by=users["scientist"])
    dataset = Dataset.objects.get(external_name="daily")
    assert dataset.versions.count() == 1
    assert second.datasets.get(direction="output").version == dataset.versions.get()
    output["facets"]["schema"]["fields"].append({"name": "revenue", "type": "DOUBLE"})
    ingest_run_event(event=raw_event(outputs=[output]), by=users["scientist"])
    assert dataset.versions.count() == 2
    assert dataset.versions.order_by("-number").first().produced_by != first


@DB
def test_recording_a_schema_on_a_dataset_the_poster_may_not_change_is_refused(users):
    services.create_dataset(by=users["engineer"], name="Daily", external_namespace="s3://w", external_name="daily")
    output = {"namespace": "s3://w", "name": "daily", "facets": {"schema": {"fields": [{"name": "a", "type": "INT"}]}}}
    with pytest.raises(Exception) as refused:
        ingest_run_event(event=raw_event(outputs=[output]), by=users["scientist"])
    assert type(refused.value).__name__ == "PermissionDenied"
    assert not LineageRun.objects.exists()
    # Without a schema the edge alone is recorded: the dataset is visible to the poster.
    ingest_run_event(event=raw_event(outputs=[{"namespace": "s3://w", "name": "daily"}]), by=users["scientist"])
    assert LineageRunDataset.objects.filter(direction="output").count() == 1


@DB
def test_a_late_start_does_not_reopen_a_finished_run_and_facets_merge(users):
    run_id = str(uuid.uuid4())
    ingest_run_event(
        event=raw_event(
            eventType="COMPLETE",
            eventTime="2026-03-01T10:05:00Z",
            run={"runId": run_id, "facets": {"nominalTime": {"nominalStartTime": "2026-03-01T10:00:00Z"}}},
        ),
        by=users["scientist"],
    )
    run = ingest_run_event(
        event=raw_event(
            eventType="START",
            eventTime="2026-03-01T10:00:00Z",
            run={"runId": run_id, "facets": {"parent": {"job": {"name": "dag"}}}},
        ),
        by=users["scientist"],
    )
    run.refresh_from_db()
    assert run.state == "COMPLETE"
    assert run.started_at.isoformat() == "2026-03-01T10:00:00+00:00"
    assert run.ended_at.isoformat() == "2026-03-01T10:05:00+00:00"
    assert set(run.facets["run"]) == {"nominalTime", "parent"}
    assert LineageRun.objects.count() == 1 and LineageRunDataset.objects.count() == 1


@DB
def test_a_platform_admin_without_the_scientist_role_may_link_existing_datasets(users):
    services.create_dataset(
        by=users["engineer"], name="Orders", external_namespace="postgres://db:5432", external_name="shop.public.orders"
    )
    admin = users["admin"]
    assert admin.groups.filter(name="Platform admins").exists()
    admin.groups.remove(*Group.objects.exclude(name="Platform admins"))
    run = ingest_run_event(event=raw_event(), by=admin)
    assert run.datasets.count() == 1
