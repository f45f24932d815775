"""OpenLineage RunEvents into the catalog (the Marquez-compatible POST /api/v1/lineage).

A RunEvent names a job run and the datasets it read and wrote. Each event upserts its
LineageRun by runId, finds or registers the datasets by their OpenLineage identity
(namespace + name), links them to the run, and on COMPLETE records an output's schema facet as
a new external version when the columns changed. One event is one transaction: it is applied
whole or not at all.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from apps.accounts.models import User
from apps.audit import services as audit
from apps.catalog import permissions, services
from apps.catalog.models import Dataset, DatasetVersion, LineageRun, LineageRunDataset
from apps.catalog.selectors import visible_datasets

EVENT_TYPES = ("START", "RUNNING", "COMPLETE", "ABORT", "FAIL", "OTHER")
TERMINAL_STATES = ("COMPLETE", "ABORT", "FAIL")
MAX_DATASETS_PER_LIST = 500
MAX_IDENTITY_LENGTH = 500  # Dataset.external_namespace / external_name, LineageRun.job_*
MAX_COLUMN_NAME_LENGTH = 300  # Column.name
INPUT, OUTPUT = LineageRunDataset.Direction.INPUT, LineageRunDataset.Direction.OUTPUT
NOT_ALLOWED = "not allowed to write lineage for one of the datasets"


@dataclass(frozen=True)
class DatasetRef:
    """One entry of a RunEvent's inputs or outputs."""

    namespace: str
    name: str
    # The schema facet's fields, or None when the event carries no schema facet.
    schema_fields: list[dict[str, str]] | None = None

    @property
    def identity(self) -> tuple[str, str]:
        return (self.namespace, self.name)


@dataclass
class ParsedRunEvent:
    event_time: datetime
    run_id: uuid.UUID
    job_namespace: str
    job_name: str
    event_type: str = ""
    producer: str = ""
    run_facets: dict[str, Any] = field(default_factory=dict)
    job_facets: dict[str, Any] = field(default_factory=dict)
    inputs: list[DatasetRef] = field(default_factory=list)
    outputs: list[DatasetRef] = field(default_factory=list)


def ingest_run_event(*, event: dict, by: User) -> LineageRun:
    """Apply one OpenLineage RunEvent posted by `by`.

    Datasets are matched on (external_namespace, external_name); unknown ones are registered
    for `by` (organisation-wide, internal). An existing dataset `by` may not see refuses the
    whole event, and so does recording an output's new schema on a dataset `by` may not
    change; the refusal names no dataset.
    """
    if not (by.has_perm("catalog.add_dataset") or permissions.is_admin(by)):
        raise PermissionDenied("Your roles do not allow writing lineage.")
    parsed = parse_run_event(event)
    records_schema = parsed.event_type == "COMPLETE"
    with transaction.atomic():
        datasets = _resolve_datasets(parsed, by=by, records_schema=records_schema)
        run, previous_state = _upsert_run(parsed)
        directions = ((INPUT, parsed.inputs), (OUTPUT, parsed.outputs))
        for direction, refs in directions:
            for ref in refs:
                dataset = datasets[ref.identity]
                version = None
                if direction == OUTPUT and records_schema and ref.schema_fields is not None:
                    version = _record_schema(dataset=dataset, ref=ref, run=run, by=by)
                link, created = LineageRunDataset.objects.get_or_create(
                    run=run, dataset=dataset, direction=direction, defaults={"version": version}
                )
                if not created and version is not None and link.version_id != version.pk:
                    link.version = version
                    link.save(update_fields=["version"])
        audit.record(
            actor=by,
            action="lineage.event",
            target=run,
            before={"state": previous_state},
            after={
                "eventType": parsed.event_type,
                "state": run.state,
                "inputs": [_audit_ref(ref, datasets) for ref in parsed.inputs],
                "outputs": [_audit_ref(ref, datasets) for ref in parsed.outputs],
            },
        )
    return run


