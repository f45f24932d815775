"""The model registry pages: what they show, who may see them, what they cost, and that every
form writes through the services (errors inline, nothing half-saved)."""

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from apps.accounts import services as accounts
from apps.accounts.roles import SCIENTIST
from apps.registry import services
from apps.registry.models import ModelAlias
from tests.conftest import make_user
from tests.registry.page_factories import (  # noqa: F401  (artifact_store is a fixture)
    FULL_CARD,
    artifact_store,
    make_model,
    make_version,
    model_run,
    set_card,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("artifact_store")]


@pytest.fixture
def owner(users):
    return users["scientist"]


@pytest.fixture
def other_scientist(db):
    return make_user("other-scientist", SCIENTIST)


@pytest.fixture
def model(owner):
    return make_model(owner, "churn", description="Predicts **churn**. <script>alert(1)</script>")


@pytest.fixture
def versions(model):
    first = make_version(model, description="first")
    second = make_version(model, description="second")
    set_card(second, **FULL_CARD)
    return [first, second]


def query_count(client, url) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200, url
    return len(queries)


def version_url(version, name="registry:version"):
    return reverse(name, args=[version.registered_model.name, version.version])


def page_urls(model, version):
    return [
        reverse("registry:model", args=[model.name]),
        reverse("registry:model", args=[model.pk]),
        version_url(version),
        version_url(version) + "?print=1",
        version_url(version, "registry:version_print"),
        version_url(version, "registry:export_markdown"),
        version_url(version, "registry:export_json"),
        version_url(version, "registry:export_html"),
        reverse("registry:card_section", args=[model.name, version.version, "factors"]),
        reverse("registry:register_version", args=[model.name]),
        reverse("registry:compare", args=[model.name]) + f"?a={version.version}&b={version.version}",
    ]


# --- Model list ---------------------------------------------------------------------------------


def test_model_list_shows_models_with_completeness_to_the_owner(client, owner, model, versions):
    client.force_login(owner)
    response = client.get(reverse("registry:model_list"))
    assert response.status_code == 200
    rows = response.context["rows"]
    assert [row["model"].name for row in rows] == ["churn"]
    assert rows[0]["model"].version_count == 2
    assert rows[0]["newest"].version == 2
    assert rows[0]["score"] == 100
    assert 'data-testid="completeness">100%' in response.content.decode()


def test_model_list_hides_private_models_of_others(client, owner, other_scientist, model):
    make_model(owner, "shared-model", visibility="organisation")
    client.force_login(other_scientist)
    names = [row["model"].name for row in client.get(reverse("registry:model_list")).context["rows"]]
    assert names == ["shared-model"]


def test_model_list_searches_and_filters_by_owner_team_alias_and_status(client, users, owner, model, versions):
    team = accounts.create_team(name="Fraud", by=users["admin"])
    accounts.add_team_member(team=team, user=users["engineer"], by=users["admin"])
    fraud = make_model(users["engineer"], "fraud-scoring", visibility="organisation", team=team)
    services.set_alias(by=owner, model=model, alias="champion", version=versions[1])
    services.transition_stage(by=owner, version=versions[1], stage="Production")
    make_version(fraud)
    client.force_login(owner)
    url = reverse("registry:model_list")

    def names(**query):
        return [row["model"].name for row in client.get(url, query).context["rows"]]

    assert names(q="FRAUD") == ["fraud-scoring"]
    assert names(owner=owner.pk) == ["churn"]
    assert names(team=team.pk) == ["fraud-scoring"]
    assert names(alias="champion") == ["churn"]
    assert names(status="Production") == ["churn"]
    assert names(sort="name") == ["churn", "fraud-scoring"]
    assert names(sort="-name") == ["fraud-scoring", "churn"]


def test_model_list_answers_htmx_with_the_results_only(client, owner, model):
    client.force_login(owner)
    response = client.get(reverse("registry:model_list"), {"q": "churn"}, headers={"HX-Request": "true"})
    assert [t.name for t in response.templates][0] == "registry/_model_results.html"


