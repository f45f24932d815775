"""MLflow's artifact proxy (`/api/2.0/mlflow-artifacts/…`) and artifact listings: what the
stock client uses for `log_artifact`, `download_artifacts` and `log_model` when the tracking
URI is this server. Files stream in and out in chunks; paths are checked before any storage
call; the experiment named by a path's first segment decides who may read or write it."""

from __future__ import annotations

from django.conf import settings
from django.http import FileResponse, HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from apps.tracking import artifacts, permissions, selectors
from apps.tracking.errors import Forbidden, InvalidParameter, NotFound, TooLarge, TrackingError
from apps.tracking.mlflow_api import (
    Params,
    _logged_model,
    _run,
    authenticate,
    error_response,
    json_response,
    route,
)

# The request body is read in 64 KB pieces. gunicorn's body reader gathers each read from 8 KB
# socket reads in a buffer it then copies and splits, so larger reads cost more per byte:
# a 100 MB upload by the stock client measured ~400 MB/s at 64 KB against ~190 MB/s at 1 MB.
UPLOAD_CHUNK = 64 * 1024


@csrf_exempt
def artifact(request: HttpRequest, path: str = "") -> HttpResponse:
    """GET downloads, PUT uploads, DELETE removes one artifact; GET without a path lists."""
    user, failure = authenticate(request)
    if failure is not None:
        return failure
    try:
        if request.method == "GET" and not path:
            return _list(user, request.GET.get("path", ""))
        key = artifacts.clean_relative_path(path)
        if not key:
            raise InvalidParameter("An artifact path is required.")
        if request.method == "GET":
            return _download(user, key)
        if request.method == "PUT":
            return _upload(user, key, request)
        if request.method == "DELETE":
            return _delete(user, key)
        return error_response("ENDPOINT_NOT_FOUND", f"{request.method} is not supported here.", 405)
    except artifacts.UnsafeArtifactPath as exc:
        return error_response("INVALID_PARAMETER_VALUE", str(exc), 400)
    except TrackingError as exc:
        return error_response(exc.error_code, exc.message, exc.http_status)


def _experiment_for_key(user, key: str, *, write: bool):
    experiment_id = artifacts.experiment_id_of_key(key)
    experiment = selectors.experiment_for(user, experiment_id) if experiment_id is not None else None
    if experiment is None and not write and permissions.may_read_artifact_elsewhere(user, key):
        return None  # e.g. the files of a model version the user may see
    if experiment is None:
        raise NotFound(f"Artifact '{key}' does not exist.")
    if write and not permissions.can_log(user, experiment):
        raise Forbidden(f"User '{user.get_username()}' may not write artifacts of experiment {experiment.pk}.")
    if write and experiment.is_deleted:
        raise InvalidParameter(
            f"The experiment {experiment.pk} must be in the 'active' state. Current state is deleted."
        )
    return experiment


def _list(user, path: str) -> HttpResponse:
    key = artifacts.clean_relative_path(path)
    if key:
        _experiment_for_key(user, key, write=False)
    elif not permissions.is_admin(user):
        # The top level lists experiments; only what the user may see.
        visible = set(selectors.visible_experiments(user).values_list("pk", flat=True))
        entries = [
            entry for entry in artifacts.list_entries("", "") if entry.path.isdigit() and int(entry.path) in visible
        ]
        return json_response({"files": [_file_info(entry, "") for entry in entries]})
    entries = artifacts.list_entries(key, "")
    return json_response({"files": [_file_info(entry, "") for entry in entries]})


def _file_info(entry: artifacts.ArtifactEntry, prefix: str) -> dict:
    info: dict = {"path": artifacts.join(prefix, entry.path), "is_dir": entry.is_dir}
    if entry.file_size is not None:
        info["file_size"] = entry.file_size
    return info


def _download(user, key: str) -> HttpResponse:
    _experiment_for_key(user, key, write=False)
    store = artifacts.storage()
    if not store.exists(key):
        raise NotFound(f"Artifact '{key}' does not exist.")
    try:
        handle = store.open(key, "rb")
    except (IsADirectoryError, FileNotFoundError):
        raise NotFound(f"Artifact '{key}' is not a file.")
    response = FileResponse(handle, as_attachment=True, filename=key.rsplit("/", 1)[-1])
    response["Content-Type"] = "application/octet-stream"
    response["X-Content-Type-Options"] = "nosniff"
    return response


def _upload(user, key: str, request: HttpRequest) -> HttpResponse:
    _experiment_for_key(user, key, write=True)
    limit = settings.TRACKING_MAX_ARTIFACT_BYTES
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > limit:
        raise TooLarge(f"Artifact of {declared} bytes is over the limit of {limit} bytes.")

    def chunks():
        received = 0
        while chunk := request.read(UPLOAD_CHUNK):
            received += len(chunk)
            if received > limit:
                raise TooLarge(f"Artifact is over the limit of {limit} bytes.")
            yield chunk

    artifacts.save_stream(key, chunks())
    return json_response({})


def _delete(user, key: str) -> HttpResponse:
    _experiment_for_key(user, key, write=True)
    store = artifacts.storage()
    if store.exists(key):
        store.delete(key)
    return json_response({})


def _listing(root: str, relative: str) -> dict:
    relative = artifacts.clean_relative_path(relative)
    return {
        "root_uri": artifacts.URI_SCHEME + root,
        "files": [_file_info(entry, "") for entry in artifacts.list_entries(root, relative)],
    }


@route("artifacts/list", "GET")
def list_run_artifacts(user, params: Params) -> dict:
    run = _run(user, params)
    try:
        return _listing(artifacts.root_key(run.artifact_uri), params.text("path"))
    except artifacts.UnsafeArtifactPath as exc:
        raise InvalidParameter(str(exc))


@route("logged-models/{model_id}/artifacts/directories", "GET")
def list_logged_model_artifacts(user, params: Params) -> dict:
    model = _logged_model(user, params)
    try:
        return _listing(artifacts.root_key(model.artifact_location), params.text("artifact_directory_path"))
    except artifacts.UnsafeArtifactPath as exc:
        raise InvalidParameter(str(exc))
