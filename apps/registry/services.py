"""Every write to the model registry: validates (MLflow's rules for names, tags and aliases),
checks permission, runs in a transaction, audits.

Errors are apps.tracking.errors classes, carrying MLflow's error codes, so the MLflow API
answers as MLflow's server does and the HTML pages can show the same message. Permission
errors keep the visibility rule: a model the user may not see is "not found", one they may
see but not change is "permission denied".
"""

from __future__ import annotations

import json
import os
import posixpath
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import yaml
from django.db import IntegrityError, transaction
from django.db.models import Max, ProtectedError
from guardian.shortcuts import assign_perm, remove_perm

from apps.accounts.models import Team, User
from apps.accounts.selectors import teams_of
from apps.audit import services as audit
from apps.catalog.models import DatasetVersion
from apps.catalog.selectors import visible_datasets
from apps.registry import cards, permissions, selectors
from apps.registry.models import (
    ModelAlias,
    ModelCard,
    ModelVersion,
    ModelVersionTag,
    RegisteredModel,
    RegisteredModelTag,
)
from apps.tracking import artifacts, validation
from apps.tracking import permissions as tracking_permissions
from apps.tracking import selectors as tracking_selectors
from apps.tracking.errors import AlreadyExists, Forbidden, InvalidParameter, NotFound
from apps.tracking.models import LatestMetric, Lifecycle, LoggedModel, Param, Run, RunInput, RunTag

MAX_MODEL_NAME_LENGTH = 256
MAX_TAG_VALUE_LENGTH = 100_000
MAX_ALIAS_LENGTH = 255
MAX_DESCRIPTION_LENGTH = 100_000
MLMODEL_MAX_BYTES = 1024 * 1024
_ALIAS = re.compile(r"^[\w\-]*$")
_VERSION_ALIAS = re.compile(r"^[vV]\d+$")
_STAGES = {stage.lower(): stage for stage in ModelVersion.Stage.values}
_ACTIVE_STAGES = (ModelVersion.Stage.STAGING, ModelVersion.Stage.PRODUCTION)
# Run inputs logged with one of these contexts are evaluation data, not training data.
_EVALUATION_CONTEXTS = {"eval", "evaluation", "test", "testing", "validation", "val", "holdout"}
MODEL_FIELDS = ["name", "description", "owner", "team", "visibility"]
VERSION_FIELDS = ["version", "description", "current_stage", "status", "source", "storage_location", "is_deleted"]


def now_ms() -> int:
    return int(time.time() * 1000)


# --- Registered models ------------------------------------------------------------------------


def create_registered_model(
    *,
    by: User,
    name: str,
    description: str = "",
    tags: Sequence[tuple[str, str]] = (),
    team: Team | None = None,
    visibility: str = RegisteredModel.Visibility.PRIVATE,
) -> RegisteredModel:
    """A new registered model owned by `by`. Names are unique whatever their case. The team
    defaults to the creator's team when they are in exactly one, as for experiments."""
    if not permissions.may_create_models(by):
        raise Forbidden(f"User '{by.get_username()}' may not register models.")
    name = model_name(name)
    description = _description(description)
    if visibility not in RegisteredModel.Visibility.values:
        raise validation.invalid_value("visibility", visibility, f"choose one of {RegisteredModel.Visibility.values}")
    tags = _model_tags(tags)
    team = _team_for(by, team)
    stamp = now_ms()
    try:
        with transaction.atomic():
            model = RegisteredModel.objects.create(
                name=name,
                description=description,
                owner=by,
                team=team,
                visibility=visibility,
                creation_timestamp=stamp,
                last_updated_timestamp=stamp,
            )
            RegisteredModelTag.objects.bulk_create(
                [RegisteredModelTag(registered_model=model, key=key, value=value) for key, value in tags.items()]
            )
            audit.record(
                actor=by, action="registry.model.created", target=model, after={**_model_snap(model), "tags": tags}
            )
    except IntegrityError:
        raise AlreadyExists(f"Registered Model (name={name}) already exists (model names are case-insensitive).")
    return model


