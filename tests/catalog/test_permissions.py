"""Visibility and classification as a matrix: who × which dataset × which action."""

import pytest
from django.contrib.auth.models import Group

from apps.accounts import services as accounts
from apps.catalog import services
from tests.catalog.factories import make_dataset

pytestmark = pytest.mark.django_db

CLASSES = ["public", "internal", "confidential", "pii"]


@pytest.fixture
def world(users):
    team = accounts.create_team(name="Risk", by=users["admin"])
    accounts.add_team_member(team=team, user=users["scientist"], by=users["admin"])
    accounts.add_team_member(team=team, user=users["engineer"], by=users["admin"])
    outsider = users["owner"]  # a user with no part in these datasets
    outsider.groups.add(Group.objects.get(name="Data scientists"))  # …who is also a data scientist
    datasets = {c: make_dataset(users["scientist"], f"{c} customers", classification=c, team=team) for c in CLASSES}
    datasets["private"] = make_dataset(users["scientist"], "private scores", visibility="private", team=team)
    datasets["private-pii"] = make_dataset(
        users["scientist"], "private pii", visibility="private", classification="pii", team=team
    )
    return {
        "team": team,
        "datasets": datasets,
        "who": {
            "owner": users["scientist"],
            "team member": users["engineer"],
            "other scientist": outsider,
            "admin": users["admin"],
        },
    }


# (who, dataset) -> (can see it exists, can see content)
EXPECTED = {
    "owner": {d: (True, True) for d in CLASSES + ["private", "private-pii"]},
    "team member": {d: (True, True) for d in CLASSES + ["private", "private-pii"]},
    "admin": {d: (True, True) for d in CLASSES + ["private", "private-pii"]},
    "other scientist": {
        "public": (True, True),
        "internal": (True, True),
        "confidential": (True, False),
        "pii": (True, False),
        "private": (False, False),
        "private-pii": (False, False),
    },
}

CASES = [(who, key) for who in EXPECTED for key in EXPECTED[who]]


@pytest.mark.parametrize(("who", "key"), CASES)
def test_detail_page_and_api(world, client, api_client, who, key):
    user, dataset = world["who"][who], world["datasets"][key]
    visible, content = EXPECTED[who][key]
    client.force_login(user)
    page = client.get(f"/catalog/datasets/{dataset.slug}/")
    assert page.status_code == (200 if visible else 404)
    if visible:
        html = page.content.decode()
        assert ('data-testid="sample-rows"' in html) is content
        assert ('data-testid="content-locked"' in html) is (not content)
        assert "customer_id" in html, "the schema of a visible dataset is always shown"
    assert client.get(f"/lineage/datasets/{dataset.slug}/").status_code == (200 if visible else 404)
    assert client.get(f"/audit/catalog.dataset/{dataset.pk}/").status_code == (200 if visible else 404)
    api_client.force_login(user)
    assert api_client.get(f"/api/v1/datasets/{dataset.slug}/").status_code == (200 if visible else 404)
    assert api_client.get(f"/api/v1/lineage/datasets/{dataset.slug}").status_code == (200 if visible else 404)
    sample = api_client.get(f"/api/v1/datasets/{dataset.slug}/sample/")
    assert sample.status_code == (200 if content else 403 if visible else 404)
    profile = api_client.get(f"/api/v1/datasets/{dataset.slug}/profile/")
    assert profile.status_code == (200 if visible else 404)
    if visible:
        stats = profile.json()["columns"][0]["stats"]
        assert ("min" in stats) is content, "value-level statistics need content access"


@pytest.mark.parametrize("who", list(EXPECTED))
def test_list_search_and_counts_show_only_visible_datasets(world, client, api_client, who):
    user = world["who"][who]
    expected = {world["datasets"][k].name for k, (visible, _) in EXPECTED[who].items() if visible}
    client.force_login(user)
    page = client.get("/catalog/")
    assert {d.name for d in page.context["page"]} == expected
    assert page.context["page"].paginator.count == len(expected)
    searched = client.get("/catalog/", {"q": "private"}).context["page"]
    assert {d.name for d in searched} == {n for n in expected if "private" in n}
    api_client.force_login(user)
    body = api_client.get("/api/v1/datasets/").json()
    assert body["count"] == len(expected)
    found = api_client.get("/api/v1/datasets/", {"q": "private"}).json()
    assert {d["name"] for d in found["results"]} == {n for n in expected if "private" in n}
    assert found["count"] == len(found["results"])
    facet_total = sum(item["count"] for item in page.context["facets"]["classification"])
    assert facet_total == len(expected)


def test_anonymous_sees_nothing(world, client, api_client):
    dataset = world["datasets"]["public"]
    assert client.get(f"/catalog/datasets/{dataset.slug}/").status_code == 302
    assert api_client.get(f"/api/v1/datasets/{dataset.slug}/").status_code in (401, 403)
    assert api_client.get("/api/v1/datasets/").status_code in (401, 403)


def test_pii_columns_are_masked_in_samples_for_approved_outsiders(world, users):
    from apps.catalog.models import Column
    from apps.catalog.selectors import sample_rows_for

    dataset = world["datasets"]["confidential"]
    Column.objects.filter(version=dataset.current_version, name="email").update(is_pii=True)
    outsider = world["who"]["other scientist"]
    request = services.request_access(dataset=dataset, by=outsider, purpose="Churn model features", duration_days=7)
    services.decide_access_request(access_request=request, by=users["scientist"], approve=True, comment="ok")
    rows = sample_rows_for(outsider, dataset, dataset.current_version)
    assert rows[0]["email"] == "•••" and rows[0]["customer_id"] == 1
    assert sample_rows_for(users["scientist"], dataset, dataset.current_version)[0]["email"] == "a@x.io"


def test_download_needs_content_access(world, client):
    dataset = world["datasets"]["pii"]
    client.force_login(world["who"]["other scientist"])
    assert client.get(f"/catalog/datasets/{dataset.slug}/versions/1/download/").status_code == 403
    hidden = world["datasets"]["private"]
    assert client.get(f"/catalog/datasets/{hidden.slug}/versions/1/download/").status_code == 404


def test_audit_history_of_a_private_dataset_is_hidden_from_outsiders(world, client):
    dataset = world["datasets"]["private"]
    client.force_login(world["who"]["other scientist"])
    assert client.get(f"/audit/catalog.dataset/{dataset.pk}/").status_code == 404
    client.force_login(world["who"]["team member"])
    assert client.get(f"/audit/catalog.dataset/{dataset.pk}/").status_code == 200


def test_sharing_a_private_dataset_with_a_team_makes_it_visible_to_its_members(world, users, client):
    dataset = world["datasets"]["private"]
    outsider = world["who"]["other scientist"]
    other_team = accounts.create_team(name="Pricing", by=users["admin"])
    accounts.add_team_member(team=other_team, user=outsider, by=users["admin"])
    client.force_login(outsider)
    assert client.get(f"/catalog/datasets/{dataset.slug}/").status_code == 404
    services.share_dataset(dataset=dataset, by=users["scientist"], permission="view_dataset", team=other_team)
    assert client.get(f"/catalog/datasets/{dataset.slug}/").status_code == 200
    client.force_login(users["approver"])
    assert client.get(f"/catalog/datasets/{dataset.slug}/").status_code == 404
