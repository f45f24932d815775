"""`/serve/<endpoint>/invocations` and `/serve/<endpoint>/ping`: live endpoints answering
MLflow's scoring protocol (see protocol.py), for callers with a personal access token.

Who may call (permissions.can_invoke): the endpoint's owner, its team, platform admins, and
whoever holds `invoke_endpoint` on it (guardian, to a user or a team). No token or a bad one:
401; a caller who may see the endpoint but not call it: 403; an unknown or retired endpoint, or
one the caller may not see: 404.

The request path is kept to two queries once the model is loaded: the token (with its user),
and the endpoint row with the caller's right to invoke it computed in the same statement. That
row also names the versions serving now, so a change of version is seen on the next request
and loads the new model (loader.ModelCache). A canary takes `canary_percent` of the requests,
each drawn at random; the answering version is named in `X-Causeway-Model-Version` and one
INFO line per request is logged.
"""

from __future__ import annotations

import functools
import logging
import random
import time

from django.conf import settings
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.http import HttpResponse
from django.views.decorators.csrf import csrf_exempt

from apps.accounts.authentication import user_from_authorization_header
from apps.accounts.models import Team, User
from apps.accounts.roles import ADMIN
from apps.deployments.models import (
    Endpoint,
    EndpointGroupObjectPermission,
    EndpointUserObjectPermission,
    Environment,
)
from apps.deployments.serving import loader, observers, protocol

logger = logging.getLogger("causeway.serving")

INVOKE = "invoke_endpoint"
MODEL_VERSION_HEADER = "X-Causeway-Model-Version"


def max_body_bytes() -> int:
    return settings.SERVING_MAX_BODY_BYTES


def draw() -> float:
    """A number in [0, 100): the request goes to the canary when it is below canary_percent.
    A function of its own so tests can force the split."""
    return random.random() * 100  # noqa: S311 - traffic splitting, not security


def _json(status: int, body: bytes, **headers: str) -> HttpResponse:
    response = HttpResponse(body, status=status, content_type="application/json")
    for name, value in headers.items():
        response[name.replace("_", "-")] = value
    return response


def _error(status: int, error_code: str, message: str, **headers: str) -> HttpResponse:
    return _json(status, protocol.error_json(error_code, message), **headers)


ROW_FIELDS = (
    "pk",
    "state",
    "owner_id",
    "current_version_id",
    "canary_version_id",
    "canary_percent",
    "allow_pickle",
    "shared",
    "team_shared",
    "in_team",
    "admin",
)


@functools.cache
def _endpoint_sql() -> str:
    """The endpoint row with the caller's rights, as one statement. Written out once from the
    models' table and column names: compiling the equivalent ORM query (four EXISTS
    subqueries) cost more than running it, on every request."""
    q = connection.ops.quote_name
    endpoint, environment = Endpoint._meta, Environment._meta
    user_share, team_share = EndpointUserObjectPermission._meta, EndpointGroupObjectPermission._meta
    membership = User.groups.through._meta.db_table
    team, permission = Team._meta.db_table, Permission._meta.db_table
    content_type, group = ContentType._meta.db_table, Group._meta.db_table
    invoke = (
        f"JOIN {q(permission)} ap ON ap.id = p.permission_id "
        f"JOIN {q(content_type)} ct ON ct.id = ap.content_type_id "
        "WHERE ap.codename = %s AND ct.app_label = %s AND p.content_object_id = e.id"
    )
    # Only table names from the models' metadata are interpolated; every value is a parameter.
    return (
        "SELECT e.id, e.state, e.owner_id, e.current_version_id, e.canary_version_id, e.canary_percent, "  # noqa: S608
        "env.allow_pickle, "
        f"EXISTS (SELECT 1 FROM {q(user_share.db_table)} p {invoke} AND p.user_id = %s), "
        f"EXISTS (SELECT 1 FROM {q(team_share.db_table)} p "
        f"JOIN {q(membership)} ug ON ug.group_id = p.group_id {invoke} AND ug.user_id = %s), "
        f"EXISTS (SELECT 1 FROM {q(team)} t JOIN {q(membership)} ug ON ug.group_id = t.group_id "
        "WHERE t.id = e.team_id AND ug.user_id = %s), "
        f"EXISTS (SELECT 1 FROM {q(membership)} ug JOIN {q(group)} g ON g.id = ug.group_id "
        "WHERE ug.user_id = %s AND g.name = %s) "
        f"FROM {q(endpoint.db_table)} e JOIN {q(environment.db_table)} env ON env.id = e.environment_id "
        "WHERE e.name = %s"
    )