def update_registered_model(
    *,
    by: User,
    model: RegisteredModel,
    description: str | None = None,
    visibility: str | None = None,
    team: Team | None = None,
    clear_team: bool = False,
) -> RegisteredModel:
    """Change the description (anyone who may change the model), or the visibility and team
    (the owner, the team lead and admins)."""
    if visibility is not None or team is not None or clear_team:
        _require_manage(by, model)
    else:
        _require_change(by, model)
    before = _model_snap(model)
    if description is not None:
        model.description = _description(description)
    if visibility is not None:
        if visibility not in RegisteredModel.Visibility.values:
            raise validation.invalid_value(
                "visibility", visibility, f"choose one of {RegisteredModel.Visibility.values}"
            )
        model.visibility = visibility
    if team is not None:
        if not (permissions.is_admin(by) or team.pk in permissions.team_ids(by)):
            raise Forbidden("You can only give a model to a team you belong to.")
        model.team = team
    if clear_team:
        model.team = None
    model.last_updated_timestamp = now_ms()
    with transaction.atomic():
        model.save()
        audit.record(actor=by, action="registry.model.updated", target=model, before=before, after=_model_snap(model))
    return model


def rename_registered_model(*, by: User, model: RegisteredModel, new_name: str) -> RegisteredModel:
    _require_manage(by, model)
    if new_name is None or not str(new_name).strip():
        raise validation.missing("new_name")
    new_name = model_name(new_name, field="new_name")
    before = _model_snap(model)
    model.name = new_name
    model.last_updated_timestamp = now_ms()
    try:
        with transaction.atomic():
            model.save(update_fields=["name", "last_updated_timestamp"])
            audit.record(
                actor=by, action="registry.model.renamed", target=model, before=before, after=_model_snap(model)
            )
    except IntegrityError:
        model.name = before["name"]
        raise AlreadyExists(f"Registered Model (name={new_name}) already exists (model names are case-insensitive).")
    return model


def delete_registered_model(*, by: User, model: RegisteredModel) -> None:
    """Delete the model with its versions, aliases and cards (MLflow deletes for good)."""
    _require_manage(by, model)
    before = {**_model_snap(model), "versions": list(model.versions.values_list("version", flat=True))}
    try:
        with transaction.atomic():
            audit.record(actor=by, action="registry.model.deleted", target=model, before=before)
            model.delete()
    except ProtectedError:
        raise InvalidParameter(f"Registered model '{model.name}' has deployments; retire them before deleting it.")


def set_registered_model_tag(*, by: User, model: RegisteredModel, key: Any, value: Any) -> None:
    _require_change(by, model)
    [(key, value)] = _model_tags([(key, value)]).items()
    with transaction.atomic():
        old = RegisteredModelTag.objects.filter(registered_model=model, key=key).values_list("value", flat=True).first()
        RegisteredModelTag.objects.update_or_create(registered_model=model, key=key, defaults={"value": value})
        _touch(model)
        audit.record(
            actor=by,
            action="registry.model.tag_set",
            target=model,
            before={"tag": key, "value": old},
            after={"tag": key, "value": value},
        )


def delete_registered_model_tag(*, by: User, model: RegisteredModel, key: str) -> None:
    _require_change(by, model)
    with transaction.atomic():
        tag = RegisteredModelTag.objects.filter(registered_model=model, key=key).first()
        if tag is None:
            # MLflow's SQL store: deleting a missing tag is a no-op.
            return
        tag.delete()
        _touch(model)
        audit.record(
            actor=by,
            action="registry.model.tag_deleted",
            target=model,
            before={"tag": key, "value": tag.value},
            after={"tag": key, "value": None},
        )


# --- Model versions ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ResolvedSource:
    """Where a new version's files are and what produced them."""

    storage_location: str  # an mlflow-artifacts URI
    run: Run | None = None
    logged_model: LoggedModel | None = None


def create_model_version(
    *,
    by: User,
    model: RegisteredModel,
    source: str,
    run_id: str = "",
    model_id: str = "",
    tags: Sequence[tuple[str, str]] = (),
    description: str = "",
    run_link: str = "",
) -> ModelVersion:
    """The model's next version, from a source the user can see: `models:/<logged model id>`,
    `models:/<name>/<version>` (or `@alias`), `runs:/<run id>/<path>` (the run's artifacts, or
    its MLflow 3 logged model of that name) or `mlflow-artifacts:/…` of a visible experiment.
    Its card starts from the previous version's card (see cards.refreshed)."""
    _require_change(by, model)
    tags = _version_tags(tags)
    description = _description(description)
    resolved = resolve_source(by, source, run_id=run_id, model_id=model_id)
    metadata = model_metadata(resolved.storage_location)
    stamp = now_ms()
    with transaction.atomic():
        # Lock the model row so two registrations cannot take the same number.
        locked = RegisteredModel.objects.select_for_update().get(pk=model.pk)
        number = (locked.versions.aggregate(top=Max("version"))["top"] or 0) + 1
        version = ModelVersion.objects.create(
            registered_model=locked,
            version=number,
            source=source,
            run=resolved.run,
            logged_model=resolved.logged_model,
            storage_location=resolved.storage_location,
            run_link=(run_link or "")[:1000],
            flavor=metadata.get("flavor", ""),
            flavors=metadata.get("flavors", []),
            signature_inputs=metadata.get("signature_inputs"),
            signature_outputs=metadata.get("signature_outputs"),
            status=ModelVersion.Status.READY,
            status_message=metadata.get("message", ""),
            description=description,
            user=by,
            creation_timestamp=stamp,
            last_updated_timestamp=stamp,
        )
        ModelVersionTag.objects.bulk_create(
            [ModelVersionTag(model_version=version, key=key, value=value) for key, value in tags.items()]
        )
        locked.last_updated_timestamp = stamp
        locked.save(update_fields=["last_updated_timestamp"])
        model.last_updated_timestamp = stamp
        card = _new_card(version, locked)
        audit.record(
            actor=by,
            action="registry.version.created",
            target=version,
            after={
                **_version_snap(version),
                "run": resolved.run.run_uuid if resolved.run else None,
                "logged_model": resolved.logged_model.model_id if resolved.logged_model else None,
                "tags": tags,
                "card": card.pk,
            },
        )
    return version


