"""The permission matrix: every URL pattern of the project, answered for three callers.

* ``anonymous`` — not signed in: HTML pages redirect to the login page (``LOGIN``); the
  ``/api/v1`` REST API, the MLflow APIs and serving answer 401 JSON.
* ``stranger`` — signed in as a data scientist with no grant on anything the owner made: objects
  they may not see answer 404 (never 403, which would confirm that they exist); 403 only where
  the object's existence is public (an organisation-visible confidential dataset, policy pages).
* ``owner`` — owns the private objects (a scientist and ML engineer): 200 or 302, 400 for an
  empty form post; 403/404 on pages for other roles (admins, operations).

The objects come from ``tests/security/conftest.py::build_world``, built once per class.

A route with no entry in ``ROUTES`` fails ``test_every_route_has_an_expectation``. To add one,
write ONE line in ``ROUTES`` keyed by the route's name (``namespace:name``; an unnamed pattern
is keyed by its full pattern text, as the failure message prints it)::

    "monitoring:endpoint": Case("name={endpoint.name}", LOGIN, 404, 200),

``Case(kwargs, anonymous, stranger, owner, method, query, body, form, token)``:

* ``kwargs`` — ``key=value`` pairs separated by spaces for ``reverse()``, each value a
  ``str.format`` template over the world's objects (``{dataset.slug}``, ``{run.run_uuid}``…);
* ``query`` — appended to the URL (a template too);
* ``body`` — JSON text sent as the body (a template: double the braces), or ``form`` —
  ``key=value`` pairs sent form-encoded;
* ``method="POST"`` for a route that changes state: every request runs in a savepoint that is
  rolled back, so the owner's POST may really change things;
* ``token=True`` — signed in by personal access token instead of the session (serving).

Several cases for one route: give a list. A route that needs an object the world lacks: create
it in ``build_world`` first. DRF ``.json`` format-suffix twins (switched off in
config/api_urls.py) would be checked with the same case automatically.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import partial

import pytest
from django.conf import settings
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

LOGIN = "login"  # a 302 redirect to the login page


@dataclass(frozen=True)
class Case:
    kwargs: str = ""
    anonymous: int | str = LOGIN
    stranger: int = 404
    owner: int = 200
    method: str = "GET"
    query: str = ""
    body: str | None = None  # JSON text
    form: str = ""  # form fields, "decision=approve comment=x"
    token: bool = False  # signed in by personal access token (Authorization: Bearer) not session


# Whole URL prefixes left out, each with the reason.
SKIPPED_PREFIXES = {
    "admin/": "Django's admin: its own staff-only login and per-model permissions, tested by Django.",
}

RUN = "experiment_id={experiment.pk} run_uuid={run.run_uuid}"
VERSION = "model={model.name} version={version.version}"
MLFLOW_ANON = 401  # MLflow's own error JSON, with WWW-Authenticate

ROUTES: dict[str, Case | list[Case]] = {
    # --- core, login ------------------------------------------------------------------------
    "home": Case(stranger=200),
    "healthz": Case(anonymous=200, stranger=200, owner=200),
    "readyz": Case(anonymous=200, stranger=200, owner=200),
    "login": Case(anonymous=200, stranger=302, owner=302),
    "logout": Case(anonymous=302, stranger=302, owner=302, method="POST"),
    "password_change": Case(stranger=200),
    "password_change_done": Case(stranger=200),
    # --- accounts ---------------------------------------------------------------------------
    "accounts:profile": Case(stranger=200),
    "accounts:token_create": Case(stranger=400, owner=400, method="POST"),  # no name: the form's 400
    "accounts:token_revoke": Case("token_id={token.pk}", method="POST", owner=302),
    "accounts:team_list": Case(stranger=200),
    "accounts:team_detail": Case("slug={team.slug}", stranger=200),
    "accounts:team_create": Case(stranger=404, owner=404),  # platform admins only
    "accounts:team_member": Case("slug={team.slug}", method="POST", owner=302),
    "accounts:bulk_share": Case(owner=404),  # platform admins only
    "accounts:share": [
        Case("kind=dataset pk={dataset.pk}"),
        Case("kind=experiment pk={experiment.pk}"),
        Case("kind=model pk={model.pk}"),
        Case("kind=endpoint pk={endpoint.pk}"),
        Case("kind=environment pk={environment.pk}", owner=404),  # platform admins only
    ],
    "accounts:share_revoke": Case("kind=dataset pk={dataset.pk}", method="POST", owner=400),  # nobody named
    # User management: platform admins only, 404 to everyone else.
    "accounts:manage_users": Case(owner=404),
    "accounts:manage_invite": Case(owner=404),
    "accounts:manage_user": Case("pk={owner.pk}", owner=404),
    "accounts:manage_user_roles": Case("pk={owner.pk}", method="POST", owner=404),
    "accounts:manage_user_active": Case("pk={owner.pk}", method="POST", owner=404),
    "accounts:manage_user_access": Case("pk={owner.pk}", owner=404),
    # A bad link answers the page's own "invalid link" message, for anyone.
    "accounts:set_password": Case("uidb64=MQ token=bad-token", anonymous=200, stranger=200),
    # --- jobs, audit --------------------------------------------------------------------------
    "jobs:list": Case(stranger=200),
    "jobs:detail": Case("job_id={job.pk}"),
    "jobs:cancel": Case("job_id={job.pk}", method="POST", owner=302),
    "jobs:retry": Case("job_id={job.pk}", method="POST", owner=302),
    "audit:log": Case(stranger=404, owner=404),  # admins and auditors only; others get 404
    "audit:object_history": Case("object_type=catalog.dataset object_id={dataset.pk}"),
    # --- catalog ------------------------------------------------------------------------------
    "catalog:list": Case(stranger=200),
    "catalog:create": Case(stranger=200),
    "catalog:access_inbox": Case(stranger=200),
    # The dataset is organisation-visible, so its requests' existence is public: 403 to outsiders.
    "catalog:access_decide": Case(
        "request_id={access_request.pk}", stranger=403, owner=302, method="POST", form="decision=approve"
    ),
    "catalog:dataset": Case("slug={dataset.slug}"),
    "catalog:version_add": Case("slug={dataset.slug}", method="POST", owner=302),
    "catalog:version_diff": Case("slug={dataset.slug}", query="?a=1&b=2"),
    "catalog:version_download": [
        Case("slug={dataset.slug} number=1"),
        # Its metadata is public; its content needs an approved access request.
        Case("slug={public_secret.slug} number=1", stranger=403),
    ],
    "catalog:follow": Case("slug={dataset.slug}", method="POST", owner=302),
    "catalog:column_update": Case("slug={dataset.slug} column_id={column.pk}", method="POST", owner=302),
    "catalog:access_request": Case("slug={dataset.slug}", method="POST", owner=302),
    # --- lineage ------------------------------------------------------------------------------
    "lineage:dataset": Case("slug={dataset.slug}"),
    "lineage:run": Case("run_uuid={run.run_uuid}"),
    "lineage:model_version": Case("name={model.name} version={version.version}"),
    # --- tracking -----------------------------------------------------------------------------
    "tracking:experiment_list": Case(stranger=200),
    "tracking:compare": Case(query="?runs={run.run_uuid}&runs={other_run.run_uuid}"),
    "tracking:experiment": Case("experiment_id={experiment.pk}"),
    "tracking:experiment_settings": Case("experiment_id={experiment.pk}"),
    "tracking:run": Case(RUN),
    "tracking:run_charts": Case(RUN),
    "tracking:run_artifacts": Case(RUN),
    "tracking:run_artifact_preview": Case(RUN, query="?path=notes.txt"),
    "tracking:run_artifact_raw": Case(RUN, query="?path=notes.txt"),
    # --- registry -----------------------------------------------------------------------------
    "registry:model_list": Case(stranger=200),
    "registry:run_versions": Case("run_uuid={run.run_uuid}"),
    "registry:model": Case("model={model.name}"),
    "registry:model_settings": Case("model={model.name}"),
    "registry:alias_set": Case("model={model.name}", method="POST", owner=400),  # no alias given
    "registry:register_version": Case("model={model.name}"),
    "registry:compare": Case("model={model.name}"),
    "registry:version": Case(VERSION),
    "registry:version_print": Case(VERSION),
    "registry:version_stage": Case(VERSION, method="POST", owner=400),  # no stage given
    "registry:version_delete": Case(VERSION, method="POST", owner=302),
    "registry:slice_import": Case(VERSION, method="POST", owner=400),  # no file given
    "registry:card_section": Case(VERSION + " section=intended_use"),
    "registry:export_markdown": Case(VERSION),
    "registry:export_json": Case(VERSION),
    "registry:export_html": Case(VERSION),
    # --- deployments, serving -------------------------------------------------------------------
    "deployments:index": Case(anonymous=302, stranger=302, owner=302),  # a redirect to the request list
    "deployments:request_list": Case(stranger=200),
    "deployments:request_new": Case(stranger=200),
    "deployments:request": Case("pk={deployment_request.pk}"),
    "deployments:request_decide": Case("pk={deployment_request.pk}", method="POST", owner=400),  # no decision
    "deployments:request_withdraw": Case("pk={deployment_request.pk}", method="POST", owner=302),
    "deployments:request_submit": Case("pk={deployment_request.pk}", method="POST", owner=302),
    "deployments:request_deploy": Case("pk={deployment_request.pk}", method="POST", owner=302),
    "deployments:request_rerun_checks": Case("pk={deployment_request.pk}", method="POST", owner=302),
    "deployments:inbox": Case(stranger=200),
    "deployments:endpoint_list": Case(stranger=200),
    "deployments:endpoint": Case("name={endpoint.name}"),
    "deployments:endpoint_rollback": Case("name={endpoint.name}", method="POST", owner=302),
    "deployments:endpoint_retire": Case("name={endpoint.name}", method="POST", owner=302),
    "deployments:environment_list": Case(stranger=200),
    "deployments:environment_edit": Case("name={environment.name}", stranger=403, owner=403),
    # A caller who may not see the endpoint gets 404, as for a name that never existed.
    "serving:invocations": Case(
        "endpoint={endpoint.name}", 401, 404, method="POST", body='{{"inputs": [[1.0]]}}', token=True
    ),
    "serving:ping": Case("endpoint={endpoint.name}", 401, 404, token=True),
    # --- monitoring ---------------------------------------------------------------------------
    "monitoring:ops": Case(stranger=200),
    "monitoring:health_fragment": Case(stranger=200),
    "monitoring:home_widget": Case(stranger=200),
    "monitoring:endpoint": Case("name={endpoint.name}"),
    "monitoring:endpoint_fragment": Case("name={endpoint.name}"),
    "monitoring:endpoint_settings": Case("name={endpoint.name}"),
    "monitoring:drift_report": Case("name={endpoint.name} report_id={drift_report.pk}"),
    # Prometheus scrape: off (404) unless METRICS_TOKEN or METRICS_ALLOWED_NETWORKS is set; its
    # own bearer token, not a user's (tests/monitoring cover the configured cases).
    "metrics": Case(anonymous=404, stranger=404, owner=404),
    # --- alerting -----------------------------------------------------------------------------
    "alerting:alert_list": Case(stranger=200),
    "alerting:alert": Case("pk={alert.pk}"),
    "alerting:alert_acknowledge": Case("pk={alert.pk}", method="POST", owner=302),
    "alerting:alert_resolve": Case("pk={alert.pk}", method="POST", owner=302),
    "alerting:rule_list": Case(stranger=200),
    "alerting:rule_new": Case(owner=404),  # operations and admins only
    "alerting:rule_edit": Case("pk={alert_rule.pk}"),
    "alerting:silence_list": Case(stranger=200),
    "alerting:silence_end": Case("pk={silence.pk}", method="POST", owner=302),
    "alerting:channel_list": Case(stranger=200),
    "alerting:open_alerts_fragment": Case(stranger=200),
    "alerting:endpoint_alerts_fragment": Case("name={endpoint.name}"),
    "alerting:home_widget": Case(stranger=200),
    # --- value (use cases) ----------------------------------------------------------------------
    "value:portfolio": Case(stranger=200),
    "value:portfolio_csv": Case(stranger=200),
    "value:portfolio_print": Case(stranger=200),
    "value:home_widget": Case(stranger=200),
    "value:use_case_new": Case(stranger=403, owner=403),  # business owners and admins only
    # Everyone may read the compute rates; only platform admins set them.
    "value:compute_rates": [Case(stranger=200), Case(stranger=403, owner=403, method="POST")],
    "value:import_template": Case("kind=costs", stranger=200),
    "value:use_case": Case("slug={use_case.slug}"),
    "value:use_case_edit": Case("slug={use_case.slug}"),
    "value:use_case_stage": Case("slug={use_case.slug}", method="POST", owner=400),
    "value:use_case_links": Case("slug={use_case.slug}", method="POST", owner=302),
    "value:cost_add": Case("slug={use_case.slug}", method="POST", owner=400),
    "value:value_add": Case("slug={use_case.slug}", method="POST", owner=400),
    "value:entry_delete": Case("slug={use_case.slug} kind=costs pk={cost.pk}", method="POST", owner=302),
    "value:entries_import": Case("slug={use_case.slug} kind=costs", method="POST", owner=400),
    # --- MLflow APIs (plain views; 401 JSON when anonymous, 404 JSON for what one may not see) ---
    "mlflow-api": [
        Case("endpoint=experiments/get", MLFLOW_ANON, query="?experiment_id={experiment.pk}"),
        Case("endpoint=runs/get", MLFLOW_ANON, query="?run_id={run.run_uuid}"),
        Case("endpoint=registered-models/get", MLFLOW_ANON, query="?name={model.name}"),
        Case("endpoint=model-versions/get", MLFLOW_ANON, query="?name={model.name}&version={version.version}"),
        # MLflow's own semantics: searching an experiment one may not see finds nothing (200, no
        # runs; tests/security/test_hardening.py checks the body).
        Case("endpoint=runs/search", MLFLOW_ANON, 200, method="POST", body='{{"experiment_ids": ["{experiment.pk}"]}}'),
    ],
    "mlflow-ajax-api": Case("endpoint=runs/get", MLFLOW_ANON, query="?run_id={run.run_uuid}"),
    "mlflow-server-info": Case(anonymous=200, stranger=200),
    "mlflow-api-3": Case("endpoint=runs/get", MLFLOW_ANON, query="?run_id={run.run_uuid}"),
    "mlflow-artifacts-list": Case(anonymous=MLFLOW_ANON, query="?path={experiment.pk}"),
    "mlflow-artifacts": Case("path={artifact_root}/notes.txt", MLFLOW_ANON),
    # --- /api/v1 (DRF: 401 JSON when anonymous) ---------------------------------------------------
    "api:me": Case(anonymous=401, stranger=200),
    "api:token-list": Case(anonymous=401, stranger=200),
    "api:token-detail": Case("pk={token.pk}", 401),
    "api:token-revoke": Case("pk={token.pk}", 401, method="POST"),
    "api:team-list": Case(anonymous=401, stranger=200),
    "api:team-detail": Case("slug={team.slug}", 401, stranger=200),
    "api:job-list": Case(anonymous=401, stranger=200),
    "api:job-detail": Case("pk={job.pk}", 401),
    "api:job-cancel": Case("pk={job.pk}", 401, method="POST"),
    "api:job-retry": Case("pk={job.pk}", 401, method="POST", owner=403),  # operations retry jobs
    "api:audit-event-list": Case(anonymous=401, stranger=200),
    "api:audit-event-detail": Case("sequence=1", 401, owner=404),  # admins and auditors only
    "api:dataset-list": Case(anonymous=401, stranger=200),
    "api:dataset-detail": Case("slug={dataset.slug}", 401),
    "api:dataset-diff": Case("slug={dataset.slug}", 401, query="?a=1&b=2"),
    "api:dataset-profile": Case("slug={dataset.slug}", 401),
    "api:dataset-request-access": Case(
        "slug={dataset.slug}", 401, owner=400, method="POST", body='{{"purpose": "study"}}'
    ),  # an owner has access already
    "api:dataset-sample": [
        Case("slug={dataset.slug}", 401),
        Case("slug={public_secret.slug}", 401, stranger=403),
    ],
    "api:dataset-versions": Case("slug={dataset.slug}", 401),
    "api:access-request-list": Case(anonymous=401, stranger=200),
    "api:access-request-detail": Case("pk={access_request.pk}", 401),
    "api:access-request-decide": Case("pk={access_request.pk}", 401, method="POST", body='{{"approve": true}}'),
    "api:api-root": Case(anonymous=401, stranger=200),
    "api:monitoring-endpoint": Case("name={endpoint.name}", 401),
    "api:monitoring-drift-reports": Case("name={endpoint.name}", 401),
    "api:monitoring-drift-report": Case("name={endpoint.name} report_id={drift_report.pk}", 401),
    "api:monitoring-outcomes": Case(
        "name={endpoint.name}", 401, owner=400, method="POST", body='{{"outcomes": []}}'
    ),  # an empty batch
    "api:alert-list": Case(anonymous=401, stranger=200),
    "api:alert-detail": Case("pk={alert.pk}", 401),
    "api:alert-acknowledge": Case("pk={alert.pk}", 401, method="POST", body="{{}}"),
    "api:alert-resolve": Case("pk={alert.pk}", 401, method="POST", body="{{}}"),
    "api:use-case-list": Case(anonymous=401, stranger=200),
    "api:use-case-detail": Case("slug={use_case.slug}", 401),
    "api:use-case-costs": Case("slug={use_case.slug}", 401),
    "api:use-case-values": Case("slug={use_case.slug}", 401),
    "api:lineage-ingest": Case(anonymous=401, stranger=400, owner=400, method="POST", body="{{}}"),
    "api:lineage-dataset": Case("slug={dataset.slug}", 401),
    "api:lineage-run": Case("run_uuid={run.run_uuid}", 401),
    "api:lineage-model-version": Case("name={model.name} version={version.version}", 401),
    "api:model-card": Case("name={model.name} version={version.version}", 401),
    "api:model-card-markdown": Case("name={model.name} version={version.version}", 401),
    "api:model-card-html": Case("name={model.name} version={version.version}", 401),
    # The JSON 404 for any other path under /api/v1/ (unnamed pattern, keyed by its text).
    "api/v1/^[\\s\\S]*$": Case(anonymous=404, stranger=404, owner=404),
    # The API's description is documentation, not data: public like any API reference.
    "api-schema": Case(anonymous=200, stranger=200),
    "api-docs": Case(anonymous=200, stranger=200),
}


# --- walking the URLconf ------------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    key: str  # the name, namespaced; the full pattern text for an unnamed pattern
    pattern: str
    has_format_suffix: bool


def _walk(patterns, prefix: str = "", namespace: str = ""):
    for entry in patterns:
        if isinstance(entry, URLResolver):
            inner = ":".join(filter(None, [namespace, entry.namespace])) if entry.namespace else namespace
            yield from _walk(entry.url_patterns, prefix + str(entry.pattern), inner)
        elif isinstance(entry, URLPattern):
            text = prefix + str(entry.pattern)
            key = ":".join(filter(None, [namespace, entry.name])) if entry.name else text
            yield key, text


def all_routes() -> list[Route]:
    """Every pattern of the URLconf (includes followed), grouped by key, skips left out."""
    found: dict[str, list[str]] = {}
    for key, text in _walk(get_resolver().url_patterns):
        if any(text.startswith(prefix) for prefix in SKIPPED_PREFIXES):
            continue
        found.setdefault(key, []).append(text)
    return [
        Route(key, texts[0], any("<format>" in t or "<drf_format_suffix:format>" in t for t in texts))
        for key, texts in found.items()
    ]


def _cases() -> list[tuple[str, int, Case, bool]]:
    out = []
    routes = {route.key: route for route in all_routes()}
    for key, entry in ROUTES.items():
        cases = entry if isinstance(entry, list) else [entry]
        suffix = routes[key].has_format_suffix if key in routes else False
        for index, case in enumerate(cases):
            out.append((key, index, case, False))
            if suffix:
                out.append((key, index, case, True))
    return out


def test_every_route_has_an_expectation():
    missing = [route for route in all_routes() if route.key not in ROUTES]
    assert not missing, (
        "These routes have no entry in ROUTES of tests/security/test_url_matrix.py, so nobody "
        "checked who may call them. Add one line each (see the module docstring), e.g. "
        '"app:name": Case("slug={dataset.slug}", LOGIN, 404, 200):\n'
        + "\n".join(f"  {route.key!r}  ({route.pattern})" for route in missing)
    )


def test_every_expectation_names_a_route():
    known = {route.key for route in all_routes()}
    stale = sorted(set(ROUTES) - known)
    assert not stale, f"ROUTES has entries for routes that no longer exist; remove them: {stale}"


def _url(key: str, case: Case, world, with_format: bool) -> str:
    values = vars(world)
    kwargs = dict(pair.split("=", 1) for pair in case.kwargs.split())
    kwargs = {name: value.format(**values) for name, value in kwargs.items()}
    if with_format:
        kwargs["format"] = "json"
    if key.startswith("api/v1/"):
        path = "/api/v1/no-such-thing/"
    else:
        path = reverse(key, kwargs=kwargs)
    return path + case.query.format(**values)


def _is_login_redirect(response) -> bool:
    return response.status_code == 302 and response["Location"].startswith(reverse(settings.LOGIN_URL))


CASES = _cases()


@pytest.mark.django_db
@pytest.mark.usefixtures("world")
class TestEveryRoute:
    @pytest.mark.parametrize("role", ["anonymous", "stranger", "owner"])
    @pytest.mark.parametrize(
        ("key", "index", "case", "with_format"),
        CASES,
        ids=[f"{key}[{index}]{'.json' if fmt else ''}" for key, index, case, fmt in CASES],
    )
    def test_answers_as_the_table_says(self, world, client_as, role, key, index, case, with_format):
        client = client_as(role)
        url = _url(key, case, world, with_format)
        send = getattr(client, case.method.lower())
        if case.token:
            client = Client()  # no session: the token alone
            send = getattr(client, case.method.lower())
            if role != "anonymous":
                send = partial(send, HTTP_AUTHORIZATION=f"Bearer {world.secrets[role]}")
        if case.form:
            response = send(url, data=dict(pair.split("=", 1) for pair in case.form.split()))
        elif case.body is not None:
            body = case.body.format(**vars(world))
            json.loads(body)  # the table's own typo shows here, not as a server answer
            response = send(url, data=body, content_type="application/json")
        else:
            response = send(url)
        expected = getattr(case, role)
        if expected == LOGIN:
            assert _is_login_redirect(response), (
                f"{case.method} {url} as {role}: expected a redirect to the login page, got "
                f"{response.status_code} {response.get('Location', '')}"
            )
        else:
            assert response.status_code == expected, (
                f"{case.method} {url} as {role}: expected {expected}, got {response.status_code}"
            )
