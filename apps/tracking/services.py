"""Every write to experiment tracking: validates (MLflow's rules), checks permission, runs in a
transaction, audits.

What is audited: experiments (create, rename, describe, delete, restore, tags, shares) and runs'
lifecycle (create, status and name changes, delete, restore, tag deletion). Metric points,
params and the tags sent in batches are the run's measurements: params never change once
logged and metric points are only appended, so the run's creation event covers who wrote them;
auditing each point would put an audit-chain write on every `log_metric` call.
"""

from __future__ import annotations

import json
import random
import re
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from guardian.shortcuts import assign_perm, remove_perm

from apps.accounts.models import User
from apps.accounts.selectors import cached_team_ids, teams_of
from apps.audit import services as audit
from apps.catalog.models import DatasetVersion
from apps.catalog.selectors import visible_datasets
from apps.tracking import artifacts, permissions, validation
from apps.tracking.errors import AlreadyExists, Forbidden, InvalidParameter, NotFound
from apps.tracking.models import (
    DEFAULT_EXPERIMENT_ID,
    Experiment,
    ExperimentTag,
    LatestMetric,
    Lifecycle,
    LoggedModel,
    Metric,
    Param,
    Run,
    RunInput,
    RunTag,
)

RUN_NAME_TAG = "mlflow.runName"
USER_TAG = "mlflow.user"
NOTE_TAG = "mlflow.note.content"
EXPERIMENT_FIELDS = ["name", "description", "team", "visibility", "lifecycle_stage", "artifact_location"]
RUN_FIELDS = ["name", "status", "end_time", "lifecycle_stage"]


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True)
class MetricPoint:
    key: str
    value: float
    timestamp: int
    step: int = 0


# --- Experiments ----------------------------------------------------------------------------


def default_experiment() -> Experiment:
    """MLflow's experiment "0", where clients log when no experiment is set: everyone in the
    organisation sees it and anyone who may log runs can log there."""
    experiment = Experiment.objects.filter(pk=DEFAULT_EXPERIMENT_ID).first()
    if experiment is not None:
        return experiment
    stamp = now_ms()
    with transaction.atomic():
        experiment, created = Experiment.objects.get_or_create(
            pk=DEFAULT_EXPERIMENT_ID,
            defaults={
                "name": "Default",
                "visibility": Experiment.Visibility.ORGANISATION,
                "artifact_location": artifacts.experiment_artifact_location(DEFAULT_EXPERIMENT_ID),
                "creation_time": stamp,
                "last_update_time": stamp,
            },
        )
        if created:
            audit.record(actor=None, action="tracking.experiment.created", target=experiment, after=_snap(experiment))
    return experiment


def create_experiment(
    *,
    by: User,
    name: str,
    description: str = "",
    tags: Sequence[tuple[str, str]] = (),
    team=None,
    visibility: str = Experiment.Visibility.PRIVATE,
    artifact_location: str = "",
) -> Experiment:
    """A new experiment owned by `by`. Its team defaults to the creator's team when they are in
    exactly one, so teammates see the work without a share."""
    if not by.has_perm("tracking.add_experiment"):
        raise Forbidden(f"User '{by.get_username()}' may not create experiments.")
    name = validation.experiment_name(name)
    if artifact_location and not artifact_location.startswith(artifacts.URI_SCHEME):
        raise InvalidParameter(
            "Causeway stores artifacts itself (served through mlflow-artifacts); leave artifact_location empty."
        )
    if visibility not in Experiment.Visibility.values:
        raise validation.invalid_value("visibility", visibility, f"choose one of {Experiment.Visibility.values}")
    tags = _experiment_tags(tags)
    if team is None:
        teams = list(teams_of(by)[:2])
        team = teams[0] if len(teams) == 1 else None
    elif not (permissions.is_admin(by) or team.pk in cached_team_ids(by)):
        raise Forbidden("You can only give an experiment to a team you belong to.")
    stamp = now_ms()
    description = description or dict(tags).get(NOTE_TAG, "")
    try:
        with transaction.atomic():
            experiment = Experiment.objects.create(
                name=name,
                description=description,
                owner=by,
                team=team,
                visibility=visibility,
                creation_time=stamp,
                last_update_time=stamp,
            )
            experiment.artifact_location = artifacts.experiment_artifact_location(experiment.pk)
            experiment.save(update_fields=["artifact_location"])
            if description and NOTE_TAG not in dict(tags):
                tags.append((NOTE_TAG, description))
            ExperimentTag.objects.bulk_create(
                [ExperimentTag(experiment=experiment, key=key, value=value) for key, value in tags]
            )
            audit.record(
                actor=by,
                action="tracking.experiment.created",
                target=experiment,
                after={**_snap(experiment), "tags": dict(tags)},
            )
    except IntegrityError:
        raise AlreadyExists(f"Experiment '{name}' already exists.")
    return experiment