def update_model_version(*, by: User, version: ModelVersion, description: str) -> ModelVersion:
    model = version.registered_model
    _require_change(by, model)
    before = _version_snap(version)
    version.description = _description(description)
    version.last_updated_timestamp = now_ms()
    with transaction.atomic():
        version.save(update_fields=["description", "last_updated_timestamp"])
        audit.record(
            actor=by, action="registry.version.updated", target=version, before=before, after=_version_snap(version)
        )
    return version


def transition_stage(
    *, by: User, version: ModelVersion, stage: str, archive_existing_versions: bool = False
) -> ModelVersion:
    """MLflow's legacy stages (None, Staging, Production, Archived; any case). With
    `archive_existing_versions`, the other versions in Staging or Production move to Archived."""
    model = version.registered_model
    _require_change(by, model)
    canonical = _STAGES.get(str(stage or "").strip().lower())
    if canonical is None:
        raise InvalidParameter(
            f"Invalid Model Version stage: {stage}. Value must be one of {', '.join(ModelVersion.Stage.values)}."
        )
    if archive_existing_versions and canonical not in _ACTIVE_STAGES:
        raise InvalidParameter(
            f"Model version transition cannot archive existing model versions because '{stage}' is not an "
            f"Active stage. Valid stages are {', '.join(_ACTIVE_STAGES)}"
        )
    before = _version_snap(version)
    stamp = now_ms()
    with transaction.atomic():
        archived: list[int] = []
        if archive_existing_versions:
            others = ModelVersion.objects.filter(registered_model=model, current_stage=canonical, is_deleted=False)
            others = others.exclude(pk=version.pk)
            archived = list(others.values_list("version", flat=True))
            others.update(current_stage=ModelVersion.Stage.ARCHIVED, last_updated_timestamp=stamp)
        version.current_stage = canonical
        version.last_updated_timestamp = stamp
        version.save(update_fields=["current_stage", "last_updated_timestamp"])
        _touch(model, stamp)
        audit.record(
            actor=by,
            action="registry.version.stage_changed",
            target=version,
            before={"stage": before["current_stage"]},
            after={"stage": canonical, "archived_versions": archived},
        )
    return version


def delete_model_version(*, by: User, version: ModelVersion) -> None:
    """Hide the version for good and drop its aliases; the row stays so its number is never
    reused and what was deployed from it keeps its lineage (MLflow keeps it too)."""
    model = version.registered_model
    _require_manage(by, model)
    before = _version_snap(version)
    with transaction.atomic():
        aliases = list(ModelAlias.objects.filter(model_version=version).values_list("alias", flat=True))
        ModelAlias.objects.filter(model_version=version).delete()
        version.is_deleted = True
        version.last_updated_timestamp = now_ms()
        version.save(update_fields=["is_deleted", "last_updated_timestamp"])
        _touch(model)
        audit.record(
            actor=by,
            action="registry.version.deleted",
            target=version,
            before={**before, "aliases": aliases},
            after={**_version_snap(version), "aliases": []},
        )


def set_model_version_tag(*, by: User, version: ModelVersion, key: Any, value: Any) -> None:
    _require_change(by, version.registered_model)
    [(key, value)] = _version_tags([(key, value)]).items()
    with transaction.atomic():
        old = ModelVersionTag.objects.filter(model_version=version, key=key).values_list("value", flat=True).first()
        ModelVersionTag.objects.update_or_create(model_version=version, key=key, defaults={"value": value})
        version.last_updated_timestamp = now_ms()
        version.save(update_fields=["last_updated_timestamp"])
        audit.record(
            actor=by,
            action="registry.version.tag_set",
            target=version,
            before={"tag": key, "value": old},
            after={"tag": key, "value": value},
        )


