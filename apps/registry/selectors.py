"""Every read of the registry, filtered by what the user may see. Visibility is one indexed
query (owner / team / organisation-wide columns plus direct-FK guardian shares), the same shape
as the catalog's and tracking's. Deleted versions are invisible everywhere."""

from __future__ import annotations

from django.db.models import Prefetch, Q, QuerySet

from apps.accounts.sharing import read_grants, shareable_for_object
from apps.registry import permissions
from apps.registry.models import (
    ModelAlias,
    ModelCard,
    ModelVersion,
    RegisteredModel,
    RegisteredModelGroupObjectPermission,
    RegisteredModelUserObjectPermission,
)
from apps.tracking import artifacts


def visible_models(user) -> QuerySet[RegisteredModel]:
    """Registered models `user` knows exist."""
    if not user.is_authenticated:
        return RegisteredModel.objects.none()
    if permissions.is_admin(user):
        return RegisteredModel.objects.all()
    # `pk IN (subquery)`, as the catalog: the (small) share lists are hashed once.
    shared_to_user = RegisteredModelUserObjectPermission.objects.filter(
        user=user, permission__codename="view_registeredmodel"
    ).values("content_object_id")
    shared_to_groups = RegisteredModelGroupObjectPermission.objects.filter(
        group__user=user, permission__codename="view_registeredmodel"
    ).values("content_object_id")
    return RegisteredModel.objects.filter(
        Q(visibility=RegisteredModel.Visibility.ORGANISATION)
        | Q(owner=user)
        | Q(team_id__in=permissions.team_ids(user))
        | Q(pk__in=shared_to_user)
        | Q(pk__in=shared_to_groups)
    )


def visible_versions(user) -> QuerySet[ModelVersion]:
    """Live (not deleted) versions of the models `user` may see."""
    return ModelVersion.objects.filter(registered_model__in=visible_models(user).values("pk"), is_deleted=False)


def model_for(user, name: str) -> RegisteredModel | None:
    """The model called exactly `name`, or None when there is none or it is hidden."""
    if not name:
        return None
    return visible_models(user).select_related("owner", "team").filter(name=name).first()


def model_by_id(user, model_id: int | str) -> RegisteredModel | None:
    if not str(model_id).isdigit():
        return None
    return visible_models(user).select_related("owner", "team").filter(pk=int(model_id)).first()


def similar_model_name(user, name: str) -> str | None:
    """The visible model whose name differs from `name` only in case, for "did you mean"."""
    if not name:
        return None
    return visible_models(user).filter(name__iexact=name).values_list("name", flat=True).first()


def version_for(user, name: str, version: int | str) -> ModelVersion | None:
    """Version `version` of the model called `name`, or None (unknown, deleted or hidden)."""
    if not str(version).isdigit():
        return None
    model = model_for(user, name)
    if model is None:
        return None
    return version_of(model, int(version))


def version_of(model: RegisteredModel, number: int) -> ModelVersion | None:
    """A live version of a model the caller has already checked is visible."""
    return (
        with_version_data(ModelVersion.objects.filter(registered_model=model, version=number, is_deleted=False))
        .select_related("registered_model")
        .first()
    )


def version_by_alias(model: RegisteredModel, alias: str) -> ModelVersion | None:
    found = ModelAlias.objects.filter(registered_model=model, alias=alias).values_list("model_version_id", flat=True)
    return (
        with_version_data(ModelVersion.objects.filter(pk__in=found, is_deleted=False))
        .select_related("registered_model")
        .first()
    )


def with_version_data(versions: QuerySet[ModelVersion]) -> QuerySet[ModelVersion]:
    """What the MLflow JSON of a version needs, in a fixed number of queries per page."""
    return versions.select_related("user", "run", "logged_model", "registered_model").prefetch_related(
        "tags", Prefetch("aliases", queryset=ModelAlias.objects.order_by("alias"))
    )


def with_model_data(models: QuerySet[RegisteredModel]) -> QuerySet[RegisteredModel]:
    """What the MLflow JSON of a registered model needs: tags, aliases and live versions."""
    return models.select_related("owner").prefetch_related(
        "tags",
        Prefetch("aliases", queryset=ModelAlias.objects.select_related("model_version").order_by("alias")),
        Prefetch(
            "versions",
            queryset=with_version_data(ModelVersion.objects.filter(is_deleted=False)).order_by("version"),
            to_attr="live_versions",
        ),
    )