def parse_run_event(event: Any) -> ParsedRunEvent:
    """Check a RunEvent's fields and return what the catalog keeps of it. Every problem is
    reported at once, keyed by the field's path (`run.runId`, `outputs[0].name`). Fields the
    catalog does not use are ignored."""
    if not isinstance(event, dict):
        raise ValidationError("A RunEvent is a JSON object.")
    errors: dict[str, str] = {}
    event_time = _datetime(event.get("eventTime"), "eventTime", errors)
    event_type = _event_type(event.get("eventType"), errors)
    producer = event.get("producer") if isinstance(event.get("producer"), str) else ""
    run = _object(event.get("run"), "run", errors, required=True)
    job = _object(event.get("job"), "job", errors, required=True)
    run_id = _uuid(run.get("runId"), "run.runId", errors) if run is not None else None
    run_facets = _object(run.get("facets"), "run.facets", errors) if run is not None else None
    job_namespace = _text(job.get("namespace"), "job.namespace", errors) if job is not None else ""
    job_name = _text(job.get("name"), "job.name", errors) if job is not None else ""
    job_facets = _object(job.get("facets"), "job.facets", errors) if job is not None else None
    inputs = _datasets(event.get("inputs"), "inputs", errors, with_schema=False)
    outputs = _datasets(event.get("outputs"), "outputs", errors, with_schema=True)
    if errors:
        raise ValidationError(errors)
    return ParsedRunEvent(
        event_time=event_time,
        run_id=run_id,
        job_namespace=job_namespace,
        job_name=job_name,
        event_type=event_type,
        producer=producer[:500],
        run_facets=run_facets or {},
        job_facets=job_facets or {},
        inputs=inputs,
        outputs=outputs,
    )


def dataset_uri(namespace: str, name: str) -> str:
    """Where an OpenLineage dataset lives, following the naming spec: `s3://bucket` + `a/b`
    gives `s3://bucket/a/b`, `file` + `/data/x.csv` gives `file:///data/x.csv`."""
    if namespace == "file":
        return f"file://{name if name.startswith('/') else '/' + name}"[:1000]
    return f"{namespace.rstrip('/')}/{name.lstrip('/')}"[:1000]


# --- writing -----------------------------------------------------------------------------


def _resolve_datasets(parsed: ParsedRunEvent, *, by: User, records_schema: bool) -> dict[tuple[str, str], Dataset]:
    """The event's datasets by identity, registering the unknown ones. All permission checks
    come before the first write."""
    refs = {ref.identity: ref for ref in [*parsed.inputs, *parsed.outputs]}
    if not refs:
        return {}
    _lock_identities(refs)
    match = Q()
    for namespace, name in refs:
        match |= Q(external_namespace=namespace, external_name=name)
    # The oldest dataset wins if an identity was ever registered twice.
    existing: dict[tuple[str, str], Dataset] = {}
    for dataset in Dataset.objects.filter(match).select_related("team").order_by("pk"):
        existing.setdefault((dataset.external_namespace, dataset.external_name), dataset)
    visible = set(visible_datasets(by).filter(pk__in=[d.pk for d in existing.values()]).values_list("pk", flat=True))
    schema_targets = {ref.identity for ref in parsed.outputs if records_schema and ref.schema_fields is not None}
    for identity, dataset in existing.items():
        if dataset.pk not in visible:
            raise PermissionDenied(NOT_ALLOWED)
        if identity in schema_targets and not permissions.can_change(by, dataset):
            raise PermissionDenied(NOT_ALLOWED)
    for identity in refs:
        if identity not in existing:
            namespace, name = identity
            existing[identity] = services.create_dataset(
                by=by,
                name=name,
                description=f"Registered from OpenLineage events (namespace `{namespace}`).",
                external_namespace=namespace,
                external_name=name,
                source_kind=Dataset.SourceKind.URI,
                source_uri=dataset_uri(namespace, name),
                format=Dataset.Format.OTHER,
                visibility=Dataset.Visibility.ORGANISATION,
                classification=Dataset.Classification.INTERNAL,
            )
    return existing


