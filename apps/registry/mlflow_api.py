"""The MLflow model registry REST API (`registered-models/…`, `model-versions/…`), registered
on the tracking app's MLflow dispatcher, so the stock client's `register_model`, aliases,
stages and `models:/name@alias` URIs work against this server.

Field names, JSON shapes, defaults and error codes follow MLflow's model_registry.proto and its
SQL store. Hidden models answer RESOURCE_DOES_NOT_EXIST, read-only ones PERMISSION_DENIED.
`get-download-uri` answers the version's mlflow-artifacts URI, so the client downloads the
files through the existing artifact proxy.
"""

from __future__ import annotations

from django.db.models import QuerySet

from apps.registry import search, selectors, services
from apps.registry.models import ModelVersion, RegisteredModel
from apps.tracking import validation
from apps.tracking.errors import InvalidParameter, NotFound
from apps.tracking.mlflow_api import Params, decode_page_token, encode_page_token, route

SEARCH_MODELS_DEFAULT, SEARCH_MODELS_LIMIT = 100, 1000
SEARCH_VERSIONS_DEFAULT, SEARCH_VERSIONS_LIMIT = 10_000, 200_000
_STAGES = {stage.lower(): stage for stage in ModelVersion.Stage.values}


# --- Serialisation (MLflow's JSON) ----------------------------------------------------------


def version_json(version: ModelVersion) -> dict:
    """A version with `with_version_data` prefetched (no query per version)."""
    body = {
        "name": version.registered_model.name,
        "version": str(version.version),
        "creation_timestamp": version.creation_timestamp,
        "last_updated_timestamp": version.last_updated_timestamp,
        "user_id": version.user.get_username(),
        "current_stage": version.current_stage,
        "description": version.description,
        "source": version.source,
        "run_id": version.run.run_uuid if version.run_id else "",
        "status": version.status,
        "status_message": version.status_message,
        "tags": [{"key": tag.key, "value": tag.value} for tag in version.tags.all()],
        "run_link": version.run_link,
        "aliases": [alias.alias for alias in version.aliases.all()],
    }
    if version.logged_model_id:
        body["model_id"] = version.logged_model.model_id
    return body


def model_json(model: RegisteredModel) -> dict:
    """A registered model with `with_model_data` prefetched."""
    return {
        "name": model.name,
        "creation_timestamp": model.creation_timestamp,
        "last_updated_timestamp": model.last_updated_timestamp,
        "user_id": model.owner.get_username(),
        "description": model.description,
        "latest_versions": [version_json(version) for version in selectors.latest_versions(model)],
        "tags": [{"key": tag.key, "value": tag.value} for tag in model.tags.all()],
        "aliases": [
            {"alias": alias.alias, "version": str(alias.model_version.version)} for alias in model.aliases.all()
        ],
    }


def _model_body(model: RegisteredModel) -> dict:
    return {
        "registered_model": model_json(selectors.with_model_data(RegisteredModel.objects.filter(pk=model.pk)).get())
    }


def _version_body(version: ModelVersion) -> dict:
    return {
        "model_version": version_json(selectors.with_version_data(ModelVersion.objects.filter(pk=version.pk)).get())
    }


# --- Lookups --------------------------------------------------------------------------------


def _model(user, params: Params, field: str = "name") -> RegisteredModel:
    name = params.text(field, required=True)
    model = selectors.model_for(user, name)
    if model is None:
        message = f"Registered Model with name={name} not found"
        similar = selectors.similar_model_name(user, name)
        if similar:
            message += f" (did you mean '{similar}'? Names are matched exactly.)"
        raise NotFound(message)
    return model


def _version_number(params: Params) -> int:
    raw = params.text("version", required=True)
    try:
        number = int(raw)
    except ValueError:
        raise InvalidParameter(f"Parameter 'version' must be an integer, got '{raw}'.")
    return number


def _version(user, params: Params) -> ModelVersion:
    model = _model(user, params)
    number = _version_number(params)
    version = selectors.version_of(model, number) if number > 0 else None
    if version is None:
        raise NotFound(f"Model Version (name={model.name}, version={number}) not found")
    return version


def _page(params: Params, default: int, limit: int) -> tuple[int, int]:
    max_results = validation.max_results(params.get("max_results"), "max_results", default=default, limit=limit)
    return decode_page_token(params.text("page_token")), max_results


def _paged(queryset: QuerySet, offset: int, max_results: int) -> tuple[list, str | None]:
    rows = list(queryset[offset : offset + max_results + 1])
    if len(rows) > max_results:
        return rows[:max_results], encode_page_token(offset + max_results)
    return rows, None


def _stages(params: Params) -> list[str]:
    stages = []
    for stage in params.strings("stages"):
        canonical = _STAGES.get(stage.strip().lower())
        if canonical is None:
            raise InvalidParameter(
                f"Invalid Model Version stage: {stage}. Value must be one of {', '.join(ModelVersion.Stage.values)}."
            )
        stages.append(canonical)
    return stages


def _boolean(params: Params, name: str) -> bool:
    value = params.get(name)
    if value in (None, "", False, "false", "False", "0", 0):
        return False
    if value in (True, "true", "True", "1", 1):
        return True
    raise validation.invalid_value(name, value, "expected true or false.")


# --- Registered models ----------------------------------------------------------------------


@route("registered-models/create", "POST")
def create_registered_model(user, params: Params) -> dict:
    model = services.create_registered_model(
        by=user,
        name=params.get("name"),
        description=params.text("description"),
        tags=params.key_values("tags"),
    )
    return _model_body(model)