def update_experiment(
    *,
    by: User,
    experiment: Experiment,
    name: str | None = None,
    description: str | None = None,
    visibility: str | None = None,
    team=None,
    clear_team: bool = False,
) -> Experiment:
    _require_manage(by, experiment)
    before = _snap(experiment)
    if name is not None:
        experiment.name = validation.experiment_name(name)
    if description is not None:
        experiment.description = description
    if visibility is not None:
        if visibility not in Experiment.Visibility.values:
            raise validation.invalid_value("visibility", visibility)
        experiment.visibility = visibility
    if team is not None or clear_team:
        experiment.team = None if clear_team else team
    if experiment.is_deleted and name is not None:
        raise InvalidParameter(f"Cannot rename a non-active experiment {experiment.pk}.")
    experiment.last_update_time = now_ms()
    try:
        with transaction.atomic():
            experiment.save()
            if description is not None:
                _upsert_experiment_tags(experiment, [(NOTE_TAG, description)])
            audit.record(
                actor=by,
                action="tracking.experiment.updated",
                target=experiment,
                before=before,
                after=_snap(experiment),
            )
    except IntegrityError:
        raise AlreadyExists(f"Experiment '{name}' already exists.")
    return experiment


def delete_experiment(*, by: User, experiment: Experiment) -> None:
    if experiment.pk == DEFAULT_EXPERIMENT_ID:
        raise InvalidParameter("Cannot delete the default experiment '0'. This is an internally reserved experiment.")
    _set_experiment_lifecycle(by, experiment, Lifecycle.DELETED)


def restore_experiment(*, by: User, experiment: Experiment) -> None:
    _set_experiment_lifecycle(by, experiment, Lifecycle.ACTIVE)


def _set_experiment_lifecycle(by: User, experiment: Experiment, stage: str) -> None:
    _require_manage(by, experiment)
    before = _snap(experiment)
    stamp = now_ms()
    with transaction.atomic():
        experiment.lifecycle_stage = stage
        experiment.last_update_time = stamp
        experiment.save(update_fields=["lifecycle_stage", "last_update_time"])
        # MLflow deletes and restores the experiment's runs with it.
        runs = experiment.runs.exclude(lifecycle_stage=stage)
        runs.update(lifecycle_stage=stage, deleted_time=stamp if stage == Lifecycle.DELETED else None)
        action = "deleted" if stage == Lifecycle.DELETED else "restored"
        audit.record(
            actor=by, action=f"tracking.experiment.{action}", target=experiment, before=before, after=_snap(experiment)
        )


def set_experiment_tag(*, by: User, experiment: Experiment, key: str, value: str) -> None:
    _require_log(by, experiment)
    _require_active_experiment(experiment)
    [(key, value)] = _experiment_tags([(key, value)])
    with transaction.atomic():
        old = ExperimentTag.objects.filter(experiment=experiment, key=key).values_list("value", flat=True).first()
        _upsert_experiment_tags(experiment, [(key, value)])
        if key == NOTE_TAG:
            experiment.description = value
        experiment.last_update_time = now_ms()
        experiment.save(update_fields=["description", "last_update_time"])
        audit.record(
            actor=by,
            action="tracking.experiment.tag_set",
            target=experiment,
            before={"tag": key, "value": old},
            after={"tag": key, "value": value},
        )


def delete_experiment_tag(*, by: User, experiment: Experiment, key: str) -> None:
    _require_log(by, experiment)
    _require_active_experiment(experiment)
    with transaction.atomic():
        tag = ExperimentTag.objects.filter(experiment=experiment, key=key).first()
        if tag is None:
            raise NotFound(f"No tag with name: {key} in experiment {experiment.pk}.")
        tag.delete()
        if key == NOTE_TAG:
            experiment.description = ""
            experiment.save(update_fields=["description"])
        audit.record(
            actor=by,
            action="tracking.experiment.tag_deleted",
            target=experiment,
            before={"tag": key, "value": tag.value},
            after={"tag": key, "value": None},
        )