def test_model_list_query_count_does_not_grow_with_models(client, owner):
    client.force_login(owner)
    url = reverse("registry:model_list")
    run = model_run(owner)
    for i in range(3):
        make_version(make_model(owner, f"small-{i}", tags=[("k", "v")]), run=run)
    few = query_count(client, url)
    for i in range(27):
        make_version(make_model(owner, f"large-{i}", tags=[("k", "v")]), run=run)
    assert query_count(client, url) == few


# --- Model page ---------------------------------------------------------------------------------


def test_model_page_shows_versions_aliases_lineage_and_history_link(client, owner, model, versions):
    services.set_alias(by=owner, model=model, alias="champion", version=versions[1])
    client.force_login(owner)
    response = client.get(reverse("registry:model", args=[model.name]))
    assert response.status_code == 200
    html = response.content.decode()
    assert [row["version"].version for row in response.context["rows"]] == [2, 1]
    assert "@champion" in html
    run = versions[1].run
    assert reverse("tracking:run", args=[run.experiment_id, run.run_uuid]) in html
    assert reverse("audit:object_history", args=["registry.registeredmodel", model.pk]) in html
    assert 'data-testid="deployments-slot"' in html
    assert "<strong>churn</strong>" in html
    assert "<script>alert(1)" not in html


def test_model_page_is_found_by_id_too(client, owner, model):
    client.force_login(owner)
    assert client.get(reverse("registry:model", args=[model.pk])).context["model"] == model


def test_model_page_hides_the_link_to_a_source_run_the_viewer_cannot_see(client, owner, other_scientist):
    shared = make_model(owner, "shared", visibility="organisation")
    make_version(shared)
    client.force_login(other_scientist)
    response = client.get(reverse("registry:model", args=[shared.name]))
    assert response.status_code == 200
    assert 'data-testid="source-run-link"' not in response.content.decode()
    assert "a run you cannot see" in response.content.decode()


def test_model_page_query_count_does_not_grow_with_versions(client, owner, model):
    client.force_login(owner)
    url = reverse("registry:model", args=[model.name])
    for _ in range(3):
        make_version(model)
    few = query_count(client, url)
    run = model_run(owner)
    for _ in range(27):
        make_version(model, run=run)
    assert query_count(client, url) == few


# --- Version page -------------------------------------------------------------------------------


def test_version_page_renders_the_card_charts_signature_and_artifacts(client, owner, model, versions):
    client.force_login(owner)
    response = client.get(version_url(versions[1]))
    assert response.status_code == 200
    html = response.content.decode()
    assert "Card completeness 100%" in html
    assert "Scores <strong>churn</strong> risk." in html
    assert "<script>alert(" not in html
    assert response.context["figures"]  # auc has a history
    assert "tenure_months" in html and "double" in html
    assert 'data-testid="artifacts-link"' in html
    assert 'data-testid="edit-factors"' in html


def test_version_page_lists_the_missing_sections(client, owner, model, versions):
    client.force_login(owner)
    response = client.get(version_url(versions[0]))
    doc = response.context["doc"]
    assert doc.score < 100
    assert "Fairness considerations" in [item["label"] for item in doc.missing]
    assert "Missing:" in response.content.decode()


def test_print_view_has_no_navigation_and_print_css(client, owner, model, versions):
    client.force_login(owner)
    for url in (version_url(versions[1]) + "?print=1", version_url(versions[1], "registry:version_print")):
        html = client.get(url).content.decode()
        assert "@media print" in html
        assert "navbar" not in html
        assert "Model card: churn" in html
        assert "<script" not in html


def test_version_page_query_count_does_not_grow_with_versions(client, owner, model, versions):
    client.force_login(owner)
    url = version_url(versions[1])
    few = query_count(client, url)
    run = model_run(owner)
    for _ in range(27):
        make_version(model, run=run)
    assert query_count(client, url) == few


def test_unknown_versions_are_404(client, owner, model, versions):
    client.force_login(owner)
    assert client.get(reverse("registry:version", args=[model.name, 99])).status_code == 404


# --- Compare ------------------------------------------------------------------------------------


