"""Security hardening: CSRF on forms and htmx, sessions and passwords, safe downloads, paths
that cannot leave their roots, sanitized Markdown on every page that renders it, and request
budgets on the token-authenticated APIs."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from apps.core.markdown import render_markdown

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_FILES = sorted([*ROOT.glob("apps/*/templates/**/*.html"), *ROOT.glob("templates/**/*.html")])
RUN_PAGE = "tracking:run_artifact_raw"


# --- CSRF -------------------------------------------------------------------------------------


def test_every_post_form_in_the_templates_carries_the_csrf_token():
    missing = []
    for path in TEMPLATE_FILES:
        text = path.read_text()
        for match in re.finditer(r"<form\b[^>]*>", text, re.IGNORECASE):
            if not re.search(r"method\s*=\s*[\"']?post", match.group(0), re.IGNORECASE):
                continue
            body = text[match.end() : text.find("</form>", match.end())]
            if "csrf_token" not in body:
                missing.append(f"{path.relative_to(ROOT)}: {match.group(0)[:80]}")
    assert not missing, "POST forms without {% csrf_token %}:\n" + "\n".join(missing)


def test_htmx_requests_send_the_csrf_token_header():
    base = (ROOT / "templates/base.html").read_text()
    script = (ROOT / "static/js/causeway.js").read_text()
    assert 'name="csrf-token"' in base and "js/causeway.js" in base
    assert "htmx:configRequest" in script and '"X-CSRFToken"' in script


def _csrf_exempt_views():
    def walk(patterns, prefix=""):
        for entry in patterns:
            if isinstance(entry, URLResolver):
                yield from walk(entry.url_patterns, prefix + str(entry.pattern))
            elif isinstance(entry, URLPattern) and getattr(entry.callback, "csrf_exempt", False):
                yield prefix + str(entry.pattern), entry.callback

    return list(walk(get_resolver().url_patterns))


# Views that skip Django's CSRF middleware, each with why that is safe.
CSRF_EXEMPT_ALLOWED = {
    # DRF's APIView: SessionAuthentication enforces CSRF itself; tokens are not ambient credentials.
    "rest_framework",
    "drf_spectacular",
    # The MLflow APIs check CSRF themselves for session callers (mlflow_api._identify).
    "apps.tracking.mlflow_api",
    "apps.tracking.artifacts_api",
    # Scoring endpoints: personal access tokens only, no session.
    "apps.deployments.serving.views",
    # The JSON 404 for unknown /api/v1/ paths: changes nothing.
    "apps.core.api",
}


def test_only_api_views_that_check_csrf_themselves_are_exempt():
    from rest_framework.authentication import SessionAuthentication
    from rest_framework.views import APIView

    unexpected = []
    for pattern, callback in _csrf_exempt_views():
        view_class = getattr(callback, "cls", None)
        module = (view_class or callback).__module__
        if pattern.startswith("admin/"):
            continue
        if view_class is not None and issubclass(view_class, APIView):
            # DRF checks CSRF for session callers, unless a view swaps in a session class that does not.
            weak = [
                auth
                for auth in view_class.authentication_classes
                if issubclass(auth, SessionAuthentication)
                and auth.enforce_csrf is not SessionAuthentication.enforce_csrf
            ]
            if not weak:
                continue
        if not any(module == allowed or module.startswith(allowed + ".") for allowed in CSRF_EXEMPT_ALLOWED):
            unexpected.append(f"{pattern} ({module})")
    assert not unexpected, f"csrf_exempt views outside the allowed list: {unexpected}"


@pytest.mark.django_db
@pytest.mark.usefixtures("world")
class TestCsrf:
    def _client(self, world) -> Client:
        client = Client(enforce_csrf_checks=True)
        client.force_login(world.owner)
        return client

    def test_a_form_post_without_the_token_is_refused(self, world):
        response = self._client(world).post(reverse("catalog:follow", kwargs={"slug": world.dataset.slug}))
        assert response.status_code == 403

    def test_an_htmx_post_with_the_token_header_is_accepted(self, world):
        client = self._client(world)
        client.get(reverse("catalog:dataset", kwargs={"slug": world.dataset.slug}))  # sets the cookie
        token = client.cookies[settings.CSRF_COOKIE_NAME].value
        response = client.post(
            reverse("catalog:follow", kwargs={"slug": world.dataset.slug}),
            {"follow": "1"},
            HTTP_X_CSRFTOKEN=token,
            HTTP_HX_REQUEST="true",
        )
        assert response.status_code == 302

    def test_the_rest_api_refuses_a_session_post_without_the_token(self, world):
        response = self._client(world).post("/api/v1/tokens/", {"name": "x"}, content_type="application/json")
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "permission_denied"

    def test_the_mlflow_api_refuses_a_session_post_without_the_token(self, world):
        response = self._client(world).post(
            "/api/2.0/mlflow/experiments/create", json.dumps({"name": "x"}), content_type="application/json"
        )
        assert response.status_code == 403


# --- sessions and passwords ------------------------------------------------------------------------


def test_sessions_expire_within_twelve_hours_and_their_cookie_is_out_of_reach_of_scripts():
    assert 0 < settings.SESSION_COOKIE_AGE <= 12 * 3600
    assert settings.SESSION_COOKIE_HTTPONLY is True
    assert settings.SESSION_COOKIE_SAMESITE in {"Lax", "Strict"}


@pytest.mark.parametrize("password", ["short-1", "password1234", "123456789012", "owner-sec-2024"])
def test_the_password_policy_refuses_weak_passwords(password):
    from apps.accounts.models import User

    with pytest.raises(ValidationError):
        validate_password(password, user=User(username="owner-sec", email="owner-sec@example.test"))


def test_the_password_policy_accepts_a_long_uncommon_password():
    validate_password("plum-harbour-violin-72")


@pytest.mark.django_db
@pytest.mark.usefixtures("world")
class TestPasswordChange:
    def test_the_password_change_form_applies_the_policy(self, world, client_as):
        response = client_as("owner").post(
            reverse("password_change"),
            {"old_password": "a-long-test-password-42", "new_password1": "abc12345", "new_password2": "abc12345"},
        )
        assert response.status_code == 200
        world.owner.refresh_from_db()
        assert world.owner.check_password("a-long-test-password-42")


# --- downloads ---------------------------------------------------------------------------------


def _save_artifact(world, name: str, content: bytes) -> None:
    from apps.tracking import artifacts

    artifacts.save_stream(artifacts.join(world.artifact_root, name), [content])


def _raw(client, world, path: str, **query):
    url = reverse(RUN_PAGE, kwargs={"experiment_id": world.experiment.pk, "run_uuid": world.run.run_uuid})
    return client.get(url, {"path": path, **query})


def _assert_safe_attachment(response) -> None:
    assert response.status_code == 200
    assert response["Content-Type"] == "application/octet-stream"
    assert response["Content-Disposition"].startswith("attachment")
    assert response["X-Content-Type-Options"] == "nosniff"


@pytest.mark.django_db
@pytest.mark.usefixtures("world")
class TestDownloads:
    def test_a_dataset_version_downloads_as_an_attachment_never_sniffed(self, world, client_as):
        url = reverse("catalog:version_download", kwargs={"slug": world.dataset.slug, "number": 1})
        _assert_safe_attachment(client_as("owner").get(url))

    @pytest.mark.parametrize("name", ["page.html", "drawing.svg", "notes.txt", "script.js"])
    def test_an_artifact_that_a_browser_could_run_downloads_as_an_attachment(self, world, client_as, name):
        _save_artifact(world, name, b"<script>alert(1)</script>")
        _assert_safe_attachment(_raw(client_as("owner"), world, name))

    def test_a_raster_image_artifact_is_shown_inline_with_its_own_type_never_sniffed(self, world, client_as):
        _save_artifact(world, "plot.png", b"\x89PNG\r\n\x1a\n")
        response = _raw(client_as("owner"), world, "plot.png")
        assert response["Content-Type"] == "image/png"
        assert response["X-Content-Type-Options"] == "nosniff"
        assert not response["Content-Disposition"].startswith("attachment")

    def test_the_mlflow_artifact_proxy_downloads_as_an_attachment(self, world, client_as):
        _save_artifact(world, "page.html", b"<html><script>alert(1)</script></html>")
        response = client_as("owner").get(f"/api/2.0/mlflow-artifacts/artifacts/{world.artifact_root}/page.html")
        _assert_safe_attachment(response)

    def test_the_model_card_html_export_downloads_as_an_attachment(self, world, client_as):
        url = reverse("registry:export_html", kwargs={"model": world.model.name, "version": world.version.version})
        response = client_as("owner").get(url)
        assert response["Content-Disposition"].startswith("attachment")
        assert response["X-Content-Type-Options"] == "nosniff"


# --- paths ---------------------------------------------------------------------------------------

TRAVERSALS = ["../../../../etc/passwd", "/etc/passwd", "..\\..\\secret", "a/../../b", "notes.txt\x00.png"]


@pytest.mark.django_db
@pytest.mark.usefixtures("world")
class TestPaths:
    @pytest.mark.parametrize("path", TRAVERSALS)
    def test_the_artifact_browser_refuses_paths_outside_the_run(self, world, client_as, path):
        assert _raw(client_as("owner"), world, path).status_code == 404

    @pytest.mark.parametrize("path", ["%2e%2e/%2e%2e/etc/passwd", "..%2f..%2fetc%2fpasswd", "x/%2e%2e/%2e%2e/y"])
    def test_the_mlflow_artifact_proxy_refuses_encoded_traversal(self, world, client_as, path):
        response = client_as("owner").get(f"/api/2.0/mlflow-artifacts/artifacts/{world.artifact_root}/{path}")
        assert response.status_code in (400, 404)
        assert b"root:" not in response.content

    @pytest.mark.parametrize("path", ["..", "../1", "/etc"])
    def test_the_mlflow_artifact_listing_refuses_paths_outside_the_store(self, world, client_as, path):
        response = client_as("owner").get("/api/2.0/mlflow-artifacts/artifacts", {"path": path})
        assert response.status_code == 400


@pytest.fixture
def data_root(settings, tmp_path):
    root = tmp_path / "data"
    root.mkdir()
    (root / "ok.csv").write_text("a\n1\n")
    (tmp_path / "outside.csv").write_text("secret\n1\n")
    (root / "link.csv").symlink_to(tmp_path / "outside.csv")
    settings.CATALOG_DATA_ROOT = root
    return root


@pytest.mark.parametrize(
    "path", ["../outside.csv", "link.csv", "/etc/passwd", "ok.csv\x00", "", "sub/../../outside.csv"]
)
def test_a_server_path_outside_the_data_root_is_refused(data_root, path):
    from apps.catalog.services import resolve_server_path

    with pytest.raises(ValidationError):
        resolve_server_path(path)


def test_a_server_path_inside_the_data_root_is_accepted(data_root):
    from apps.catalog.services import resolve_server_path

    assert resolve_server_path("ok.csv") == (data_root / "ok.csv").resolve()
    assert resolve_server_path(str(data_root / "ok.csv")) == (data_root / "ok.csv").resolve()


@pytest.mark.django_db
def test_profiling_never_opens_a_recorded_path_outside_the_data_root(data_root, users):
    """A version's recorded path is checked again when the job runs (an external URI, say from
    OpenLineage, or a data root that moved), so no file outside the root is read."""
    from apps.catalog import services as catalog
    from apps.catalog.models import DatasetVersion
    from apps.catalog.tasks import source_path

    dataset = catalog.create_dataset(by=users["scientist"], name="Leaky")
    version = DatasetVersion.objects.create(
        dataset=dataset, number=1, format="csv", source_uri=str(data_root.parent / "outside.csv")
    )
    with pytest.raises(ValidationError, match="data root"):
        source_path(version)


@pytest.mark.django_db
def test_an_external_version_cannot_be_profiled_as_a_server_file(users):
    from apps.catalog import services as catalog
    from apps.catalog.models import DatasetVersion

    dataset = catalog.create_dataset(by=users["scientist"], name="From a pipeline")
    version = catalog.add_external_version(dataset=dataset, by=users["scientist"], uri="/etc/passwd")
    assert version.status == DatasetVersion.Status.EXTERNAL
    with pytest.raises(ValidationError):
        catalog.request_profile(version=version, by=users["scientist"])


# --- Markdown ------------------------------------------------------------------------------------

XSS = (
    "Hello **there**\n\n"
    "<script>xss_marker('script')</script>\n\n"
    "[click](javascript:xss_marker('link'))\n\n"
    "[click2](JaVaScRiPt:xss_marker('link2'))\n\n"
    '<img src="x" onerror="xss_marker(\'img\')">\n\n'
    '<a href="#" onclick="xss_marker(\'a\')">a</a>\n\n'
    "<svg onload=\"xss_marker('svg')\"></svg><iframe src=\"javascript:xss_marker('iframe')\"></iframe>\n\n"
    "![p](data:text/html;base64,PHNjcmlwdD54c3NfbWFya2VyKCk8L3NjcmlwdD4=)"
)


class _UnsafeFinder(HTMLParser):
    """Collects markup that would run the marker: script text, on* handlers, javascript:/data: URLs."""

    def __init__(self):
        super().__init__()
        self.found: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        self._in_script = tag == "script"
        if tag in {"iframe", "svg", "object", "embed"}:
            self.found.append(f"<{tag}>")
        for name, value in attrs:
            value = (value or "").strip().lower()
            if name.startswith("on") and "xss_marker" in value:
                self.found.append(f"{tag} {name}")
            if name in {"href", "src", "action", "formaction"} and value.startswith(("javascript:", "data:text")):
                self.found.append(f"{tag} {name}={value[:30]}")

    def handle_endtag(self, tag):
        self._in_script = False

    def handle_data(self, data):
        if self._in_script and "xss_marker" in data:
            self.found.append("<script>")


def unsafe_markup(html: str) -> list[str]:
    finder = _UnsafeFinder()
    finder.feed(html)
    return finder.found


def test_markdown_rendering_removes_scripts_handlers_and_script_urls():
    html = str(render_markdown(XSS))
    assert "<strong>there</strong>" in html
    assert unsafe_markup(html) == []


@pytest.mark.django_db
@pytest.mark.usefixtures("world")
class TestMarkdownPages:
    """Every page that renders a Markdown field, with the field set to a hostile text."""

    def test_the_dataset_page_and_catalog_list(self, world, client_as):
        type(world.dataset).objects.filter(pk=world.dataset.pk).update(description=XSS)
        for url in (reverse("catalog:dataset", kwargs={"slug": world.dataset.slug}), reverse("catalog:list")):
            assert unsafe_markup(client_as("owner").get(url).content.decode()) == [], url

    def test_the_experiment_pages(self, world, client_as):
        type(world.experiment).objects.filter(pk=world.experiment.pk).update(description=XSS)
        for url in (
            reverse("tracking:experiment", kwargs={"experiment_id": world.experiment.pk}),
            reverse("tracking:experiment_list"),
        ):
            assert unsafe_markup(client_as("owner").get(url).content.decode()) == [], url

    def test_the_model_and_version_pages_and_model_card_exports(self, world, client_as):
        type(world.model).objects.filter(pk=world.model.pk).update(description=XSS)
        type(world.version).objects.filter(pk=world.version.pk).update(description=XSS)
        card = world.version.card
        card.ethical_considerations = XSS
        card.intended_use = {**(card.intended_use or {}), "primary_uses": XSS}
        card.save()
        kwargs = {"model": world.model.name, "version": world.version.version}
        urls = [
            reverse("registry:model", kwargs={"model": world.model.name}),
            reverse("registry:model_list"),
            reverse("registry:version", kwargs=kwargs),
            reverse("registry:version_print", kwargs=kwargs),
            reverse("registry:export_html", kwargs=kwargs),
            reverse("api:model-card-html", kwargs={"name": world.model.name, "version": world.version.version}),
        ]
        for url in urls:
            response = client_as("owner").get(url)
            assert response.status_code == 200, url
            assert unsafe_markup(response.content.decode()) == [], url

    def test_the_use_case_page_and_portfolio(self, world, client_as):
        type(world.use_case).objects.filter(pk=world.use_case.pk).update(
            description=XSS, risks=XSS, value_assumptions=XSS
        )
        for url in (reverse("value:use_case", kwargs={"slug": world.use_case.slug}), reverse("value:portfolio")):
            response = client_as("owner").get(url)
            assert response.status_code == 200, url
            assert unsafe_markup(response.content.decode()) == [], url

    def test_a_markdown_artifact_preview(self, world, client_as):
        _save_artifact(world, "README.md", XSS.encode())
        url = reverse(
            "tracking:run_artifact_preview",
            kwargs={"experiment_id": world.experiment.pk, "run_uuid": world.run.run_uuid},
        )
        response = client_as("owner").get(url, {"path": "README.md"})
        assert response.status_code == 200
        assert "<strong>there</strong>" in response.content.decode()
        assert unsafe_markup(response.content.decode()) == []

    def test_a_metric_name_cannot_break_out_of_the_chart_json(self, world, client_as):
        from apps.tracking.models import LatestMetric, Metric

        key = "</script><script>xss_marker('metric')</script>"
        Metric.objects.create(run=world.run, key=key, value=1.0, timestamp=1, step=0)
        LatestMetric.objects.create(
            run=world.run, experiment_id=world.experiment.pk, key=key, value=1.0, timestamp=1, step=0
        )
        url = reverse(
            "tracking:run_charts", kwargs={"experiment_id": world.experiment.pk, "run_uuid": world.run.run_uuid}
        )
        html = client_as("owner").get(url).content.decode()
        assert "</script><script>xss_marker" not in html


# --- request budgets -------------------------------------------------------------------------------


@pytest.fixture
def own_cache(settings):
    """A cache of this test's own: budgets are counted there (CI's Redis is shared by workers)."""
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "budget"}}
    from django.core.cache import cache

    cache.clear()


@pytest.mark.django_db
@pytest.mark.usefixtures("world", "own_cache")
class TestRequestBudgets:
    def _bearer(self, world, role):
        return {"HTTP_AUTHORIZATION": f"Bearer {world.secrets[role]}"}

    def test_the_rest_api_answers_429_json_with_retry_after_past_the_budget(self, world, settings):
        settings.API_RATE_LIMIT = "3/minute"
        client = Client()
        statuses = [client.get("/api/v1/me", **self._bearer(world, "owner")).status_code for _ in range(4)]
        assert statuses == [200, 200, 200, 429]
        response = client.get("/api/v1/me", **self._bearer(world, "owner"))
        assert response.json()["error"]["code"] == "throttled"
        assert 1 <= int(response["Retry-After"]) <= 60

    def test_each_user_has_a_budget_of_their_own(self, world, settings):
        settings.API_RATE_LIMIT = "2/minute"
        client = Client()
        for _ in range(3):
            client.get("/api/v1/me", **self._bearer(world, "owner"))
        assert client.get("/api/v1/me", **self._bearer(world, "stranger")).status_code == 200

    def test_the_mlflow_api_answers_429_request_limit_exceeded_past_the_budget(self, world, settings):
        settings.MLFLOW_API_RATE_LIMIT = "2/minute"
        client = Client()
        url = f"/api/2.0/mlflow/runs/get?run_id={world.run.run_uuid}"
        statuses = [client.get(url, **self._bearer(world, "owner")).status_code for _ in range(3)]
        assert statuses == [200, 200, 429]
        response = client.get(url, **self._bearer(world, "owner"))
        assert response.json()["error_code"] == "REQUEST_LIMIT_EXCEEDED"
        assert int(response["Retry-After"]) >= 1

    def test_the_mlflow_artifact_proxy_shares_the_mlflow_budget(self, world, settings):
        settings.MLFLOW_API_RATE_LIMIT = "1/minute"
        client = Client()
        client.get(f"/api/2.0/mlflow/runs/get?run_id={world.run.run_uuid}", **self._bearer(world, "owner"))
        response = client.get(
            f"/api/2.0/mlflow-artifacts/artifacts/{world.artifact_root}/notes.txt", **self._bearer(world, "owner")
        )
        assert response.status_code == 429

    def test_a_budget_of_zero_turns_the_limit_off(self, world, settings):
        settings.MLFLOW_API_RATE_LIMIT = "0"
        client = Client()
        url = f"/api/2.0/mlflow/runs/get?run_id={world.run.run_uuid}"
        assert {client.get(url, **self._bearer(world, "owner")).status_code for _ in range(5)} == {200}

    def test_the_budget_check_costs_no_database_query(self, world, settings, django_assert_num_queries):
        settings.MLFLOW_API_RATE_LIMIT = "0"
        client = Client()
        url = f"/api/2.0/mlflow/runs/get?run_id={world.run.run_uuid}"
        client.get(url, **self._bearer(world, "owner"))
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        with CaptureQueriesContext(connection) as unlimited:
            client.get(url, **self._bearer(world, "owner"))
        settings.MLFLOW_API_RATE_LIMIT = "1000/minute"
        with django_assert_num_queries(len(unlimited.captured_queries)):
            client.get(url, **self._bearer(world, "owner"))


def test_a_budget_window_resets_after_its_period(monkeypatch, settings):
    from apps.core import ratelimit

    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "window"}}
    now = [1_000_040.0]  # 20 s into a minute window
    monkeypatch.setattr(ratelimit.time, "time", lambda: now[0])
    assert [ratelimit.hit("k", "2/minute") for _ in range(3)] == [None, None, 40]
    now[0] += 40
    assert ratelimit.hit("k", "2/minute") is None


@pytest.mark.parametrize("rate", ["ten/minute", "5/fortnight", "5"])
def test_a_malformed_rate_is_refused(rate):
    from apps.core import ratelimit

    with pytest.raises(ValueError):
        ratelimit.parse_rate(rate)


# --- search over what one may not see ----------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.usefixtures("world")
class TestMlflowSearch:
    def test_searching_an_experiment_one_may_not_see_finds_nothing(self, world, client_as):
        response = client_as("stranger").post(
            "/api/2.0/mlflow/runs/search",
            json.dumps({"experiment_ids": [str(world.experiment.pk)]}),
            content_type="application/json",
        )
        assert response.status_code == 200
        assert response.json().get("runs", []) == []


# --- headers -----------------------------------------------------------------------------------------


def test_the_content_security_policy_allows_no_inline_or_evaluated_script():
    script_src = settings.CONTENT_SECURITY_POLICY["DIRECTIVES"]["script-src"]
    assert "'unsafe-inline'" not in script_src and "'unsafe-eval'" not in script_src
    assert settings.CONTENT_SECURITY_POLICY["DIRECTIVES"]["object-src"] == ["'none'"]
    assert settings.CONTENT_SECURITY_POLICY["DIRECTIVES"]["frame-ancestors"] == ["'none'"]


@pytest.mark.django_db
def test_api_answers_carry_the_security_headers(client):
    response = client.get("/api/v1/me")
    assert response.status_code == 401
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["X-Frame-Options"] == "DENY"
    assert response["Referrer-Policy"] == "same-origin"


@pytest.mark.django_db
@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/", "/\\evil.example/"])
def test_signing_in_never_redirects_off_site(client, users, target):
    from tests.conftest import PASSWORD

    response = client.post(f"/login/?next={target}", {"username": "scientist", "password": PASSWORD})
    assert response.status_code == 302
    assert "evil.example" not in response["Location"]