SHARE_PERMISSIONS = ("view_experiment", "change_experiment")


def share_experiment(
    *,
    by: User,
    experiment: Experiment,
    permission: str,
    user: User | None = None,
    team=None,
    grant: bool = True,
) -> None:
    """Grant (or take back) view or change (log runs) on one experiment to a user or a team.
    Change implies view: it is granted with it and view is taken back with it."""
    if permission not in SHARE_PERMISSIONS:
        raise validation.invalid_value("permission", permission, f"choose one of {list(SHARE_PERMISSIONS)}")
    if (user is None) == (team is None):
        raise InvalidParameter("Share with exactly one user or one team.")
    _require_manage(by, experiment)
    grantee = user if user is not None else team.group
    # Granting change brings view with it; taking view back takes change too.
    if grant:
        codenames = ["view_experiment", "change_experiment"] if permission == "change_experiment" else [permission]
    else:
        codenames = ["change_experiment", "view_experiment"] if permission == "view_experiment" else [permission]
    with transaction.atomic():
        for codename in codenames:
            (assign_perm if grant else remove_perm)(f"tracking.{codename}", grantee, experiment)
        audit.record(
            actor=by,
            action="tracking.experiment.shared" if grant else "tracking.experiment.unshared",
            target=experiment,
            after={
                "permission": permission,
                "user": user.get_username() if user else None,
                "team": team.name if team else None,
            },
        )