def test_compare_shows_both_versions_side_by_side(client, owner, model, versions):
    client.force_login(owner)
    response = client.get(reverse("registry:compare", args=[model.name]), {"a": 1, "b": 2})
    assert response.status_code == 200
    assert [side["version"].version for side in response.context["sides"]] == [1, 2]
    html = response.content.decode()
    assert "Checked across regions." in html  # version 2's card only
    overview = next(row for row in response.context["card_rows"] if row["key"] == "overview")
    assert overview["differs"]
    assert {row["key"] for row in response.context["metric_rows"]} == {"auc", "rmse"}
    assert {row["key"] for row in response.context["param_rows"]} == {"max_depth"}


def test_compare_without_versions_offers_a_picker(client, owner, model, versions):
    client.force_login(owner)
    response = client.get(reverse("registry:compare", args=[model.name]))
    assert response.status_code == 200
    assert 'data-testid="compare-picker"' in response.content.decode()


# --- Forms --------------------------------------------------------------------------------------


def test_a_card_section_is_saved_through_the_service(client, owner, model, versions):
    client.force_login(owner)
    url = reverse("registry:card_section", args=[model.name, 1, "factors"])
    assert client.get(url, headers={"HX-Request": "true"}).templates[0].name == "registry/_card_section_form.html"
    response = client.post(url, {"factors": "Age bands."})
    assert response.status_code == 302
    versions[0].card.refresh_from_db()
    assert versions[0].card.factors == "Age bands."


def test_htmx_card_saves_redirect_the_page(client, owner, model, versions):
    client.force_login(owner)
    url = reverse("registry:card_section", args=[model.name, 1, "intended_use"])
    data = {"primary_uses": "Retention", "primary_users": "CSMs", "out_of_scope_uses": "Credit"}
    response = client.post(url, data, headers={"HX-Request": "true"})
    assert response.status_code == 204
    assert response["HX-Redirect"].endswith("#card-intended_use")


def test_a_bad_card_section_shows_the_error_inline_and_saves_nothing(client, owner, model, versions):
    client.force_login(owner)
    card = versions[1].card
    url = reverse("registry:card_section", args=[model.name, 2, "metrics"])
    response = client.post(url, {"metrics": "auc, 0.9\nf1, not-a-number"})
    assert response.status_code == 400
    assert "must be a number" in response.content.decode()
    card.refresh_from_db()
    assert [row["name"] for row in card.metrics] == ["auc"]
    assert card.metrics[0]["value"] == 0.86


def test_unknown_dataset_versions_in_training_data_are_refused(client, owner, model, versions):
    client.force_login(owner)
    url = reverse("registry:card_section", args=[model.name, 1, "training_data"])
    response = client.post(url, {"training_data": "999999", "training_data_notes": "x"})
    assert response.status_code == 400
    assert "no catalog dataset version with id 999999" in response.content.decode()


def test_a_slice_table_is_imported_from_csv(client, owner, model, versions):
    client.force_login(owner)
    upload = SimpleUploadedFile("slices.csv", b"slice,group,metric,value\nregion,US,auc,0.81\nregion,EU,auc,0.83\n")
    url = reverse("registry:slice_import", args=[model.name, 1])
    assert client.post(url, {"file": upload, "mode": "replace"}).status_code == 302
    versions[0].card.refresh_from_db()
    assert [row["group"] for row in versions[0].card.quantitative_analysis] == ["US", "EU"]


def test_a_bad_slice_table_changes_nothing(client, owner, model, versions):
    client.force_login(owner)
    rows = json.dumps([{"slice": "region", "group": "US", "metric": "auc", "value": "high"}]).encode()
    url = reverse("registry:slice_import", args=[model.name, 2])
    response = client.post(url, {"file": SimpleUploadedFile("slices.json", rows)})
    assert response.status_code == 400
    assert "must be a number" in response.content.decode()
    versions[1].card.refresh_from_db()
    assert versions[1].card.quantitative_analysis == FULL_CARD["quantitative_analysis"]