def _lock_identities(refs: dict[tuple[str, str], DatasetRef]) -> None:
    """Serialise events registering the same identity, which has no unique constraint. SQLite
    already serialises writers (IMMEDIATE transactions); PostgreSQL takes advisory locks that
    end with the transaction, in a fixed order so two events cannot deadlock."""
    if connection.vendor != "postgresql":
        return
    keys = sorted(
        int.from_bytes(
            hashlib.blake2b(f"catalog.dataset\0{ns}\0{name}".encode(), digest_size=8).digest(), "big", signed=True
        )
        for ns, name in refs
    )
    with connection.cursor() as cursor:
        for key in keys:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [key])


def _upsert_run(parsed: ParsedRunEvent) -> tuple[LineageRun, str]:
    run, _ = LineageRun.objects.select_for_update().get_or_create(
        run_id=parsed.run_id,
        defaults={"job_namespace": parsed.job_namespace, "job_name": parsed.job_name},
    )
    previous_state = run.state
    # Events may arrive out of order: a late START or RUNNING does not reopen a finished run,
    # and OTHER carries metadata only.
    if parsed.event_type in TERMINAL_STATES or (
        parsed.event_type in ("START", "RUNNING") and run.state not in TERMINAL_STATES
    ):
        run.state = parsed.event_type
    if parsed.event_type == "START":
        run.started_at = parsed.event_time
    if parsed.event_type in TERMINAL_STATES:
        run.ended_at = parsed.event_time
    if parsed.producer:
        run.producer = parsed.producer
    facets = run.facets if isinstance(run.facets, dict) else {}
    run.facets = {
        "job": _merge_facets(facets.get("job"), parsed.job_facets),
        "run": _merge_facets(facets.get("run"), parsed.run_facets),
    }
    run.save()
    return run, previous_state


def _merge_facets(stored: Any, incoming: dict[str, Any]) -> dict[str, Any]:
    """Later events add or replace facets by name; `{"_deleted": true}` removes one (spec)."""
    merged = dict(stored) if isinstance(stored, dict) else {}
    for name, facet in incoming.items():
        if isinstance(facet, dict) and facet.get("_deleted") is True:
            merged.pop(name, None)
        else:
            merged[name] = facet
    return merged


def _record_schema(*, dataset: Dataset, ref: DatasetRef, run: LineageRun, by: User) -> DatasetVersion:
    """A new external version with the facet's columns, unless the latest version already has
    the same columns (names and types, in order); then that version is the one produced."""
    latest = dataset.versions.order_by("-number").first()
    wanted = [(f["name"], f["type"].lower()) for f in ref.schema_fields or []]
    if latest is not None:
        have = [(name, physical.lower()) for name, physical in latest.columns.values_list("name", "physical_type")]
        if have == wanted:
            return latest
    return services.add_external_version(
        dataset=dataset,
        by=by,
        uri=dataset.source_uri or dataset_uri(ref.namespace, ref.name),
        columns=ref.schema_fields,
        produced_by=run,
        note=f"Schema reported by OpenLineage run {run.run_id}",
    )


def _audit_ref(ref: DatasetRef, datasets: dict[tuple[str, str], Dataset]) -> dict[str, str]:
    return {"namespace": ref.namespace, "name": ref.name, "dataset": datasets[ref.identity].slug}


# --- validation helpers --------------------------------------------------------------------


def _object(value: Any, path: str, errors: dict[str, str], *, required: bool = False) -> dict | None:
    if value is None:
        if required:
            return {}  # its required members report what is missing
        return None
    if not isinstance(value, dict):
        errors[path] = "must be an object"
        return None
    return value