def _experiment_tags(tags: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    cleaned = []
    for key, value in tags:
        key = validation.entity_key(key, "key", "Tag")
        value = validation.string_value(value, "value", validation.MAX_EXPERIMENT_TAG_VAL_LENGTH, "Tag", required=False)
        cleaned.append((key, value))
    return cleaned


def _upsert_experiment_tags(experiment: Experiment, tags: Sequence[tuple[str, str]]) -> None:
    ExperimentTag.objects.bulk_create(
        [ExperimentTag(experiment=experiment, key=key, value=value) for key, value in tags],
        update_conflicts=True,
        unique_fields=["experiment", "key"],
        update_fields=["value"],
    )


# --- Runs -----------------------------------------------------------------------------------


def create_run(
    *,
    by: User,
    experiment: Experiment,
    run_name: str = "",
    start_time: int | None = None,
    tags: Sequence[tuple[str, str]] = (),
) -> Run:
    """A RUNNING run. Its user is `by`, whatever `mlflow.user` the client claims."""
    _require_log(by, experiment)
    _require_active_experiment(experiment)
    tags = dict(_run_tags(tags))
    run_name = (run_name or tags.get(RUN_NAME_TAG) or _generated_run_name())[:250]
    if tags.get(RUN_NAME_TAG) and run_name != tags[RUN_NAME_TAG]:
        raise InvalidParameter(
            f"Both 'run_name' argument and 'mlflow.runName' tag are specified, but with different values "
            f"(run_name='{run_name}', mlflow.runName='{tags[RUN_NAME_TAG]}')."
        )
    tags[RUN_NAME_TAG] = run_name
    tags[USER_TAG] = by.get_username()
    run = Run(
        experiment=experiment,
        name=run_name,
        user=by,
        start_time=start_time if start_time is not None else now_ms(),
    )
    run.artifact_uri = artifacts.run_artifact_uri(experiment.pk, run.run_uuid)
    with transaction.atomic():
        run.save()
        RunTag.objects.bulk_create([RunTag(run=run, key=key, value=value) for key, value in tags.items()])
        audit.record(actor=by, action="tracking.run.created", target=run, after=_run_snap(run))
    return run


def update_run(
    *, by: User, run: Run, status: str | None = None, end_time: int | None = None, run_name: str | None = None
) -> Run:
    _require_log(by, run.experiment)
    _require_active_run(run)
    before = _run_snap(run)
    if status:
        if status not in Run.Status.values:
            raise validation.invalid_value("status", status, f"must be one of {Run.Status.values}")
        run.status = status
    if end_time is not None:
        run.end_time = end_time
    with transaction.atomic():
        if run_name:
            run.name = validation.string_value(run_name, "run_name", 250, "Run name")
            _upsert_run_tags(run, [(RUN_NAME_TAG, run.name)])
        run.save(update_fields=["status", "end_time", "name"])
        if before != _run_snap(run):
            audit.record(actor=by, action="tracking.run.updated", target=run, before=before, after=_run_snap(run))
    return run


def delete_run(*, by: User, run: Run) -> None:
    _set_run_lifecycle(by, run, Lifecycle.DELETED)


def restore_run(*, by: User, run: Run) -> None:
    _set_run_lifecycle(by, run, Lifecycle.ACTIVE)


def _set_run_lifecycle(by: User, run: Run, stage: str) -> None:
    _require_log(by, run.experiment)
    before = _run_snap(run)
    run.lifecycle_stage = stage
    run.deleted_time = now_ms() if stage == Lifecycle.DELETED else None
    with transaction.atomic():
        run.save(update_fields=["lifecycle_stage", "deleted_time"])
        action = "deleted" if stage == Lifecycle.DELETED else "restored"
        audit.record(actor=by, action=f"tracking.run.{action}", target=run, before=before, after=_run_snap(run))


def log_batch(
    *,
    by: User,
    run: Run,
    metrics: Sequence[MetricPoint] = (),
    params: Sequence[tuple[str, str]] = (),
    tags: Sequence[tuple[str, str]] = (),
) -> None:
    """MLflow's LogBatch: all or nothing. Params are write-once (the same value again is fine),
    tags are upserted, metric points appended and the latest value per key kept in step."""
    _require_log(by, run.experiment)
    _require_active_run(run)
    if len(metrics) > validation.MAX_METRICS_PER_BATCH:
        raise InvalidParameter(
            f"A batch logging request can contain at most {validation.MAX_METRICS_PER_BATCH} metrics. "
            f"Got {len(metrics)} metrics. Please split up metrics across multiple requests and try again."
        )
    if len(params) > validation.MAX_PARAMS_TAGS_PER_BATCH:
        raise InvalidParameter(
            f"A batch logging request can contain at most {validation.MAX_PARAMS_TAGS_PER_BATCH} params. "
            f"Got {len(params)} params. Please split up params across multiple requests and try again."
        )
    if len(tags) > validation.MAX_PARAMS_TAGS_PER_BATCH:
        raise InvalidParameter(
            f"A batch logging request can contain at most {validation.MAX_PARAMS_TAGS_PER_BATCH} tags. "
            f"Got {len(tags)} tags. Please split up tags across multiple requests and try again."
        )
    total = len(metrics) + len(params) + len(tags)
    if total > validation.MAX_ENTITIES_PER_BATCH:
        raise InvalidParameter(
            f"A batch logging request can contain at most {validation.MAX_ENTITIES_PER_BATCH} total metrics, "
            f"params, and tags. Got {len(metrics)} metrics, {len(params)} params, and {len(tags)} tags."
        )
    params = _params(params)
    tags = _run_tags(tags)
    with transaction.atomic():
        if params:
            _insert_params(run, params)
        if tags:
            _upsert_run_tags(run, tags)
            new_name = dict(tags).get(RUN_NAME_TAG)
            if new_name and new_name != run.name:
                run.name = new_name[:250]
                run.save(update_fields=["name"])
        if metrics:
            _insert_metrics(run, metrics)


def log_metric(*, by: User, run: Run, point: MetricPoint) -> None:
    log_batch(by=by, run=run, metrics=[point])


def log_param(*, by: User, run: Run, key: str, value: str) -> None:
    log_batch(by=by, run=run, params=[(key, value)])


def set_tag(*, by: User, run: Run, key: str, value: str) -> None:
    log_batch(by=by, run=run, tags=[(key, value)])


def delete_tag(*, by: User, run: Run, key: str) -> None:
    _require_log(by, run.experiment)
    _require_active_run(run)
    with transaction.atomic():
        tag = RunTag.objects.filter(run=run, key=key).first()
        if tag is None:
            raise NotFound(f"No tag with name: {key} in run with id {run.run_uuid}")
        tag.delete()
        audit.record(
            actor=by,
            action="tracking.run.tag_deleted",
            target=run,
            before={"tag": key, "value": tag.value},
            after={"tag": key, "value": None},
        )


def _params(params: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    cleaned: dict[str, str] = {}
    for index, (key, value) in enumerate(params):
        key = validation.entity_key(key, f"params[{index}].key", "Param")
        value = validation.string_value(value, f"params[{index}].value", validation.MAX_PARAM_VAL_LENGTH, "Param")
        if key in cleaned and cleaned[key] != value:
            raise InvalidParameter(
                f"Duplicate parameter keys have been submitted: ['{key}']. Please ensure the request contains "
                "only one param value per param key."
            )
        cleaned[key] = value
    return list(cleaned.items())


def _run_tags(tags: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    cleaned: dict[str, str] = {}
    for index, (key, value) in enumerate(tags):
        key = validation.entity_key(key, f"tags[{index}].key", "Tag")
        cleaned[key] = validation.string_value(
            value, f"tags[{index}].value", validation.MAX_TAG_VAL_LENGTH, "Tag", required=False
        )
    return list(cleaned.items())


def _insert_params(run: Run, params: list[tuple[str, str]]) -> None:
    existing = dict(Param.objects.filter(run=run, key__in=[key for key, _ in params]).values_list("key", "value"))
    for key, value in params:
        if key in existing and existing[key] != value:
            raise InvalidParameter(
                f"Changing param values is not allowed. Param with key='{key}' was already logged with "
                f"value='{existing[key]}' for run ID='{run.run_uuid}'. Attempted logging new value '{value}'."
            )
    Param.objects.bulk_create([Param(run=run, key=key, value=value) for key, value in params if key not in existing])


def _upsert_run_tags(run: Run, tags: Sequence[tuple[str, str]]) -> None:
    RunTag.objects.bulk_create(
        [RunTag(run=run, key=key, value=value) for key, value in tags],
        update_conflicts=True,
        unique_fields=["run", "key"],
        update_fields=["value"],
    )


def _sort_key(point) -> tuple:
    # MLflow's "latest": largest step, then timestamp, then value (NaN below every number).
    value = point.value if point.value is not None and not point.is_nan else float("-inf")
    return (point.step, point.timestamp, value)


def _insert_metrics(run: Run, points: Sequence[MetricPoint]) -> None:
    rows = []
    for point in points:
        nan = validation.is_nan(point.value)
        rows.append(
            Metric(
                run=run,
                key=point.key,
                value=None if nan else point.value,
                is_nan=nan,
                timestamp=point.timestamp,
                step=point.step,
            )
        )
    _insert_metric_rows(run, rows)
    newest: dict[str, Metric] = {}
    for row in rows:
        if row.key not in newest or _sort_key(row) > _sort_key(newest[row.key]):
            newest[row.key] = row
    _upsert_latest(run, list(newest.values()))


_METRIC_INSERT_ROWS = 1000  # rows per statement: 6,000 parameters, under every backend's limit


def _insert_metric_rows(run: Run, rows: list[Metric]) -> None:
    """`Metric.objects.bulk_create(rows)` as plain INSERTs: for the one row of a `log_metric`
    call, bulk_create's bookkeeping cost more than the insert (apps/core/rows.py)."""
    q = connection.ops.quote_name
    columns = ", ".join(q(c) for c in ("run_id", "key", "value", "is_nan", "timestamp", "step"))
    table = q(Metric._meta.db_table)
    with connection.cursor() as cursor:
        for start in range(0, len(rows), _METRIC_INSERT_ROWS):
            chunk = rows[start : start + _METRIC_INSERT_ROWS]
            params: list[Any] = []
            for row in chunk:
                params += [run.pk, row.key, row.value, row.is_nan, row.timestamp, row.step]
            values = ", ".join(["(%s, %s, %s, %s, %s, %s)"] * len(chunk))
            cursor.execute(f"INSERT INTO {table} ({columns}) VALUES {values}", params)  # noqa: S608


def _upsert_latest(run: Run, rows: list[Metric]) -> None:
    """Insert each key's newest point, or replace the stored one when this one is newer, in one
    statement: MLflow's order (step, then timestamp, then value; NaN lowest) is the upsert's
    WHERE, so concurrent writers cannot go backwards. The same SQL runs on PostgreSQL and
    SQLite (3.24+)."""
    q = connection.ops.quote_name
    table = q(LatestMetric._meta.db_table)
    run_id, experiment_id, key, value, is_nan, stamp, step = (
        q(c) for c in ("run_id", "experiment_id", "key", "value", "is_nan", "timestamp", "step")
    )
    values = ", ".join(["(%s, %s, %s, %s, %s, %s, %s)"] * len(rows))
    # Only quoted identifiers are formatted in; every value is a parameter.
    sql = (
        f"INSERT INTO {table} ({run_id}, {experiment_id}, {key}, {value}, {is_nan}, {stamp}, {step}) VALUES {values} "  # noqa: S608
        f"ON CONFLICT ({run_id}, {key}) DO UPDATE SET {value} = excluded.{value}, {is_nan} = excluded.{is_nan}, "
        f"{stamp} = excluded.{stamp}, {step} = excluded.{step} "
        f"WHERE excluded.{step} > {table}.{step} OR (excluded.{step} = {table}.{step} AND ("
        f"excluded.{stamp} > {table}.{stamp} OR (excluded.{stamp} = {table}.{stamp} AND "
        f"COALESCE(excluded.{value}, -1e308) >= COALESCE({table}.{value}, -1e308))))"
    )
    params: list[Any] = []
    for row in rows:
        params += [run.pk, run.experiment_id, row.key, row.value, row.is_nan, row.timestamp, row.step]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def metric_points(entries: Iterable[dict[str, Any]], *, path: str = "metrics") -> list[MetricPoint]:
    """Metric points from MLflow's JSON (`{"key", "value", "timestamp", "step"}`), validated."""
    points = []
    for index, entry in enumerate(entries):
        where = f"{path}[{index}]" if path else ""
        if not isinstance(entry, dict):
            raise validation.invalid_value(where or "metric", entry, "expected an object.")
        key = validation.entity_key(entry.get("key"), _join(where, "key"), "Metric")
        value = validation.metric_value(entry.get("value"), _join(where, "value"))
        timestamp = validation.int64(entry.get("timestamp"), _join(where, "timestamp"), minimum=0)
        step = validation.int64(entry.get("step"), _join(where, "step"), default=0)
        points.append(MetricPoint(key=key, value=value, timestamp=timestamp, step=step))
    return points


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


# --- Inputs ---------------------------------------------------------------------------------


def log_inputs(*, by: User, run: Run, datasets: Sequence[dict[str, Any]]) -> list[RunInput]:
    """MLflow's LogInputs: datasets the run used, each matched to a catalog version the user can
    see (by content digest, a Causeway catalog URL in the source, or the source URI)."""
    _require_log(by, run.experiment)
    _require_active_run(run)
    if len(datasets) > validation.MAX_ENTITIES_PER_BATCH:
        raise InvalidParameter(f"A request can log at most {validation.MAX_ENTITIES_PER_BATCH} dataset inputs.")
    rows = [_run_input(by, run, index, entry) for index, entry in enumerate(datasets)]
    with transaction.atomic():
        for row in rows:
            RunInput.objects.update_or_create(
                run=run,
                name=row.name,
                digest=row.digest,
                defaults={
                    "source_type": row.source_type,
                    "source": row.source,
                    "schema": row.schema,
                    "profile": row.profile,
                    "context": row.context,
                    "tags": row.tags,
                    "dataset_version": row.dataset_version,
                },
            )
    return rows


def _run_input(by: User, run: Run, index: int, entry: Any) -> RunInput:
    where = f"datasets[{index}]"
    if not isinstance(entry, dict) or not isinstance(entry.get("dataset"), dict):
        raise validation.missing(f"{where}.dataset")
    dataset = entry["dataset"]
    name = validation.string_value(
        dataset.get("name"), f"{where}.dataset.name", validation.MAX_DATASET_NAME_SIZE, "Dataset name"
    )
    digest = validation.string_value(
        dataset.get("digest"), f"{where}.dataset.digest", validation.MAX_DATASET_DIGEST_SIZE, "Dataset digest"
    )
    source_type = validation.string_value(dataset.get("source_type"), f"{where}.dataset.source_type", 36, "Source type")
    source = validation.string_value(
        dataset.get("source"), f"{where}.dataset.source", validation.MAX_DATASET_SOURCE_SIZE, "Dataset source"
    )
    schema = validation.string_value(
        dataset.get("schema"), f"{where}.dataset.schema", validation.MAX_DATASET_SCHEMA_SIZE, "Schema", required=False
    )
    profile = validation.string_value(
        dataset.get("profile"),
        f"{where}.dataset.profile",
        validation.MAX_DATASET_PROFILE_SIZE,
        "Profile",
        required=False,
    )
    tags: dict[str, str] = {}
    for tag_index, tag in enumerate(entry.get("tags") or []):
        if not isinstance(tag, dict):
            raise validation.invalid_value(f"{where}.tags[{tag_index}]", tag, "expected an object.")
        key = validation.string_value(
            tag.get("key"), f"{where}.tags[{tag_index}].key", validation.MAX_INPUT_TAG_KEY_SIZE, "Input tag"
        )
        tags[key] = validation.string_value(
            tag.get("value"), f"{where}.tags[{tag_index}].value", validation.MAX_INPUT_TAG_VALUE_SIZE, "Input tag"
        )
    return RunInput(
        run=run,
        name=name,
        digest=digest,
        source_type=source_type,
        source=source,
        schema=schema,
        profile=profile,
        context=tags.get("mlflow.data.context", ""),
        tags=tags,
        dataset_version=match_catalog_version(by, digest=digest, source=source, name=name),
    )


_CATALOG_URL = re.compile(r"/catalog/datasets/(?P<slug>[-\w]+)/(?:versions/(?P<number>\d+)/)?")


def match_catalog_version(by: User, *, digest: str, source: str, name: str) -> DatasetVersion | None:
    """The catalog version a logged dataset is, among those `by` may see: its SHA-256 starts
    with the digest, or the source points at the catalog page or the version's own URI."""
    visible = DatasetVersion.objects.filter(dataset__in=visible_datasets(by).values("pk")).select_related("dataset")
    uri = _source_uri(source)
    found = _CATALOG_URL.search(uri or source)
    if found:
        versions = visible.filter(dataset__slug=found["slug"])
        if found["number"]:
            return versions.filter(number=int(found["number"])).first()
        return versions.order_by("-number").first()
    if len(digest) >= 8 and re.fullmatch(r"[0-9a-f]+", digest):
        match = visible.filter(content_hash__startswith=digest).order_by("-number").first()
        if match is not None:
            return match
    if uri:
        return visible.filter(Q(source_uri=uri) | Q(dataset__source_uri=uri)).order_by("-number").first()
    return None


def _source_uri(source: str) -> str:
    try:
        parsed = json.loads(source)
    except (TypeError, ValueError):
        return source.strip()
    if isinstance(parsed, dict):
        for key in ("uri", "url", "path", "location"):
            if isinstance(parsed.get(key), str):
                return parsed[key]
    return ""


# --- Logged models (MLflow 3) ---------------------------------------------------------------


def create_logged_model(
    *,
    by: User,
    experiment: Experiment,
    name: str = "",
    source_run: Run | None = None,
    model_type: str = "",
    params: Sequence[tuple[str, str]] = (),
    tags: Sequence[tuple[str, str]] = (),
) -> LoggedModel:
    _require_log(by, experiment)
    _require_active_experiment(experiment)
    if source_run is not None and source_run.experiment_id != experiment.pk:
        raise InvalidParameter("The source run must belong to the logged model's experiment.")
    model_id = f"m-{uuid.uuid4().hex}"
    stamp = now_ms()
    model = LoggedModel(
        model_id=model_id,
        experiment=experiment,
        run=source_run,
        source_run_uuid=source_run.run_uuid if source_run else "",
        name=(name or _generated_run_name())[:500],
        user=by,
        model_type=(model_type or "")[:500],
        artifact_location=artifacts.logged_model_artifact_uri(experiment.pk, model_id),
        creation_timestamp=stamp,
        last_updated_timestamp=stamp,
        params=dict(_params(params)),
        tags=dict(_run_tags(tags)),
    )
    with transaction.atomic():
        model.save()
        audit.record(actor=by, action="tracking.logged_model.created", target=model, after=_model_snap(model))
    return model


def update_logged_model(
    *,
    by: User,
    model: LoggedModel,
    status: str | None = None,
    tags: Sequence[tuple[str, str]] = (),
    delete_tag_key: str | None = None,
    params: Sequence[tuple[str, str]] = (),
) -> LoggedModel:
    _require_log(by, model.experiment)
    before = _model_snap(model)
    if status is not None:
        if status not in LoggedModel.Status.values:
            raise validation.invalid_value("status", status, f"must be one of {LoggedModel.Status.values}")
        model.status = status
    if tags:
        model.tags = {**model.tags, **dict(_run_tags(tags))}
    if delete_tag_key is not None:
        if delete_tag_key not in model.tags:
            raise NotFound(f"No tag with key {delete_tag_key!r} found for model with ID {model.model_id!r}.")
        model.tags = {key: value for key, value in model.tags.items() if key != delete_tag_key}
    if params:
        model.params = {**model.params, **dict(_params(params))}
    model.last_updated_timestamp = now_ms()
    with transaction.atomic():
        model.save()
        if before["status"] != model.status or delete_tag_key is not None:
            audit.record(
                actor=by, action="tracking.logged_model.updated", target=model, before=before, after=_model_snap(model)
            )
    return model


def delete_logged_model(*, by: User, model: LoggedModel) -> None:
    _require_log(by, model.experiment)
    before = _model_snap(model)
    with transaction.atomic():
        model.lifecycle_stage = Lifecycle.DELETED
        model.save(update_fields=["lifecycle_stage"])
        audit.record(
            actor=by, action="tracking.logged_model.deleted", target=model, before=before, after=_model_snap(model)
        )


# --- Shared checks and snapshots ------------------------------------------------------------


def _require_log(by: User, experiment: Experiment) -> None:
    if not permissions.can_view(by, experiment):
        raise NotFound(f"No Experiment with id={experiment.pk} exists")
    if not permissions.can_log(by, experiment):
        raise Forbidden(f"User '{by.get_username()}' may read experiment {experiment.pk} but not write to it.")


def _require_manage(by: User, experiment: Experiment) -> None:
    if not permissions.can_view(by, experiment):
        raise NotFound(f"No Experiment with id={experiment.pk} exists")
    if not permissions.can_manage(by, experiment):
        raise Forbidden(f"Only the owner, the team lead or an admin may change experiment {experiment.pk}.")


def _require_active_experiment(experiment: Experiment) -> None:
    if experiment.is_deleted:
        raise InvalidParameter(
            f"The experiment {experiment.pk} must be in the 'active' state. Current state is deleted."
        )


def _require_active_run(run: Run) -> None:
    if run.is_deleted:
        raise InvalidParameter(f"The run {run.run_uuid} must be in the 'active' state. Current state is deleted.")


def _snap(experiment: Experiment) -> dict[str, Any]:
    return audit.snapshot(experiment, EXPERIMENT_FIELDS)


def _run_snap(run: Run) -> dict[str, Any]:
    return audit.snapshot(run, RUN_FIELDS)


def _model_snap(model: LoggedModel) -> dict[str, Any]:
    return audit.snapshot(model, ["name", "status", "lifecycle_stage", "tags"])


_ADJECTIVES = [
    "amber",
    "bold",
    "brave",
    "bright",
    "calm",
    "clever",
    "crisp",
    "daring",
    "eager",
    "gentle",
    "golden",
    "keen",
    "lively",
    "lucid",
    "merry",
    "nimble",
    "patient",
    "quiet",
    "rapid",
    "serene",
    "steady",
    "sunny",
    "swift",
    "tidy",
    "vivid",
    "witty",
]
_NOUNS = [
    "badger",
    "cedar",
    "comet",
    "crane",
    "delta",
    "falcon",
    "fern",
    "finch",
    "gecko",
    "harbor",
    "heron",
    "island",
    "lark",
    "lynx",
    "maple",
    "meadow",
    "orca",
    "otter",
    "owl",
    "pine",
    "quail",
    "raven",
    "river",
    "robin",
    "sparrow",
    "spruce",
    "tern",
    "willow",
    "wren",
]


def _generated_run_name() -> str:
    # Like MLflow's: readable, for people; uniqueness comes from the run id.
    return f"{random.choice(_ADJECTIVES)}-{random.choice(_NOUNS)}-{random.randint(100, 999)}"  # noqa: S311


def link_logged_model(*, by: User, model: LoggedModel, run: Run) -> None:
    """MLflow's LogOutputs: the run produced `model` (kept as the model's run when it has none)."""
    _require_log(by, run.experiment)
    if model.experiment_id != run.experiment_id:
        raise InvalidParameter("A run can only output models of its own experiment.")
    if model.run_id is None:
        model.run = run
        model.source_run_uuid = model.source_run_uuid or run.run_uuid
        model.save(update_fields=["run", "source_run_uuid"])


LOG_MODEL_HISTORY_TAG = "mlflow.log-model.history"


def record_logged_model_history(*, by: User, run: Run, model: dict[str, Any]) -> None:
    """MLflow 2's LogModel: append the model's MLmodel summary to the run's history tag."""
    _require_log(by, run.experiment)
    _require_active_run(run)
    with transaction.atomic():
        current = RunTag.objects.select_for_update().filter(run=run, key=LOG_MODEL_HISTORY_TAG).first()
        try:
            history = json.loads(current.value) if current else []
        except ValueError:
            history = []
        history.append(model)
        value = json.dumps(history)
        if len(value) > validation.MAX_TAG_VAL_LENGTH:
            history = history[-1:]
            value = json.dumps(history)[: validation.MAX_TAG_VAL_LENGTH]
        _upsert_run_tags(run, [(LOG_MODEL_HISTORY_TAG, value)])