def test_an_alias_is_set_and_moved(client, owner, model, versions):
    client.force_login(owner)
    url = reverse("registry:alias_set", args=[model.name])
    assert client.post(url, {"alias": "champion", "version": 1}).status_code == 302
    assert client.post(url, {"alias": "champion", "version": 2}).status_code == 302
    assert ModelAlias.objects.get(registered_model=model, alias="champion").model_version == versions[1]


def test_a_bad_alias_is_refused_inline(client, owner, model, versions):
    client.force_login(owner)
    url = reverse("registry:alias_set", args=[model.name])
    response = client.post(url, {"alias": "latest", "version": 1})
    assert response.status_code == 400
    assert 'role="alert"' in response.content.decode()
    assert not ModelAlias.objects.filter(registered_model=model).exists()


def test_a_version_is_registered_from_a_visible_run(client, owner, model):
    run = model_run(owner)
    client.force_login(owner)
    url = reverse("registry:register_version", args=[model.name])
    assert run.run_uuid in client.get(url).content.decode()
    response = client.post(url, {"run": run.run_uuid, "path": "model", "description": "from the page"})
    assert response.status_code == 302
    created = model.versions.get()
    assert created.run == run and created.description == "from the page"


def test_registering_from_a_hidden_run_fails_inline(client, owner, other_scientist, model):
    hidden = model_run(other_scientist)
    client.force_login(owner)
    response = client.post(
        reverse("registry:register_version", args=[model.name]), {"run": hidden.run_uuid, "path": "model"}
    )
    assert response.status_code == 400
    assert 'data-testid="register-error"' in response.content.decode()
    assert not model.versions.exists()


def test_viewers_who_may_not_change_cannot_edit(client, owner, other_scientist):
    shared = make_model(owner, "shared", visibility="organisation")
    version = make_version(shared)
    client.force_login(other_scientist)
    assert 'data-testid="edit-factors"' not in client.get(version_url(version)).content.decode()
    url = reverse("registry:card_section", args=[shared.name, 1, "factors"])
    assert client.post(url, {"factors": "mine now"}).status_code == 403
    version.card.refresh_from_db()
    assert version.card.factors == ""


# --- Permissions --------------------------------------------------------------------------------


def test_another_scientist_gets_404_on_a_private_models_pages(client, other_scientist, model, versions):
    client.force_login(other_scientist)
    for url in page_urls(model, versions[1]):
        assert client.get(url).status_code == 404, url
    assert (
        client.post(reverse("registry:alias_set", args=[model.name]), {"alias": "x", "version": 1}).status_code == 404
    )


def test_team_members_and_admins_see_a_private_model(client, users, owner, model, versions):
    team = accounts.create_team(name="Churn", by=users["admin"])
    accounts.add_team_member(team=team, user=users["engineer"], by=users["admin"])
    model.team = team
    model.save()
    for who in ("engineer", "admin"):
        client.force_login(users[who])
        assert client.get(reverse("registry:model", args=[model.name])).status_code == 200, who
        assert client.get(version_url(versions[1])).status_code == 200, who


def test_anonymous_visitors_are_sent_to_sign_in(client, model, versions):
    for url in [reverse("registry:model_list"), *page_urls(model, versions[1])]:
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith(reverse("login")), url


def test_htmx_card_errors_come_back_in_the_swapped_form(client, owner, model, versions):
    client.force_login(owner)
    url = reverse("registry:card_section", args=[model.name, 1, "training_procedure"])
    response = client.post(url, {"hyperparameters": "no equals sign"}, headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert response.templates[0].name == "registry/_card_section_form.html"
    assert "write name=value" in response.content.decode()


def test_run_page_fragment_lists_versions_registered_from_the_run(client, owner, other_scientist, model):
    run = model_run(owner)
    make_version(model, owner, run=run)
    url = reverse("registry:run_versions", args=[run.run_uuid])
    client.force_login(owner)
    response = client.get(url)
    assert response.status_code == 200
    assert f"{model.name} v1" in response.content.decode()
    run_page = client.get(reverse("tracking:run", args=[run.experiment_id, run.run_uuid])).content.decode()
    assert url in run_page
    client.force_login(other_scientist)
    assert client.get(url).status_code == 404