def delete_model_version_tag(*, by: User, version: ModelVersion, key: str) -> None:
    _require_change(by, version.registered_model)
    with transaction.atomic():
        tag = ModelVersionTag.objects.filter(model_version=version, key=key).first()
        if tag is None:
            return
        tag.delete()
        audit.record(
            actor=by,
            action="registry.version.tag_deleted",
            target=version,
            before={"tag": key, "value": tag.value},
            after={"tag": key, "value": None},
        )


# --- Aliases ----------------------------------------------------------------------------------


def set_alias(*, by: User, model: RegisteredModel, alias: str, version: ModelVersion) -> ModelAlias:
    """Point `alias` at `version` (moving it if it pointed elsewhere). The version must be a
    live version of this same model. The audit event says from which version to which."""
    _require_change(by, model)
    alias = alias_name(alias)
    if version.registered_model_id != model.pk:
        raise InvalidParameter(
            f"Version {version.version} belongs to model '{version.registered_model.name}', not '{model.name}': "
            "an alias can only point at a version of its own model."
        )
    if version.is_deleted:
        raise NotFound(f"Model Version (name={model.name}, version={version.version}) not found")
    with transaction.atomic():
        current = (
            ModelAlias.objects.select_for_update()
            .select_related("model_version")
            .filter(registered_model=model, alias=alias)
            .first()
        )
        previous = current.model_version.version if current is not None else None
        if current is not None and current.model_version_id == version.pk:
            return current
        if current is None:
            current = ModelAlias(registered_model=model, alias=alias)
        current.model_version = version
        current.full_clean(exclude=["registered_model", "model_version"], validate_unique=False)
        current.save()
        _touch(model)
        audit.record(
            actor=by,
            action="registry.alias.moved" if previous is not None else "registry.alias.set",
            target=model,
            before={"alias": alias, "version": previous},
            after={"alias": alias, "version": version.version},
        )
    return current


def delete_alias(*, by: User, model: RegisteredModel, alias: str) -> None:
    """Remove an alias (a missing alias is not an error, as in MLflow)."""
    _require_change(by, model)
    alias = alias_name(alias, check_reserved=False)
    with transaction.atomic():
        current = ModelAlias.objects.select_related("model_version").filter(registered_model=model, alias=alias).first()
        if current is None:
            return
        current.delete()
        _touch(model)
        audit.record(
            actor=by,
            action="registry.alias.deleted",
            target=model,
            before={"alias": alias, "version": current.model_version.version},
            after={"alias": alias, "version": None},
        )


# --- Model cards ------------------------------------------------------------------------------


def update_card(*, by: User, card: ModelCard, changes: Mapping[str, Any]) -> ModelCard:
    """Change some sections of a card. Each field is checked (cards.clean_changes) and
    training-data ids must be catalog versions the user can see. The audit event holds the
    changed fields before and after, so the history shows a field-by-field diff."""
    version = card.model_version
    _require_change(by, version.registered_model)
    try:
        cleaned = cards.clean_changes(changes)
    except cards.CardInputError as exc:
        raise InvalidParameter(str(exc))
    if "training_data" in cleaned:
        _check_dataset_versions(by, cleaned["training_data"])
    before = {field: getattr(card, field) for field in cleaned}
    changed = {field: value for field, value in cleaned.items() if before[field] != value}
    if not changed:
        return card
    with transaction.atomic():
        for field, value in changed.items():
            setattr(card, field, value)
        card.updated_by = by
        card.last_updated_timestamp = now_ms()
        card.save()
        audit.record(
            actor=by,
            action="registry.card.updated",
            target=card,
            before={field: before[field] for field in changed},
            after=changed,
        )
    return card


def import_slice_table(*, by: User, card: ModelCard, content: bytes, fmt: str, replace: bool = True) -> ModelCard:
    """Load the quantitative-analysis table from an uploaded CSV or JSON file (at most 1 MB and
    1,000 rows; columns slice, group, metric, value). The whole file is checked before anything
    is saved, so a bad file changes nothing. Without `replace` the rows are appended."""
    _require_change(by, card.model_version.registered_model)
    try:
        rows = cards.parse_slice_table(content, fmt)
    except cards.CardInputError as exc:
        raise InvalidParameter(str(exc))
    if not replace:
        rows = list(card.quantitative_analysis) + rows
        if len(rows) > cards.MAX_SLICE_TABLE_ROWS:
            raise InvalidParameter(
                f"The slice table would have {len(rows)} rows; the limit is {cards.MAX_SLICE_TABLE_ROWS}."
            )
    return update_card(by=by, card=card, changes={"quantitative_analysis": rows})