def _endpoint_row(name: str, user: User) -> dict | None:
    """The endpoint's serving state and whether `user` may invoke it, in one query."""
    params = [INVOKE, "deployments", user.pk, INVOKE, "deployments", user.pk, user.pk, user.pk, ADMIN, name]
    with connection.cursor() as cursor:
        cursor.execute(_endpoint_sql(), params)
        found = cursor.fetchone()
    return dict(zip(ROW_FIELDS, found, strict=True)) if found else None


def _authorise(request, name: str) -> tuple[dict | None, HttpResponse | None]:
    user, _ = user_from_authorization_header(request.META.get("HTTP_AUTHORIZATION", ""))
    if user is None:
        return None, _error(
            401,
            "UNAUTHENTICATED",
            "A personal access token is required (Authorization: Bearer <token>).",
            WWW_Authenticate='Bearer realm="causeway"',
        )
    row = _endpoint_row(name, user)
    if row is None or row["state"] != Endpoint.State.LIVE:
        return None, _error(404, "RESOURCE_DOES_NOT_EXIST", f"No live endpoint named '{name}'.")
    # The same rule as permissions.can_invoke, computed in the row's query.
    allowed = (
        user.is_superuser
        or row["owner_id"] == user.pk
        or any(row[key] for key in ("admin", "in_team", "shared", "team_shared"))
    )
    if not allowed:
        # Refusals are rare: only here is it worth asking whether the caller may know the
        # endpoint exists. Those who may not get the same 404 as for a name that never existed.
        from apps.deployments.selectors import visible_endpoints

        if not visible_endpoints(user).filter(pk=row["pk"]).exists():
            return None, _error(404, "RESOURCE_DOES_NOT_EXIST", f"No live endpoint named '{name}'.")
        return None, _error(403, "PERMISSION_DENIED", f"You may not invoke the endpoint '{name}'.")
    if row["current_version_id"] is None:
        return None, _error(503, "TEMPORARILY_UNAVAILABLE", f"The endpoint '{name}' has no version serving.")
    return row, None


def _predictor(row: dict, version_id: int) -> tuple[loader.Predictor | None, HttpResponse | None]:
    try:
        return loader.models.get_or_load(version_id, allow_pickle=bool(row["allow_pickle"])), None
    except loader.ModelRefused as exc:
        return None, _error(503, "INVALID_STATE", str(exc))
    except loader.ModelLoadError as exc:
        return None, _error(503, "TEMPORARILY_UNAVAILABLE", f"The model could not be loaded: {exc}")


@csrf_exempt
def invocations(request, endpoint: str) -> HttpResponse:
    started = time.perf_counter()
    outcome = _Outcome()
    # The id RequestContextMiddleware gave the request (and echoes in X-Request-ID).
    outcome.request_id = getattr(request, "request_id", "") or observers.request_id_from(
        request.headers.get("X-Request-ID")
    )
    response = _invoke(request, endpoint, outcome)
    if outcome.label:
        response[MODEL_VERSION_HEADER] = outcome.label
    response[observers.REQUEST_ID_HEADER] = outcome.request_id
    _log(endpoint, outcome.label or "-", outcome.canary, response.status_code, outcome.rows, started)
    if outcome.endpoint_id is not None and observers.active():
        # Monitoring's telemetry: only calls that reached an endpoint the caller may invoke.
        status = response.status_code
        observers.notify(
            observers.Invocation(
                endpoint_id=outcome.endpoint_id,
                endpoint_name=endpoint,
                model_version_id=outcome.version_id,
                request_id=outcome.request_id,
                at=time.time(),
                latency_ms=1000 * (time.perf_counter() - started),
                status=status,
                error_kind=(outcome.error_kind or observers.error_kind_for(status)) if status >= 400 else "",
                inputs=outcome.data,
                predictions=outcome.predictions,
            )
        )
    return response


