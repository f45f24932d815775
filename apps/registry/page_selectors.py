"""Reads for the registry's HTML pages and card exports that selectors.py does not cover: the
model list (filters, sort, completeness of the newest version's card), the versions table,
lineage neighbours and the runs a user may register from. Every read starts from
selectors.visible_models / visible_versions, and costs a fixed number of queries per page."""

from __future__ import annotations

from django.db.models import Count, OuterRef, Q, QuerySet, Subquery

from apps.accounts.models import Team, User
from apps.catalog.models import DatasetVersion
from apps.catalog.selectors import visible_datasets
from apps.registry import cards, selectors
from apps.registry.models import ModelAlias, ModelCard, ModelVersion, RegisteredModel
from apps.tracking import selectors as tracking_selectors
from apps.tracking.models import Lifecycle, Run

MODEL_SORTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "updated": ("Recently updated", ("-last_updated_timestamp", "-pk")),
    "name": ("Name A–Z", ("name",)),
    "-name": ("Name Z–A", ("-name",)),
    "created": ("Newest", ("-creation_timestamp", "-pk")),
    "versions": ("Most versions", ("-version_count", "name")),
}
STAGE_FILTERS = [stage for stage in ModelVersion.Stage.values if stage != ModelVersion.Stage.NONE]
REGISTRABLE_RUNS = 50


def models_for_list(
    user,
    *,
    text: str = "",
    owner_id: int | None = None,
    team_id: int | None = None,
    alias: str = "",
    stage: str = "",
    sort: str = "updated",
) -> QuerySet[RegisteredModel]:
    """The model list: the models `user` may see, filtered by name or description, owner,
    team, an alias name they carry and a stage one of their live versions is in; each with its
    live version count and newest live version id, annotated in the same query."""
    queryset = selectors.visible_models(user)
    if text:
        queryset = queryset.filter(Q(name__icontains=text) | Q(description__icontains=text))
    if owner_id:
        queryset = queryset.filter(owner_id=owner_id)
    if team_id:
        queryset = queryset.filter(team_id=team_id)
    if alias:
        queryset = queryset.filter(pk__in=ModelAlias.objects.filter(alias=alias).values("registered_model_id"))
    if stage:
        queryset = queryset.filter(
            pk__in=ModelVersion.objects.filter(current_stage=stage, is_deleted=False).values("registered_model_id")
        )
    newest = ModelVersion.objects.filter(registered_model=OuterRef("pk"), is_deleted=False).order_by("-version")
    queryset = queryset.annotate(
        version_count=Count("versions", filter=Q(versions__is_deleted=False)),
        newest_version_id=Subquery(newest.values("pk")[:1]),
    )
    order = MODEL_SORTS.get(sort, MODEL_SORTS["updated"])[1]
    return queryset.select_related("owner", "team").prefetch_related("tags", "aliases__model_version").order_by(*order)


def newest_versions_by_model(models) -> dict[int, ModelVersion]:
    """The newest live version of each model of a list page (annotated by models_for_list),
    with its card, `{model id: version}`: one query."""
    ids = [model.newest_version_id for model in models if model.newest_version_id]
    if not ids:
        return {}
    versions = ModelVersion.objects.filter(pk__in=ids).select_related("card")
    return {version.registered_model_id: version for version in versions}


def model_list_choices(user) -> dict:
    """Owners, teams and alias names of the models `user` may see, for the list's filters."""
    visible = selectors.visible_models(user).values("pk")
    return {
        "owners": User.objects.filter(registered_models__in=visible).distinct().order_by("username"),
        "teams": Team.objects.filter(registered_models__in=visible).distinct().order_by("name"),
        "alias_names": list(
            ModelAlias.objects.filter(registered_model__in=visible)
            .order_by("alias")
            .values_list("alias", flat=True)
            .distinct()[:200]
        ),
        "stages": STAGE_FILTERS,
    }


def model_by_name_or_id(user, key: str) -> RegisteredModel | None:
    """The model the URL names: by exact name first, then by id (a name may be all digits)."""
    if not key or "\x00" in key:
        return None
    return selectors.model_for(user, key) or selectors.model_by_id(user, key)