def _new_card(version: ModelVersion, model: RegisteredModel) -> ModelCard:
    previous = selectors.previous_version(version)
    previous_card = selectors.card_of(previous) if previous is not None else None
    sections = cards.sections_of(previous_card) if previous_card is not None else cards.empty_sections()
    date = datetime.fromtimestamp(version.creation_timestamp / 1000, tz=UTC).date().isoformat()
    content = cards.refreshed(
        sections, version=version.version, date=date, facts=_run_facts(version.run) if version.run else None
    )
    details = content["model_details"]
    if not details.get("owners", "").strip():
        owner = model.owner.get_full_name() or model.owner.get_username()
        details["owners"] = f"{owner} ({model.team.name})" if model.team_id else owner
    if not details.get("overview", "").strip():
        details["overview"] = version.description or model.description
    return ModelCard.objects.create(
        model_version=version,
        updated_by=version.user,
        creation_timestamp=version.creation_timestamp,
        last_updated_timestamp=version.creation_timestamp,
        **content,
    )


def _run_facts(run: Run) -> dict[str, Any]:
    """What a card can say about training from the run itself: its source and commit tags,
    params, duration, catalog training datasets and latest metrics (five queries)."""
    tags = dict(
        RunTag.objects.filter(run=run, key__in=["mlflow.source.name", "mlflow.source.git.commit"]).values_list(
            "key", "value"
        )
    )
    inputs = RunInput.objects.filter(run=run, dataset_version__isnull=False).order_by("pk")
    training = []
    for dataset_version_id, context in inputs.values_list("dataset_version_id", "context"):
        if context.strip().lower() not in _EVALUATION_CONTEXTS and dataset_version_id not in training:
            training.append(dataset_version_id)
    metrics = LatestMetric.objects.filter(run=run).order_by("key").values_list("key", "value", "is_nan")
    return {
        "pipeline_source": tags.get("mlflow.source.name", ""),
        "code_version": tags.get("mlflow.source.git.commit", ""),
        "hyperparameters": dict(Param.objects.filter(run=run).order_by("key").values_list("key", "value")),
        "training_duration": cards.format_duration(run.end_time - run.start_time) if run.end_time else "",
        "training_data": training,
        "metrics": [(key, None if is_nan or value is None else value) for key, value, is_nan in metrics],
    }


def _check_dataset_versions(by: User, ids: Iterable[int]) -> None:
    ids = list(ids)
    if not ids:
        return
    found = set(
        DatasetVersion.objects.filter(pk__in=ids, dataset__in=visible_datasets(by).values("pk")).values_list(
            "pk", flat=True
        )
    )
    unknown = [pk for pk in ids if pk not in found]
    if unknown:
        raise InvalidParameter(f"training_data: no catalog dataset version with id {unknown[0]}.")


# --- Sources ----------------------------------------------------------------------------------


def resolve_source(by: User, source: str, *, run_id: str = "", model_id: str = "") -> ResolvedSource:
    """Where the files of a new version are, checked against what `by` may see. Only sources
    this server stores are accepted: a path on the server or a foreign bucket is refused."""
    if not source or not isinstance(source, str):
        raise validation.missing("source")
    source = source.strip()
    if source.startswith("models:/"):
        resolved = _models_source(by, source)
    elif source.startswith("runs:/"):
        resolved = _runs_source(by, source)
    elif source.startswith(artifacts.URI_SCHEME):
        resolved = _artifacts_source(by, source)
    else:
        raise InvalidParameter(
            f"Unsupported model source '{source}': register a model logged to this server "
            "(models:/<model id>, runs:/<run id>/<path> or mlflow-artifacts:/…)."
        )
    run, logged_model = resolved.run, resolved.logged_model
    if run_id:
        run = tracking_selectors.run_for(by, run_id)
        if run is None:
            raise NotFound(f"Run with id={run_id} not found")
    if model_id and logged_model is None:
        logged_model = _visible_logged_model(by, model_id)
    if run is None and logged_model is not None and logged_model.run_id:
        run = logged_model.run
    return ResolvedSource(resolved.storage_location, run, logged_model)