def _text(value: Any, path: str, errors: dict[str, str], max_length: int = MAX_IDENTITY_LENGTH) -> str:
    if value is None or value == "":
        errors[path] = "required"
        return ""
    if not isinstance(value, str):
        errors[path] = "must be a string"
        return ""
    if not value.strip():
        errors[path] = "required"
        return ""
    if len(value) > max_length:
        errors[path] = f"at most {max_length} characters"
        return ""
    return value


def _uuid(value: Any, path: str, errors: dict[str, str]) -> uuid.UUID | None:
    if value is None or value == "":
        errors[path] = "required"
        return None
    try:
        if isinstance(value, str):
            return uuid.UUID(value)
    except ValueError:
        pass
    errors[path] = "must be a UUID"
    return None


def _datetime(value: Any, path: str, errors: dict[str, str]) -> datetime | None:
    if value is None or value == "":
        errors[path] = "required"
        return None
    try:
        parsed = parse_datetime(value) if isinstance(value, str) else None
    except ValueError:
        parsed = None
    if parsed is None:
        errors[path] = "must be an ISO 8601 date-time"
        return None
    return parsed if timezone.is_aware(parsed) else parsed.replace(tzinfo=UTC)


def _event_type(value: Any, errors: dict[str, str]) -> str:
    if value is None or value == "":
        return ""
    if isinstance(value, str) and value.upper() in EVENT_TYPES:
        return value.upper()
    errors["eventType"] = f"must be one of {', '.join(EVENT_TYPES)}"
    return ""


def _datasets(value: Any, path: str, errors: dict[str, str], *, with_schema: bool) -> list[DatasetRef]:
    if value is None:
        return []
    if not isinstance(value, list):
        errors[path] = "must be a list"
        return []
    if len(value) > MAX_DATASETS_PER_LIST:
        errors[path] = f"at most {MAX_DATASETS_PER_LIST} datasets per event"
        return []
    refs: dict[tuple[str, str], DatasetRef] = {}
    for i, item in enumerate(value):
        item_path = f"{path}[{i}]"
        if not isinstance(item, dict):
            errors[item_path] = "must be an object"
            continue
        namespace = _text(item.get("namespace"), f"{item_path}.namespace", errors)
        name = _text(item.get("name"), f"{item_path}.name", errors)
        facets = _object(item.get("facets"), f"{item_path}.facets", errors)
        fields = _schema_fields(facets, f"{item_path}.facets.schema", errors) if with_schema and facets else None
        if namespace and name and (namespace, name) not in refs:
            refs[(namespace, name)] = DatasetRef(namespace=namespace, name=name, schema_fields=fields)
    return list(refs.values())


def _schema_fields(facets: dict, path: str, errors: dict[str, str]) -> list[dict[str, str]] | None:
    """The schema facet's top-level fields as {name, type, description}; nested fields of
    struct columns are not catalogued."""
    schema = facets.get("schema")
    if schema is None:
        return None
    if not isinstance(schema, dict):
        errors[path] = "must be an object"
        return None
    raw_fields = schema.get("fields")
    if raw_fields is None:
        raw_fields = []
    if not isinstance(raw_fields, list):
        errors[f"{path}.fields"] = "must be a list"
        return None
    fields, seen = [], set()
    for i, raw in enumerate(raw_fields):
        field_path = f"{path}.fields[{i}]"
        if not isinstance(raw, dict):
            errors[field_path] = "must be an object"
            continue
        name = _text(raw.get("name"), f"{field_path}.name", errors, max_length=MAX_COLUMN_NAME_LENGTH)
        if name and name in seen:
            errors[f"{field_path}.name"] = "duplicate column name"
        seen.add(name)
        column_type = raw.get("type") if isinstance(raw.get("type"), str) else ""
        description = raw.get("description") if isinstance(raw.get("description"), str) else ""
        fields.append({"name": name, "type": column_type[:100], "description": description})
    return fields