class _Outcome:
    """What the log line reports besides the status: the version that answered, whether it
    was the canary, and the number of rows scored."""

    label = ""
    canary = False
    rows = 0
    # For the invocation observers (monitoring).
    request_id = ""
    endpoint_id: int | None = None
    version_id: int | None = None
    error_kind = ""
    data = None
    predictions = None


def _invoke(request, endpoint: str, outcome: _Outcome) -> HttpResponse:
    if request.method != "POST":
        return _error(405, "BAD_REQUEST", "Use POST for /invocations.", Allow="POST")
    row, refusal = _authorise(request, endpoint)
    if refusal is not None:
        return refusal
    outcome.endpoint_id = row["pk"]
    limit = max_body_bytes()
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > limit:
        return _error(413, "BAD_REQUEST", f"The request body is larger than {limit} bytes.")
    # Read from the stream: request.body would apply Django's own (HTML) upload limit.
    body = request.read(limit + 1)
    if len(body) > limit:
        return _error(413, "BAD_REQUEST", f"The request body is larger than {limit} bytes.")

    outcome.canary = bool(row["canary_version_id"]) and draw() < row["canary_percent"]
    version_id = row["canary_version_id"] if outcome.canary else row["current_version_id"]
    outcome.version_id = version_id
    predictor, refusal = _predictor(row, version_id)
    if refusal is not None:
        return refusal
    outcome.label = predictor.label
    try:
        data = protocol.parse_request(body, request.META.get("CONTENT_TYPE", ""), predictor.signature)
        outcome.rows = len(data)
        outcome.data = data
        try:
            predictions = predictor.predict(data)
        except Exception as exc:  # the model refused this input: MLflow answers 400 too
            outcome.error_kind = "model_error"
            raise protocol.ProtocolError(
                "Encountered an unexpected error while evaluating the model. Verify that the input is "
                f"compatible with the model for inference. Error: {type(exc).__name__}: {exc}"
            )
        outcome.predictions = predictions
        return _json(200, protocol.predictions_json(predictions))
    except protocol.ProtocolError as exc:
        return _json(exc.status, protocol.error_json(exc.error_code, exc.message))


@csrf_exempt
def ping(request, endpoint: str) -> HttpResponse:
    """200 when every version the endpoint serves is loaded (or loads now), 503 otherwise."""
    if request.method not in ("GET", "HEAD"):
        return _error(405, "BAD_REQUEST", "Use GET for /ping.", Allow="GET")
    row, refusal = _authorise(request, endpoint)
    if refusal is not None:
        return refusal
    labels = []
    for version_id in filter(None, (row["current_version_id"], row["canary_version_id"])):
        predictor, refusal = _predictor(row, version_id)
        if refusal is not None:
            return refusal
        labels.append(predictor.label)
    return _json(200, b'{"status":"ready"}', **{MODEL_VERSION_HEADER: ", ".join(labels)})


def _log(endpoint: str, version: str, canary: bool, status: int, rows: int, started: float) -> None:
    logger.info(
        "serve endpoint=%s version=%s canary=%s status=%s rows=%s ms=%.2f",
        endpoint,
        version,
        "yes" if canary else "no",
        status,
        rows,
        1000 * (time.perf_counter() - started),
    )
