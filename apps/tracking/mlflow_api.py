"""The MLflow tracking REST API (`/api/2.0/mlflow/…`, `/ajax-api/2.0/mlflow/…`, the 3.0 routes
the client uses), so the stock `mlflow` client works with MLFLOW_TRACKING_URI pointing here.

Plain Django views rather than DRF: `log_metric` is called once per point, and the request path
must stay a token lookup, a permission check and two writes. Field names, defaults, limits and
error JSON (`{"error_code", "message"}` with MLflow's HTTP statuses) follow MLflow's protos.
Who is logging comes from the token, never from the request's `user_id`.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections import defaultdict
from collections.abc import Callable
from typing import Any, NamedTuple

import orjson
from django.conf import settings
from django.db import connection
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.middleware.csrf import CsrfViewMiddleware
from django.views.decorators.csrf import csrf_exempt

from apps.accounts.authentication import user_from_authorization_header
from apps.core import ratelimit
from apps.core.rows import RowLoader
from apps.tracking import permissions, search, selectors, services, validation
from apps.tracking.errors import InvalidParameter, NotFound, TrackingError
from apps.tracking.models import (
    DEFAULT_EXPERIMENT_ID,
    Experiment,
    LatestMetric,
    Lifecycle,
    LoggedModel,
    Metric,
    Param,
    Run,
    RunInput,
    RunTag,
)

Handler = Callable[[Any, "Params"], dict]
ROUTES: dict[tuple[str, str], Handler] = {}
PATTERN_ROUTES: list[tuple[list[str], str, Handler]] = []


def route(path: str, *methods: str) -> Callable[[Handler], Handler]:
    """Register a handler for `path` (relative to /mlflow/); `{name}` segments are captured."""

    def register(handler: Handler) -> Handler:
        for method in methods:
            if "{" in path:
                PATTERN_ROUTES.append((path.split("/"), method, handler))
            else:
                ROUTES[(path, method)] = handler
        return handler

    return register


class Params(dict):
    """The request's fields: the JSON body, or the query string for GETs (repeated keys as
    lists), plus the segments captured from the path."""

    def text(self, name: str, *, required: bool = False, default: str = "") -> str:
        value = self.get(name)
        if isinstance(value, list):
            value = value[0] if value else None
        if value is None or value == "":
            if required:
                raise validation.missing(name)
            return default
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            raise validation.invalid_value(name, value, "expected a string.")
        return str(value)

    def items_of(self, name: str) -> list:
        value = self.get(name)
        if value is None:
            return []
        if not isinstance(value, list):
            raise validation.invalid_value(name, value, "expected a list.")
        return value

    def strings(self, name: str) -> list[str]:
        value = self.get(name)
        if value is None:
            return []
        values = value if isinstance(value, list) else [value]
        if not all(isinstance(item, str | int) and not isinstance(item, bool) for item in values):
            raise validation.invalid_value(name, value, "expected a list of strings.")
        return [str(item) for item in values]

    def key_values(self, name: str) -> list[tuple[str, str]]:
        pairs = []
        for index, item in enumerate(self.items_of(name)):
            if not isinstance(item, dict):
                raise validation.invalid_value(f"{name}[{index}]", item, "expected an object with key and value.")
            pairs.append((item.get("key"), item.get("value")))
        return pairs


# --- Dispatch -------------------------------------------------------------------------------


@csrf_exempt
def dispatch(request: HttpRequest, endpoint: str) -> HttpResponse:
    # The body is read before anything can refuse the request: a response that leaves request
    # bytes unread makes gunicorn close the kept-alive connection, and the client's next call
    # on it fails.
    raw = request.read(settings.TRACKING_MAX_REQUEST_BYTES + 1)
    handler, captured = _resolve(endpoint.strip("/"), request.method or "GET")
    if handler is None:
        return error_response("ENDPOINT_NOT_FOUND", f"No API endpoint {request.method} {request.path}", 404)
    user, failure = authenticate(request)
    if failure is not None:
        return failure
    try:
        params = _read_params(request, raw)
        params.update(captured)
        return json_response(handler(user, params))
    except TrackingError as exc:
        return error_response(exc.error_code, exc.message, exc.http_status)


def _resolve(endpoint: str, method: str) -> tuple[Handler | None, dict[str, str]]:
    handler = ROUTES.get((endpoint, method))
    if handler is not None:
        return handler, {}
    segments = endpoint.split("/")
    for pattern, wanted_method, candidate in PATTERN_ROUTES:
        if wanted_method != method or len(pattern) != len(segments):
            continue
        captured = {}
        for expected, actual in zip(pattern, segments, strict=True):
            if expected.startswith("{"):
                captured[expected[1:-1]] = actual
            elif expected != actual:
                break
        else:
            return candidate, captured
    return None, {}


def authenticate(request: HttpRequest) -> tuple[Any, HttpResponse | None]:
    """The caller (see _identify), within their request budget (MLFLOW_API_RATE_LIMIT): 429
    REQUEST_LIMIT_EXCEEDED with Retry-After past it, which the mlflow client backs off on."""
    user, failure = _identify(request)
    if failure is None:
        wait = ratelimit.hit("mlflow:" + ratelimit.caller_key(request, user), settings.MLFLOW_API_RATE_LIMIT)
        if wait is not None:
            response = error_response("REQUEST_LIMIT_EXCEEDED", f"Too many requests: retry in {wait} s.", 429)
            response["Retry-After"] = str(wait)
            return None, response
    return user, failure


def _identify(request: HttpRequest) -> tuple[Any, HttpResponse | None]:
    """The token's user (Bearer, or Basic with the token as password), else the session's
    user, with Django's CSRF check for unsafe methods. 401 in MLflow's shape otherwise."""
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if header:
        user, _ = user_from_authorization_header(header)
        if user is None:
            return None, error_response("UNAUTHENTICATED", "Invalid, expired or revoked token.", 401)
        return user, None
    user = request.user
    if not user.is_authenticated:
        response = error_response(
            "UNAUTHENTICATED", "Authentication required: set MLFLOW_TRACKING_TOKEN to a personal access token.", 401
        )
        response["WWW-Authenticate"] = 'Bearer realm="causeway"'
        return None, response
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        rejected = CsrfViewMiddleware(lambda _: None).process_view(request, None, (), {})
        if rejected is not None:
            return None, error_response("PERMISSION_DENIED", "CSRF check failed.", 403)
    return user, None


def _read_params(request: HttpRequest, raw: bytes) -> Params:
    query = Params({key: values if len(values) > 1 else values[0] for key, values in request.GET.lists()})
    if request.method in ("GET", "DELETE") and not raw:
        return query
    limit = settings.TRACKING_MAX_REQUEST_BYTES
    if len(raw) > limit:
        raise InvalidParameter(f"The request body is larger than {limit // (1024 * 1024)} MB.")
    if not raw.strip():
        body: Any = {}
    else:
        try:
            body = json.loads(raw)
        except (UnicodeDecodeError, ValueError) as exc:
            raise InvalidParameter(f"Malformed request: the body is not valid JSON ({exc}).")
    if not isinstance(body, dict):
        raise InvalidParameter("Malformed request: the body must be a JSON object.")
    # Some clients send GET parameters in the query string alongside a body; keep both.
    query.update(body)
    return query


class RawJSON:
    """JSON text built elsewhere (by the database), written into a response as it is."""

    __slots__ = ("text",)

    def __init__(self, text: str):
        self.text = text


def json_response(body: dict, status: int = 200) -> HttpResponse:
    # Non-finite doubles are sent as protobuf's JSON strings ("NaN", "Infinity") by `_double`
    # before they get here (orjson would write null for them).
    try:
        payload = orjson.dumps(body, default=_raw_fragment)
    except TypeError:  # orjson's error for an int beyond 64 bits or a type it does not know
        payload = json.dumps(body, separators=(",", ":"), allow_nan=False, default=_raw_value).encode()
    return HttpResponse(payload, status=status, content_type="application/json")


def _raw_fragment(value: Any) -> orjson.Fragment:
    if isinstance(value, RawJSON):
        return orjson.Fragment(value.text)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _raw_value(value: Any) -> Any:
    if isinstance(value, RawJSON):
        return json.loads(value.text)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def error_response(code: str, message: str, status: int) -> HttpResponse:
    return json_response({"error_code": code, "message": message}, status=status)


# --- Serialisation (MLflow's JSON) ----------------------------------------------------------


def _double(value: float | None, is_nan: bool) -> float | str:
    if is_nan or value is None:
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def experiment_json(experiment: Experiment) -> dict:
    return {
        "experiment_id": str(experiment.pk),
        "name": experiment.name,
        "artifact_location": experiment.artifact_location,
        "lifecycle_stage": experiment.lifecycle_stage,
        "last_update_time": experiment.last_update_time,
        "creation_time": experiment.creation_time,
        "tags": [{"key": tag.key, "value": tag.value} for tag in experiment.tags.all()],
    }


class RunRow(NamedTuple):
    """The columns of a run MLflow's RunInfo needs, read as a tuple (search pages skip building
    a Run and a User instance per row)."""

    pk: int
    run_uuid: str
    name: str
    experiment_id: int
    username: str
    status: str
    start_time: int
    end_time: int | None
    artifact_uri: str
    lifecycle_stage: str


RUN_ROW_FIELDS = (
    "pk",
    "run_uuid",
    "name",
    "experiment_id",
    "user__username",
    "status",
    "start_time",
    "end_time",
    "artifact_uri",
    "lifecycle_stage",
)


def run_row(run: Run) -> RunRow:
    return RunRow(
        run.pk,
        run.run_uuid,
        run.name,
        run.experiment_id,
        run.user.get_username() if run.user_id else "",
        run.status,
        run.start_time,
        run.end_time,
        run.artifact_uri,
        run.lifecycle_stage,
    )


def run_info_json(run: RunRow) -> dict:
    info = {
        "run_id": run.run_uuid,
        "run_uuid": run.run_uuid,
        "run_name": run.name,
        "experiment_id": str(run.experiment_id),
        "user_id": run.username or "",
        "status": run.status,
        "start_time": run.start_time,
        "artifact_uri": run.artifact_uri,
        "lifecycle_stage": run.lifecycle_stage,
    }
    if run.end_time is not None:
        info["end_time"] = run.end_time
    return info


def metric_json(metric: Metric | LatestMetric) -> dict:
    return {
        "key": metric.key,
        "value": _double(metric.value, metric.is_nan),
        "timestamp": metric.timestamp,
        "step": metric.step,
    }


def runs_json(runs: list[RunRow]) -> list[dict]:
    """Runs in MLflow's JSON with their latest metrics, params, tags, inputs and outputs: one
    query per kind for the whole page, read as plain tuples (a search page of 100 runs carries
    thousands of child rows; model instances for them would cost more than the queries)."""
    ids = [run.pk for run in runs]
    metrics, inputs, outputs = (defaultdict(list) for _ in range(3))
    for run_id, key, value, is_nan, timestamp, step in _child_rows(
        LatestMetric, ("run_id", "key", "value", "is_nan", "timestamp", "step"), ids
    ):
        metrics[run_id].append({"key": key, "value": _double(value, is_nan), "timestamp": timestamp, "step": step})
    params, tags = _key_values_json(Param, ids), _key_values_json(RunTag, ids)
    for item in _run_inputs(ids):
        inputs[item.run_id].append(_dataset_input_json(item))
    for run_id, model_id in _child_rows(LoggedModel, ("run_id", "model_id"), ids):
        outputs[run_id].append({"model_id": model_id, "step": 0})
    return [
        {
            "info": run_info_json(run),
            "data": {
                "metrics": metrics[run.pk],
                "params": params.get(run.pk, _NO_ROWS),
                "tags": tags.get(run.pk, _NO_ROWS),
            },
            # Empty lists are left out, as protobuf's JSON does (the stock server's shape).
            "inputs": {"dataset_inputs": inputs[run.pk]} if run.pk in inputs else {},
            "outputs": {"model_outputs": outputs[run.pk]} if run.pk in outputs else {},
        }
        for run in runs
    ]


def _rows_of_runs(model, select: str, run_ids: list[int], *, alias: str = "c", tail: str = "") -> list[tuple]:
    """`SELECT <select> FROM <model's table> <alias> WHERE <alias>.run_id IN (<run_ids>) <tail>`
    as plain tuples: a search page reads thousands of child rows, where compiling ORM queries
    and converting each row cost more than the query. Only quoted identifiers and the callers'
    fixed SQL are formatted in; the ids are parameters."""
    if not run_ids:
        return []
    quote = connection.ops.quote_name
    sql = "SELECT {} FROM {} {} WHERE {}.{} IN ({}) {}".format(  # noqa: S608
        select,
        quote(model._meta.db_table),
        quote(alias),
        quote(alias),
        quote("run_id"),
        ", ".join(["%s"] * len(run_ids)),
        tail,
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, run_ids)
        return cursor.fetchall()


def _child_rows(model, columns: tuple[str, ...], run_ids: list[int]) -> list[tuple]:
    quote = connection.ops.quote_name
    return _rows_of_runs(model, ", ".join(quote(column) for column in columns), run_ids)


_NO_ROWS = RawJSON("[]")


def _key_values_json(model, run_ids: list[int]) -> dict[int, RawJSON]:
    """Each run's params or tags as MLflow's `[{"key": …, "value": …}]`, the JSON built by the
    database: a search page of 100 runs with 30 params and tags each carries 3,000 of them,
    where building a dict per row cost ~2 ms. Keys and values are text, which both databases
    write exactly (metrics stay in Python: SQLite's JSON keeps only 15 digits of a double)."""
    quote = connection.ops.quote_name
    key, value, run_id = quote("key"), quote("value"), quote("run_id")
    if connection.vendor == "postgresql":
        array = f"json_agg(json_build_object('key', {key}, 'value', {value}))::text"
    else:
        array = f"json_group_array(json_object('key', {key}, 'value', {value}))"
    rows = _rows_of_runs(model, f"{run_id}, {array}", run_ids, tail=f"GROUP BY {run_id}")
    return {pk: RawJSON(text) for pk, text in rows}


_RUN_INPUT_ROW = RowLoader(RunInput, "i")


def _run_inputs(run_ids: list[int]) -> list[RunInput]:
    """`RunInput.objects.filter(run_id__in=run_ids)` without compiling the ORM query (a search
    page asks this once; most runs have no inputs, so the query is all the cost)."""
    order = f"ORDER BY {connection.ops.quote_name('i')}.{connection.ops.quote_name('id')}"
    rows = _rows_of_runs(RunInput, _RUN_INPUT_ROW.columns(connection), run_ids, alias="i", tail=order)
    return [_RUN_INPUT_ROW.load(connection, row) for row in rows]


def _dataset_input_json(item: RunInput) -> dict:
    dataset = {"name": item.name, "digest": item.digest, "source_type": item.source_type, "source": item.source}
    if item.schema:
        dataset["schema"] = item.schema
    if item.profile:
        dataset["profile"] = item.profile
    return {"tags": [{"key": key, "value": value} for key, value in item.tags.items()], "dataset": dataset}


def logged_model_json(model: LoggedModel) -> dict:
    return {
        "info": {
            "model_id": model.model_id,
            "experiment_id": str(model.experiment_id),
            "name": model.name,
            "creation_timestamp_ms": model.creation_timestamp,
            "last_updated_timestamp_ms": model.last_updated_timestamp,
            "artifact_uri": model.artifact_location,
            "status": model.status,
            "creator_id": str(model.user_id),
            "model_type": model.model_type,
            "source_run_id": model.source_run_uuid,
            "status_message": model.status_message,
            "tags": [{"key": key, "value": value} for key, value in model.tags.items()],
            "registrations": [],
        },
        "data": {
            "params": [{"key": key, "value": value} for key, value in model.params.items()],
            "metrics": [],
        },
    }


# --- Lookups --------------------------------------------------------------------------------


def _experiment(user, params: Params, name: str = "experiment_id") -> Experiment:
    experiment_id = params.text(name, required=True)
    if experiment_id == str(DEFAULT_EXPERIMENT_ID):
        services.default_experiment()
    experiment = selectors.experiment_for(user, experiment_id)
    if experiment is None:
        raise NotFound(f"No Experiment with id={experiment_id} exists")
    return experiment


def _run(user, params: Params) -> Run:
    # The client sends both run_id and (deprecated) run_uuid.
    run_id = params.text("run_id") or params.text("run_uuid")
    if not run_id:
        raise validation.missing("run_id")
    run = selectors.run_for(user, run_id)
    if run is None:
        raise NotFound(f"Run with id={run_id} not found")
    return run


def _logged_model(user, params: Params) -> LoggedModel:
    model_id = params.text("model_id", required=True)
    model = LoggedModel.objects.select_related("experiment").filter(model_id=model_id).first()
    if model is None or not permissions.can_view(user, model.experiment):
        raise NotFound(f"Logged model with ID '{model_id}' not found.")
    return model


def _page(params: Params, default: int, limit: int) -> tuple[int, int]:
    max_results = validation.max_results(params.get("max_results"), "max_results", default=default, limit=limit)
    token = params.text("page_token")
    return decode_page_token(token), max_results


def decode_page_token(token: str) -> int:
    if not token:
        return 0
    try:
        offset = json.loads(base64.b64decode(token, validate=True)).get("offset")
    except (binascii.Error, ValueError, AttributeError, UnicodeDecodeError):
        offset = None
    if not isinstance(offset, int) or offset < 0:
        raise InvalidParameter("Invalid page token, could not base64-decode")
    return offset


def encode_page_token(offset: int) -> str:
    return base64.b64encode(json.dumps({"offset": offset}).encode()).decode()


def _paged(queryset: QuerySet, offset: int, max_results: int) -> tuple[list, str | None]:
    rows = list(queryset[offset : offset + max_results + 1])
    if len(rows) > max_results:
        return rows[:max_results], encode_page_token(offset + max_results)
    return rows, None


def _view_type(params: Params, name: str) -> str:
    view_type = (params.text(name) or "ACTIVE_ONLY").upper()
    if view_type not in ("ACTIVE_ONLY", "DELETED_ONLY", "ALL"):
        raise validation.invalid_value(name, view_type, "must be ACTIVE_ONLY, DELETED_ONLY or ALL.")
    return view_type


def _by_lifecycle(queryset: QuerySet, view_type: str) -> QuerySet:
    if view_type == "ACTIVE_ONLY":
        return queryset.filter(lifecycle_stage=Lifecycle.ACTIVE)
    if view_type == "DELETED_ONLY":
        return queryset.filter(lifecycle_stage=Lifecycle.DELETED)
    return queryset


def _search_error(exc: search.SearchError) -> InvalidParameter:
    return InvalidParameter(str(exc))


# --- Experiments ----------------------------------------------------------------------------


@route("experiments/create", "POST")
def create_experiment(user, params: Params) -> dict:
    experiment = services.create_experiment(
        by=user,
        name=params.text("name", required=True),
        artifact_location=params.text("artifact_location"),
        tags=params.key_values("tags"),
    )
    return {"experiment_id": str(experiment.pk)}


@route("experiments/get", "GET")
def get_experiment(user, params: Params) -> dict:
    return {"experiment": experiment_json(_experiment(user, params))}


@route("experiments/get-by-name", "GET")
def get_experiment_by_name(user, params: Params) -> dict:
    name = params.text("experiment_name", required=True)
    if name == "Default":
        services.default_experiment()
    experiment = selectors.experiment_by_name(user, name)
    if experiment is None:
        raise NotFound(f"Could not find experiment with name '{name}'")
    return {"experiment": experiment_json(experiment)}


@route("experiments/search", "POST", "GET")
def search_experiments(user, params: Params) -> dict:

    offset, max_results = _page(params, default=1000, limit=validation.MAX_RESULTS_SEARCH_EXPERIMENTS)
    queryset = _by_lifecycle(selectors.visible_experiments(user), _view_type(params, "view_type"))
    try:
        queryset = search.filter_experiments(queryset, params.text("filter"))
        queryset = search.order_experiments(queryset, params.strings("order_by"))
    except search.SearchError as exc:
        raise _search_error(exc)
    experiments, token = _paged(queryset.prefetch_related("tags"), offset, max_results)
    body: dict = {"experiments": [experiment_json(experiment) for experiment in experiments]}
    if token:
        body["next_page_token"] = token
    return body


@route("experiments/update", "POST")
def update_experiment(user, params: Params) -> dict:
    new_name = params.text("new_name")
    if not new_name:
        raise validation.missing("new_name")
    services.update_experiment(by=user, experiment=_experiment(user, params), name=new_name)
    return {}


@route("experiments/delete", "POST")
def delete_experiment(user, params: Params) -> dict:
    services.delete_experiment(by=user, experiment=_experiment(user, params))
    return {}


@route("experiments/restore", "POST")
def restore_experiment(user, params: Params) -> dict:
    services.restore_experiment(by=user, experiment=_experiment(user, params))
    return {}


@route("experiments/set-experiment-tag", "POST")
def set_experiment_tag(user, params: Params) -> dict:
    services.set_experiment_tag(
        by=user, experiment=_experiment(user, params), key=params.get("key"), value=params.get("value")
    )
    return {}


@route("experiments/delete-experiment-tag", "POST")
def delete_experiment_tag(user, params: Params) -> dict:
    services.delete_experiment_tag(by=user, experiment=_experiment(user, params), key=params.text("key", required=True))
    return {}


# --- Runs -----------------------------------------------------------------------------------


@route("runs/create", "POST")
def create_run(user, params: Params) -> dict:
    experiment = _experiment(user, params) if params.get("experiment_id") not in (None, "") else None
    if experiment is None:
        experiment = services.default_experiment()
    start_time = params.get("start_time")
    run = services.create_run(
        by=user,
        experiment=experiment,
        run_name=params.text("run_name"),
        start_time=validation.int64(start_time, "start_time", minimum=0) if start_time not in (None, "") else None,
        tags=params.key_values("tags"),
    )
    return {"run": runs_json([run_row(run)])[0]}


@route("runs/get", "GET")
def get_run(user, params: Params) -> dict:
    run = _run(user, params)
    return {"run": runs_json([run_row(run)])[0]}


@route("runs/update", "POST")
def update_run(user, params: Params) -> dict:
    run = _run(user, params)
    end_time = params.get("end_time")
    services.update_run(
        by=user,
        run=run,
        status=params.text("status") or None,
        end_time=validation.int64(end_time, "end_time", minimum=0) if end_time not in (None, "") else None,
        run_name=params.text("run_name") or None,
    )
    return {"run_info": run_info_json(run_row(run))}


@route("runs/delete", "POST")
def delete_run(user, params: Params) -> dict:
    services.delete_run(by=user, run=_run(user, params))
    return {}


@route("runs/restore", "POST")
def restore_run(user, params: Params) -> dict:
    services.restore_run(by=user, run=_run(user, params))
    return {}


@route("runs/log-metric", "POST")
def log_metric(user, params: Params) -> dict:
    run = _run(user, params)
    [point] = services.metric_points([params], path="")
    services.log_metric(by=user, run=run, point=point)
    return {}


@route("runs/log-parameter", "POST")
def log_param(user, params: Params) -> dict:
    services.log_param(by=user, run=_run(user, params), key=params.get("key"), value=params.get("value"))
    return {}


@route("runs/set-tag", "POST")
def set_tag(user, params: Params) -> dict:
    services.set_tag(by=user, run=_run(user, params), key=params.get("key"), value=params.get("value"))
    return {}


@route("runs/delete-tag", "POST")
def delete_tag(user, params: Params) -> dict:
    services.delete_tag(by=user, run=_run(user, params), key=params.text("key", required=True))
    return {}


@route("runs/log-batch", "POST")
def log_batch(user, params: Params) -> dict:
    run = _run(user, params)
    services.log_batch(
        by=user,
        run=run,
        metrics=services.metric_points(params.items_of("metrics")),
        params=params.key_values("params"),
        tags=params.key_values("tags"),
    )
    return {}


@route("runs/log-inputs", "POST")
def log_inputs(user, params: Params) -> dict:
    services.log_inputs(by=user, run=_run(user, params), datasets=params.items_of("datasets"))
    return {}


@route("runs/outputs", "POST")
def log_outputs(user, params: Params) -> dict:
    run = _run(user, params)
    for index, item in enumerate(params.items_of("models")):
        model_id = item.get("model_id") if isinstance(item, dict) else None
        model = _logged_model(user, Params({"model_id": model_id})) if model_id else None
        if model is None:
            raise validation.missing(f"models[{index}].model_id")
        services.link_logged_model(by=user, model=model, run=run)
    return {}


@route("runs/log-model", "POST")
def log_model(user, params: Params) -> dict:
    # MLflow 2's record of a logged model as a run tag; MLflow 3 clients still send it.
    run = _run(user, params)
    model_json = params.text("model_json", required=True)
    try:
        model = json.loads(model_json)
    except ValueError:
        raise validation.invalid_value("model_json", model_json[:80], "not valid JSON.")
    if not isinstance(model, dict) or "artifact_path" not in model or "flavors" not in model:
        raise InvalidParameter("Model json is missing mandatory fields: artifact_path, flavors")
    services.record_logged_model_history(by=user, run=run, model=model)
    return {}


@route("runs/search", "POST", "GET")
def search_runs(user, params: Params) -> dict:

    offset, max_results = _page(params, default=1000, limit=validation.MAX_RESULTS_SEARCH_RUNS)
    experiment_ids = params.strings("experiment_ids")
    visible_ids = set(
        selectors.visible_experiments(user)
        .filter(pk__in=[int(pk) for pk in experiment_ids if pk.isdigit()])
        .values_list("pk", flat=True)
    )
    runs = _by_lifecycle(Run.objects.filter(experiment_id__in=visible_ids), _view_type(params, "run_view_type"))
    try:
        experiments = sorted(visible_ids)
        runs = search.filter_runs(runs, params.text("filter"), experiment_ids=experiments)
        runs = search.order_runs(runs, params.strings("order_by"), experiment_ids=experiments)
    except search.SearchError as exc:
        raise _search_error(exc)
    rows = runs.values_list(*RUN_ROW_FIELDS)
    page, token = _paged(rows, offset, max_results)
    page = [RunRow(*row) for row in page]
    body: dict = {"runs": runs_json(page)}
    if token:
        body["next_page_token"] = token
    return body


@route("metrics/get-history", "GET")
def get_metric_history(user, params: Params) -> dict:
    run = _run(user, params)
    key = params.text("metric_key", required=True)
    offset, max_results = _page(params, default=validation.MAX_RESULTS_METRIC_HISTORY, limit=10**9)
    points = Metric.objects.filter(run=run, key=key).order_by("step", "timestamp", "id")
    if not params.text("max_results") and not params.text("page_token"):
        return {"metrics": [metric_json(point) for point in points]}
    page, token = _paged(points, offset, max_results)
    body: dict = {"metrics": [metric_json(point) for point in page]}
    if token:
        body["next_page_token"] = token
    return body


@route("metrics/get-history-bulk-interval", "GET")
def get_metric_history_bulk_interval(user, params: Params) -> dict:
    key = params.text("metric_key", required=True)
    run_ids = params.strings("run_ids")
    if not run_ids or len(run_ids) > 100:
        raise InvalidParameter("Please provide between 1 and 100 run_ids.")
    runs = {run.pk: run for run in selectors.visible_runs(user).filter(run_uuid__in=run_ids).only("pk", "run_uuid")}
    points = Metric.objects.filter(run_id__in=list(runs), key=key).order_by("run_id", "step", "timestamp")
    return {"metrics": [{**metric_json(point), "run_id": runs[point.run_id].run_uuid} for point in points[:100_000]]}


# --- Logged models (MLflow 3) ---------------------------------------------------------------


@route("logged-models", "POST")
def create_logged_model(user, params: Params) -> dict:
    experiment = _experiment(user, params)
    source_run_id = params.text("source_run_id")
    source_run = _run(user, Params({"run_id": source_run_id})) if source_run_id else None
    model = services.create_logged_model(
        by=user,
        experiment=experiment,
        name=params.text("name"),
        source_run=source_run,
        model_type=params.text("model_type"),
        params=params.key_values("params"),
        tags=params.key_values("tags"),
    )
    return {"model": logged_model_json(model)}


@route("logged-models/{model_id}", "GET")
def get_logged_model(user, params: Params) -> dict:
    return {"model": logged_model_json(_logged_model(user, params))}


@route("logged-models/{model_id}", "PATCH")
def finalize_logged_model(user, params: Params) -> dict:
    status = params.text("status", required=True)
    status = {"LOGGED_MODEL_READY": "READY", "LOGGED_MODEL_UPLOAD_FAILED": "FAILED"}.get(status, status)
    model = services.update_logged_model(by=user, model=_logged_model(user, params), status=status)
    return {"model": logged_model_json(model)}


@route("logged-models/{model_id}", "DELETE")
def delete_logged_model(user, params: Params) -> dict:
    services.delete_logged_model(by=user, model=_logged_model(user, params))
    return {}


@route("logged-models/{model_id}/tags", "PATCH")
def set_logged_model_tags(user, params: Params) -> dict:
    model = services.update_logged_model(by=user, model=_logged_model(user, params), tags=params.key_values("tags"))
    return {"model": logged_model_json(model)}


@route("logged-models/{model_id}/tags/{tag_key}", "DELETE")
def delete_logged_model_tag(user, params: Params) -> dict:
    services.update_logged_model(by=user, model=_logged_model(user, params), delete_tag_key=params["tag_key"])
    return {}


@route("logged-models/{model_id}/params", "POST")
def log_logged_model_params(user, params: Params) -> dict:
    services.update_logged_model(by=user, model=_logged_model(user, params), params=params.key_values("params"))
    return {}


@route("logged-models/search", "POST")
def search_logged_models(user, params: Params) -> dict:
    offset, max_results = _page(params, default=100, limit=validation.MAX_RESULTS_SEARCH_RUNS)
    experiment_ids = [int(pk) for pk in params.strings("experiment_ids") if pk.isdigit()]
    visible = selectors.visible_experiments(user).filter(pk__in=experiment_ids).values("pk")
    models = LoggedModel.objects.filter(experiment__in=visible, lifecycle_stage=Lifecycle.ACTIVE)
    try:
        models = search.filter_logged_models(models, params.text("filter"))
    except search.SearchError as exc:
        raise _search_error(exc)
    models, token = _paged(models.order_by("-creation_timestamp", "-id"), offset, max_results)
    body: dict = {"models": [logged_model_json(model) for model in models]}
    if token:
        body["next_page_token"] = token
    return body


# --- Server info (MLflow 3) -----------------------------------------------------------------


def server_info(request: HttpRequest) -> HttpResponse:
    """What the client asks once per process before logging: how this server is set up."""
    return json_response(
        {
            "store_type": "SqlStore",
            "workspaces_enabled": False,
            "trace_archival_enabled": False,
            "multipart_uploads_enabled": False,
            "multipart_downloads_enabled": False,
            "presigned_upload_run_id_supported": False,
            "presigned_upload_model_id_supported": False,
            "features_enabled": {"gateway": False},
        }
    )