def latest_versions(model: RegisteredModel, stages: list[str] | None = None) -> list[ModelVersion]:
    """The newest live version in each stage (each of `stages` when given), as MLflow's
    get-latest-versions answers: ordered by stage as first seen, newest number wins."""
    versions = getattr(model, "live_versions", None)
    if versions is None:
        versions = list(with_version_data(model.versions.filter(is_deleted=False)).order_by("version"))
    newest: dict[str, ModelVersion] = {}
    for version in versions:
        if stages and version.current_stage not in stages:
            continue
        if version.current_stage not in newest or newest[version.current_stage].version < version.version:
            newest[version.current_stage] = version
    return list(newest.values())


def versions_of_run(user, run) -> QuerySet[ModelVersion]:
    """The live, visible versions registered from `run` (for the run page)."""
    return visible_versions(user).filter(run=run).select_related("registered_model").order_by("-creation_timestamp")


def card_of(version: ModelVersion) -> ModelCard | None:
    return ModelCard.objects.filter(model_version=version).first()


def previous_version(version: ModelVersion) -> ModelVersion | None:
    """The newest live version of the same model before this one."""
    return (
        ModelVersion.objects.filter(
            registered_model_id=version.registered_model_id, version__lt=version.version, is_deleted=False
        )
        .order_by("-version")
        .first()
    )


def can_view_model_id(user, object_id: str) -> bool:
    """For the audit history pages (registered in RegistryConfig.ready)."""
    return str(object_id).isdigit() and visible_models(user).filter(pk=int(object_id)).exists()


def can_view_version_id(user, object_id: str) -> bool:
    return str(object_id).isdigit() and visible_versions(user).filter(pk=int(object_id)).exists()


def can_view_card_id(user, object_id: str) -> bool:
    return (
        str(object_id).isdigit()
        and ModelCard.objects.filter(pk=int(object_id), model_version__in=visible_versions(user).values("pk")).exists()
    )


def can_read_version_artifact(user, key: str) -> bool:
    """Whether `key` lies under the files of a model version `user` may see, so a model shared
    with them loads even when the experiment it was trained in is private (registered with the
    artifact proxy in RegistryConfig.ready). One query over the key's prefixes."""
    parts = key.split("/")
    roots = [artifacts.URI_SCHEME + "/".join(parts[:end]) for end in range(2, len(parts) + 1)]
    return visible_versions(user).filter(storage_location__in=roots).exists()


def model_access(model: RegisteredModel) -> list[dict]:
    """The settings page's "who has access" rows: the owner, the team (and its lead), the
    organisation when the model is visible to it, then the explicit shares. Each row is
    `{kind, grantee, access: [labels]}` (kind: owner, team, lead, organisation, shared_user,
    shared_team; shares also carry their codenames and are removable). Admins always have
    every right."""
    rows = [{"kind": "owner", "grantee": model.owner, "access": ["manage", "change", "request deployment"]}]
    if model.team_id:
        rows.append(
            {
                "kind": "team",
                "grantee": model.team,
                "access": ["view", "change and request deployment as their roles allow"],
            }
        )
        if model.team.lead_id and model.team.lead_id != model.owner_id:
            rows.append({"kind": "lead", "grantee": model.team.lead, "access": ["manage (team lead)"]})
    if model.visibility == RegisteredModel.Visibility.ORGANISATION:
        rows.append({"kind": "organisation", "grantee": "Everyone in the organisation", "access": ["view"]})
    shareable = shareable_for_object(model)
    for grant in read_grants(shareable, model):
        levels = [shareable.level(key) for key in grant.levels]
        rows.append(
            {
                "kind": "shared_team" if grant.is_team else "shared_user",
                "grantee": grant.grantee,
                "access": [level.label for level in levels],
                "codenames": {level.codename for level in levels},
                "removable": True,
            }
        )
    return rows


def teams_for_model_settings(user, model: RegisteredModel):
    """Teams a model may be given to: the manager's own (every team for admins), plus its
    current one so the form can keep it."""
    from apps.accounts.models import Team

    teams = Team.objects.all() if permissions.is_admin(user) else Team.objects.filter(group__user=user)
    if model.team_id:
        teams = teams | Team.objects.filter(pk=model.team_id)
    return teams.distinct().order_by("name")