def versions_for_model_page(model: RegisteredModel) -> list[ModelVersion]:
    """The live versions of a visible model, newest first, with their runs, users, aliases,
    tags and cards (a fixed number of queries whatever the count)."""
    return list(
        selectors.with_version_data(ModelVersion.objects.filter(registered_model=model, is_deleted=False))
        .select_related("card", "run__experiment")
        .order_by("-version")
    )


def version_page_data(model: RegisteredModel, number: int) -> ModelVersion | None:
    """One live version of a visible model with its card and source run."""
    return (
        selectors.with_version_data(
            ModelVersion.objects.filter(registered_model=model, version=number, is_deleted=False)
        )
        .select_related("card", "run__experiment")
        .first()
    )


def visible_run_ids(user, runs) -> set[int]:
    """Which of the given runs `user` may see (for source-run links): one query."""
    ids = {run.pk for run in runs if run is not None}
    if not ids:
        return set()
    return set(tracking_selectors.visible_runs(user).filter(pk__in=ids).values_list("pk", flat=True))


def training_datasets_of_runs(user, runs) -> dict[int, list[dict]]:
    """`{run id: [{name, context, dataset (visible catalog Dataset or None), version}]}` of the
    runs' inputs, for lineage: two queries."""
    ids = [run.pk for run in runs if run is not None]
    if not ids:
        return {}
    from apps.tracking.models import RunInput

    inputs = list(
        RunInput.objects.filter(run_id__in=ids).select_related("dataset_version__dataset").order_by("context", "name")
    )
    dataset_ids = {i.dataset_version.dataset_id for i in inputs if i.dataset_version_id}
    visible = (
        set(visible_datasets(user).filter(pk__in=dataset_ids).values_list("pk", flat=True)) if dataset_ids else set()
    )
    result: dict[int, list[dict]] = {}
    for item in inputs:
        dataset = None
        if item.dataset_version_id and item.dataset_version.dataset_id in visible:
            dataset = item.dataset_version.dataset
        result.setdefault(item.run_id, []).append(
            {
                "name": item.name,
                "context": item.context,
                "dataset": dataset,
                "version": item.dataset_version.number if dataset is not None else None,
                "hidden": bool(item.dataset_version_id) and dataset is None,
            }
        )
    return result


def dataset_versions_by_id(user, ids) -> dict[int, DatasetVersion]:
    """Catalog dataset versions named by cards' training data that `user` may see: one query."""
    ids = [int(pk) for pk in ids if str(pk).isdigit()]
    if not ids:
        return {}
    rows = DatasetVersion.objects.filter(pk__in=ids, dataset__in=visible_datasets(user).values("pk")).select_related(
        "dataset"
    )
    return {row.pk: row for row in rows}


def registrable_runs(user) -> list[Run]:
    """The newest active runs `user` may see, to pick a version's source from."""
    return list(
        tracking_selectors.visible_runs(user)
        .filter(lifecycle_stage=Lifecycle.ACTIVE)
        .select_related("experiment")
        .order_by("-start_time")[:REGISTRABLE_RUNS]
    )


def completeness_of(version: ModelVersion) -> tuple[int | None, list[str]]:
    """The score and missing sections of a version's card, (None, []) when it has none."""
    card = _card_or_none(version)
    if card is None:
        return None, []
    return cards.completeness(card)


def _card_or_none(version: ModelVersion) -> ModelCard | None:
    try:
        return version.card
    except ModelCard.DoesNotExist:
        return None


def signature_columns(part) -> list[dict]:
    """An MLflow signature part (the parsed list of column or tensor specs) as table rows
    `{name, type, shape, required}`; anything unreadable is skipped."""
    rows = []
    for spec in part if isinstance(part, list) else []:
        if not isinstance(spec, dict):
            continue
        tensor = spec.get("tensor-spec") if isinstance(spec.get("tensor-spec"), dict) else {}
        kind = str(spec.get("type", ""))
        if tensor:
            kind = f"tensor<{tensor.get('dtype', '?')}>"
        rows.append(
            {
                "name": str(spec.get("name", "")),
                "type": kind,
                "shape": str(tensor.get("shape", "")) if tensor else "",
                "required": spec.get("required", True) is not False,
            }
        )
    return rows