@route("registered-models/get", "GET")
def get_registered_model(user, params: Params) -> dict:
    return _model_body(_model(user, params))


@route("registered-models/rename", "POST")
def rename_registered_model(user, params: Params) -> dict:
    model = services.rename_registered_model(by=user, model=_model(user, params), new_name=params.get("new_name"))
    return _model_body(model)


@route("registered-models/update", "PATCH")
def update_registered_model(user, params: Params) -> dict:
    model = services.update_registered_model(
        by=user, model=_model(user, params), description=params.text("description")
    )
    return _model_body(model)


@route("registered-models/delete", "DELETE")
def delete_registered_model(user, params: Params) -> dict:
    services.delete_registered_model(by=user, model=_model(user, params))
    return {}


@route("registered-models/search", "GET", "POST")
def search_registered_models(user, params: Params) -> dict:
    offset, max_results = _page(params, SEARCH_MODELS_DEFAULT, SEARCH_MODELS_LIMIT)
    try:
        models = search.filter_models(selectors.visible_models(user), params.text("filter"))
        models = search.order_models(models, params.strings("order_by"))
    except search.SearchError as exc:
        raise InvalidParameter(str(exc))
    page, token = _paged(selectors.with_model_data(models), offset, max_results)
    body: dict = {"registered_models": [model_json(model) for model in page]}
    if token:
        body["next_page_token"] = token
    return body


@route("registered-models/get-latest-versions", "POST", "GET")
def get_latest_versions(user, params: Params) -> dict:
    model = _model(user, params)
    stages = _stages(params)
    model = selectors.with_model_data(RegisteredModel.objects.filter(pk=model.pk)).get()
    return {"model_versions": [version_json(version) for version in selectors.latest_versions(model, stages or None)]}


@route("registered-models/set-tag", "POST")
def set_registered_model_tag(user, params: Params) -> dict:
    services.set_registered_model_tag(
        by=user, model=_model(user, params), key=params.get("key"), value=params.get("value")
    )
    return {}


@route("registered-models/delete-tag", "DELETE")
def delete_registered_model_tag(user, params: Params) -> dict:
    services.delete_registered_model_tag(by=user, model=_model(user, params), key=params.text("key", required=True))
    return {}


@route("registered-models/alias", "POST")
def set_registered_model_alias(user, params: Params) -> dict:
    model = _model(user, params)
    alias = services.alias_name(params.get("alias"))
    version = _version(user, params)
    services.set_alias(by=user, model=model, alias=alias, version=version)
    return {}


@route("registered-models/alias", "DELETE")
def delete_registered_model_alias(user, params: Params) -> dict:
    services.delete_alias(by=user, model=_model(user, params), alias=params.get("alias"))
    return {}


@route("registered-models/alias", "GET")
def get_model_version_by_alias(user, params: Params) -> dict:
    model = _model(user, params)
    alias = params.text("alias", required=True)
    version = selectors.version_by_alias(model, alias)
    if version is None:
        raise NotFound(f"Registered model alias {alias} not found.")
    return {"model_version": version_json(version)}


# --- Model versions -------------------------------------------------------------------------


@route("model-versions/create", "POST")
def create_model_version(user, params: Params) -> dict:
    version = services.create_model_version(
        by=user,
        model=_model(user, params),
        source=params.text("source", required=True),
        run_id=params.text("run_id"),
        model_id=params.text("model_id"),
        tags=params.key_values("tags"),
        description=params.text("description"),
        run_link=params.text("run_link"),
    )
    return _version_body(version)


@route("model-versions/get", "GET")
def get_model_version(user, params: Params) -> dict:
    return {"model_version": version_json(_version(user, params))}


@route("model-versions/update", "PATCH")
def update_model_version(user, params: Params) -> dict:
    version = services.update_model_version(
        by=user, version=_version(user, params), description=params.text("description")
    )
    return _version_body(version)


@route("model-versions/delete", "DELETE")
def delete_model_version(user, params: Params) -> dict:
    services.delete_model_version(by=user, version=_version(user, params))
    return {}


@route("model-versions/search", "GET", "POST")
def search_model_versions(user, params: Params) -> dict:
    offset, max_results = _page(params, SEARCH_VERSIONS_DEFAULT, SEARCH_VERSIONS_LIMIT)
    try:
        versions = search.filter_versions(selectors.visible_versions(user), params.text("filter"))
        versions = search.order_versions(versions, params.strings("order_by"))
    except search.SearchError as exc:
        raise InvalidParameter(str(exc))
    page, token = _paged(selectors.with_version_data(versions), offset, max_results)
    body: dict = {"model_versions": [version_json(version) for version in page]}
    if token:
        body["next_page_token"] = token
    return body


@route("model-versions/transition-stage", "POST")
def transition_model_version_stage(user, params: Params) -> dict:
    version = services.transition_stage(
        by=user,
        version=_version(user, params),
        stage=params.text("stage", required=True),
        archive_existing_versions=_boolean(params, "archive_existing_versions"),
    )
    return _version_body(version)


@route("model-versions/set-tag", "POST")
def set_model_version_tag(user, params: Params) -> dict:
    services.set_model_version_tag(
        by=user, version=_version(user, params), key=params.get("key"), value=params.get("value")
    )
    return {}


@route("model-versions/delete-tag", "DELETE")
def delete_model_version_tag(user, params: Params) -> dict:
    services.delete_model_version_tag(by=user, version=_version(user, params), key=params.text("key", required=True))
    return {}


@route("model-versions/get-download-uri", "GET")
def get_model_version_download_uri(user, params: Params) -> dict:
    return {"artifact_uri": _version(user, params).storage_location}