def _models_source(by: User, source: str) -> ResolvedSource:
    path = source[len("models:/") :].strip("/")
    if "/" in path or "@" in path:
        if "/" in path:
            name, suffix = path.split("/", 1)
            version = _version_by_suffix(by, name, suffix)
        else:
            name, alias = path.rsplit("@", 1)
            model = selectors.model_for(by, name)
            version = selectors.version_by_alias(model, alias) if model else None
        if version is None:
            raise NotFound(f"Model source '{source}' not found.")
        return ResolvedSource(version.storage_location, version.run, version.logged_model)
    logged_model = _visible_logged_model(by, path)
    location = logged_model.artifact_location
    if not _has_files(artifacts.root_key(location)):
        raise InvalidParameter(f"Logged model '{path}' has no files yet; finish logging it before registering.")
    return ResolvedSource(location, logged_model.run, logged_model)


def _version_by_suffix(by: User, name: str, suffix: str) -> ModelVersion | None:
    if suffix.isdigit():
        return selectors.version_for(by, name, suffix)
    model = selectors.model_for(by, name)
    if model is None:
        return None
    stage = None if suffix.lower() == "latest" else _STAGES.get(suffix.lower())
    if suffix.lower() != "latest" and stage is None:
        return None
    newest = selectors.latest_versions(model, [stage] if stage else None)
    return max(newest, key=lambda version: version.version) if newest else None


def _runs_source(by: User, source: str) -> ResolvedSource:
    run_uuid, _, path = source[len("runs:/") :].partition("/")
    run = tracking_selectors.run_for(by, run_uuid)
    if run is None:
        raise NotFound(f"Run with id={run_uuid} not found: cannot register '{source}'.")
    try:
        path = artifacts.clean_relative_path(path)
    except artifacts.UnsafeArtifactPath as exc:
        raise InvalidParameter(str(exc))
    root = tracking_selectors.run_artifact_root(run)
    if root and _has_files(artifacts.join(root, path)):
        return ResolvedSource(artifacts.URI_SCHEME + artifacts.join(root, path), run)
    # MLflow 3 keeps `log_model` files with the logged model; `runs:/<run>/<name>` means it.
    logged_model = (
        LoggedModel.objects.filter(run=run, name=path, lifecycle_stage=Lifecycle.ACTIVE)
        .order_by("-creation_timestamp")
        .first()
    )
    if logged_model is not None and _has_files(artifacts.root_key(logged_model.artifact_location)):
        return ResolvedSource(logged_model.artifact_location, run, logged_model)
    raise InvalidParameter(
        f"Run {run_uuid} has no artifacts at '{path}' and no logged model named '{path}': nothing to register."
    )


def _artifacts_source(by: User, source: str) -> ResolvedSource:
    try:
        key = artifacts.clean_relative_path(artifacts.root_key(source))
    except artifacts.UnsafeArtifactPath as exc:
        raise InvalidParameter(str(exc))
    experiment_id = artifacts.experiment_id_of_key(key) if key else None
    experiment = tracking_selectors.experiment_for(by, experiment_id) if experiment_id is not None else None
    if experiment is None:
        raise NotFound(f"Model source '{source}' not found.")
    if not _has_files(key):
        raise InvalidParameter(f"No artifacts at '{source}': nothing to register.")
    parts = key.split("/")
    run = logged_model = None
    if len(parts) >= 4 and parts[1] == "models" and parts[3] == "artifacts":
        logged_model = (
            LoggedModel.objects.filter(model_id=parts[2], experiment=experiment).select_related("run").first()
        )
    elif len(parts) >= 3 and parts[2] == "artifacts":
        run = Run.objects.filter(run_uuid=parts[1], experiment=experiment).first()
    return ResolvedSource(artifacts.URI_SCHEME + key, run, logged_model)


def _visible_logged_model(by: User, model_id: str) -> LoggedModel:
    logged_model = (
        LoggedModel.objects.select_related("experiment", "run")
        .filter(model_id=model_id, lifecycle_stage=Lifecycle.ACTIVE)
        .first()
    )
    if logged_model is None or not tracking_permissions.can_view(by, logged_model.experiment):
        raise NotFound(f"Logged model with ID '{model_id}' not found.")
    return logged_model


def _has_files(key: str) -> bool:
    """Whether a storage key is a file or a folder with something in it (object stores have
    no folders, so listing is the test that works everywhere)."""
    if not key:
        return False
    store = artifacts.storage()
    try:
        if store.exists(key) and not _is_dir(store, key):
            return True
        return bool(artifacts.list_entries(key, ""))
    except (OSError, NotImplementedError, ValueError):
        return False


def _is_dir(store, key: str) -> bool:
    path_of = getattr(store, "path", None)
    if path_of is None:
        return False
    try:
        return os.path.isdir(path_of(key))
    except NotImplementedError:
        return False


