"""Every page of the shell renders for every role; anonymous visitors are sent to sign in."""

import pytest

from apps.accounts import services

pytestmark = pytest.mark.django_db

ROLES = ["scientist", "engineer", "approver", "ops", "owner", "admin", "nobody"]


@pytest.fixture
def team(users):
    return services.create_team(name="Risk Analytics", by=users["admin"], lead=users["engineer"])


def shell_urls(team):
    return [
        "/",
        "/jobs/",
        "/accounts/teams/",
        f"/accounts/teams/{team.slug}/",
        "/accounts/me/",
        "/password/",
        "/api/docs/",
    ]


@pytest.mark.parametrize("role", ROLES)
def test_every_shell_page_renders_for_every_role(users, client, team, role):
    client.force_login(users[role])
    for url in shell_urls(team):
        response = client.get(url)
        assert response.status_code == 200, url


@pytest.mark.parametrize(
    ("role", "expected", "hidden"),
    [
        ("scientist", {"Catalog", "Jobs", "Teams"}, {"Audit"}),
        ("approver", {"Catalog", "Jobs", "Teams", "Audit"}, set()),
        ("admin", {"Catalog", "Jobs", "Teams", "Audit"}, set()),
        ("ops", {"Jobs", "Teams"}, {"Audit", "Catalog"}),
    ],
)
def test_navigation_shows_each_role_what_it_uses(users, client, role, expected, hidden):
    client.force_login(users[role])
    labels = {item["label"] for item in client.get("/").context["nav_items"]}
    assert expected <= labels
    assert not (hidden & labels)


@pytest.mark.parametrize("role", ["scientist", "engineer", "approver", "ops", "owner", "admin"])
def test_home_page_has_a_section_for_the_users_role(users, client, role):
    client.force_login(users[role])
    assert f'data-role-home="{role}"' in client.get("/").content.decode()


def test_anonymous_visitors_are_sent_to_sign_in(client, team):
    for url in ["/", "/jobs/", "/accounts/me/", "/audit/"]:
        response = client.get(url)
        assert response.status_code == 302 and response.url.startswith("/login/"), url


def test_unknown_route_renders_the_404_page(users, client):
    client.force_login(users["scientist"])
    response = client.get("/no/such/page/")
    assert response.status_code == 404
    assert "Not found" in response.content.decode()


def test_pages_load_only_vendored_assets(users, client):
    client.force_login(users["scientist"])
    html = client.get("/").content.decode()
    assert "/static/vendor/bootstrap/bootstrap.min.css" in html
    assert "/static/vendor/htmx/htmx.min.js" in html
    assert "https://" not in html.split("<main")[0]


def test_security_headers_are_set(users, client):
    client.force_login(users["scientist"])
    response = client.get("/")
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