def model_metadata(storage_location: str) -> dict[str, Any]:
    """Flavors and signature from the MLmodel file at the root of the version's files, when
    there is one. A missing or unreadable MLmodel is not an error: any files can be
    registered; the version then simply has no flavor or signature."""
    root = artifacts.root_key(storage_location)
    store = artifacts.storage()
    key = posixpath.join(root, "MLmodel")
    try:
        if not store.exists(key):
            return {}
        with store.open(key, "rb") as handle:
            raw = handle.read(MLMODEL_MAX_BYTES + 1)
    except (OSError, NotImplementedError):
        return {}
    if len(raw) > MLMODEL_MAX_BYTES:
        return {"message": "MLmodel is larger than 1 MB; flavor and signature were not read."}
    try:
        document = yaml.safe_load(raw.decode("utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError):
        return {"message": "MLmodel is not valid YAML; flavor and signature were not read."}
    if not isinstance(document, dict):
        return {}
    flavors = [str(name) for name in (document.get("flavors") or {}) if isinstance(document.get("flavors"), dict)]
    main = next((name for name in flavors if name != "python_function"), flavors[0] if flavors else "")
    metadata: dict[str, Any] = {"flavor": main[:100], "flavors": flavors}
    signature = document.get("signature")
    if isinstance(signature, dict):
        metadata["signature_inputs"] = _signature_part(signature.get("inputs"))
        metadata["signature_outputs"] = _signature_part(signature.get("outputs"))
    return metadata


def _signature_part(value: Any) -> Any:
    # MLmodel stores each part as a JSON string (a list of column or tensor specs).
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return None
    return value if isinstance(value, list | dict) else None


# --- Names, tags and checks -------------------------------------------------------------------


def model_name(name: Any, *, field: str = "name") -> str:
    """MLflow's rules: not blank, no '/' or ':', not a path that resolves elsewhere."""
    if name is None or (isinstance(name, str) and not name.strip()):
        raise validation.missing(field)
    if not isinstance(name, str):
        raise validation.invalid_value(field, name, "expected a string.")
    if "/" in name or ":" in name:
        raise InvalidParameter(f"Invalid model name '{name}'. Names cannot contain '/' or ':'.")
    normalised = posixpath.normpath(name)
    if normalised != name or normalised.startswith(".."):
        raise validation.invalid_value(
            field, name, f"Names must not resolve to other names when treated as paths (would be {normalised!r})."
        )
    if len(name) > MAX_MODEL_NAME_LENGTH:
        raise InvalidParameter(f"Model name exceeds the maximum length of {MAX_MODEL_NAME_LENGTH} characters.")
    return name


def alias_name(alias: Any, *, check_reserved: bool = True) -> str:
    if alias is None or alias == "":
        raise InvalidParameter("Registered model alias name cannot be empty.")
    if not isinstance(alias, str) or not _ALIAS.match(alias):
        raise InvalidParameter(
            f"Invalid alias name: '{alias}'. Names may only contain alphanumerics, underscores (_) and dashes (-)."
        )
    if len(alias) > MAX_ALIAS_LENGTH:
        raise InvalidParameter(f"Registered model alias name exceeds the maximum length of {MAX_ALIAS_LENGTH}.")
    if check_reserved:
        if alias.lower() == "latest":
            raise InvalidParameter("'latest' alias name (case insensitive) is reserved.")
        if _VERSION_ALIAS.match(alias):
            raise InvalidParameter(f"Version alias name '{alias}' is reserved.")
    return alias


def _description(description: Any) -> str:
    if description is None:
        return ""
    if not isinstance(description, str):
        raise validation.invalid_value("description", description, "expected a string.")
    if len(description) > MAX_DESCRIPTION_LENGTH:
        raise InvalidParameter(f"The description exceeds the maximum length of {MAX_DESCRIPTION_LENGTH} characters.")
    return description


def _model_tags(tags: Iterable[tuple[Any, Any]]) -> dict[str, str]:
    cleaned: dict[str, str] = {}
    for key, value in tags:
        key = validation.entity_key(key, "key", "Tag")
        cleaned[key] = validation.string_value(value, "value", MAX_TAG_VALUE_LENGTH, "Tag", required=False)
    return cleaned


def _version_tags(tags: Iterable[tuple[Any, Any]]) -> dict[str, str]:
    cleaned: dict[str, str] = {}
    for key, value in tags:
        key = validation.entity_key(key, "key", "Tag")
        if value is None:
            raise InvalidParameter("Tag value cannot be None")
        cleaned[key] = validation.string_value(value, "value", MAX_TAG_VALUE_LENGTH, "Tag")
    return cleaned


def _team_for(by: User, team: Team | None) -> Team | None:
    if team is None:
        teams = list(teams_of(by)[:2])
        return teams[0] if len(teams) == 1 else None
    if not (permissions.is_admin(by) or team.pk in permissions.team_ids(by)):
        raise Forbidden("You can only give a model to a team you belong to.")
    return team


def _touch(model: RegisteredModel, stamp: int | None = None) -> None:
    model.last_updated_timestamp = stamp or now_ms()
    RegisteredModel.objects.filter(pk=model.pk).update(last_updated_timestamp=model.last_updated_timestamp)


def _require_view(by: User, model: RegisteredModel) -> None:
    if not permissions.can_view(by, model):
        raise NotFound(f"Registered Model with name={model.name} not found")


def _require_change(by: User, model: RegisteredModel) -> None:
    _require_view(by, model)
    if not permissions.can_change(by, model):
        raise Forbidden(f"User '{by.get_username()}' may read registered model '{model.name}' but not change it.")


def _require_manage(by: User, model: RegisteredModel) -> None:
    _require_view(by, model)
    if not permissions.can_manage(by, model):
        raise Forbidden(f"Only the owner, the team lead or an admin may rename or delete '{model.name}'.")


def _model_snap(model: RegisteredModel) -> dict[str, Any]:
    return audit.snapshot(model, MODEL_FIELDS)


def _version_snap(version: ModelVersion) -> dict[str, Any]:
    return audit.snapshot(version, VERSION_FIELDS)


# --- Settings page ----------------------------------------------------------------------------

# What each share level of the settings page grants. Every level brings view with it: a
# change or deployment share the grantee cannot see would do nothing (visibility is view only).
SHARE_LEVELS: dict[str, tuple[str, ...]] = {
    "view": ("view_registeredmodel",),
    "change": ("view_registeredmodel", "change_registeredmodel"),
    "request_deployment": ("view_registeredmodel", "request_deployment_registeredmodel"),
}
_SHARE_CODENAMES = ("view_registeredmodel", "change_registeredmodel", "request_deployment_registeredmodel")


def update_model_settings(
    *, by: User, model: RegisteredModel, name: str, description: str, visibility: str, team: Team | None
) -> RegisteredModel:
    """The settings page's details form: rename (when the name changed) and set description,
    visibility and team, all in one transaction so a refused part saves nothing. Audited as
    rename_registered_model and update_registered_model audit."""
    _require_manage(by, model)
    original = {field: getattr(model, field) for field in ("name", "description", "visibility", "team")}
    team_changed = (team.pk if team else None) != model.team_id
    try:
        with transaction.atomic():
            if name != model.name:
                rename_registered_model(by=by, model=model, new_name=name)
            if description != model.description or visibility != model.visibility or team_changed:
                update_registered_model(
                    by=by,
                    model=model,
                    description=description,
                    visibility=visibility,
                    team=team if team_changed else None,
                    clear_team=team_changed and team is None,
                )
    except Exception:
        for field, value in original.items():
            setattr(model, field, value)
        raise
    return model


def share_model_at_level(
    *, by: User, model: RegisteredModel, level: str, user: User | None = None, team: Team | None = None
) -> None:
    """Share the model with a user or a team at one of SHARE_LEVELS (view; change: register
    versions, edit cards, move aliases; request deployment), view included. Adds to what the
    grantee already has."""
    if level not in SHARE_LEVELS:
        raise validation.invalid_value("level", level, f"choose one of {list(SHARE_LEVELS)}")
    if (user is None) == (team is None):
        raise InvalidParameter("Share with exactly one user or one team.")
    _require_manage(by, model)
    grantee = user if user is not None else team.group
    with transaction.atomic():
        for codename in SHARE_LEVELS[level]:
            assign_perm(f"registry.{codename}", grantee, model)
        audit.record(
            actor=by,
            action="registry.model.shared",
            target=model,
            after={
                "permission": level,
                "granted": list(SHARE_LEVELS[level]),
                "user": user.username if user else None,
                "team": team.name if team else None,
            },
        )


def unshare_model(*, by: User, model: RegisteredModel, user: User | None = None, team: Team | None = None) -> None:
    """Take back every share of the model from a user or a team (owner, team and organisation
    access are not shares: change those with the details form)."""
    if (user is None) == (team is None):
        raise InvalidParameter("Unshare from exactly one user or one team.")
    _require_manage(by, model)
    grantee = user if user is not None else team.group
    with transaction.atomic():
        for codename in _SHARE_CODENAMES:
            remove_perm(f"registry.{codename}", grantee, model)
        audit.record(
            actor=by,
            action="registry.model.unshared",
            target=model,
            after={
                "permission": "all",
                "user": user.username if user else None,
                "team": team.name if team else None,
            },
        )
