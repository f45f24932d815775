"""A registered model's settings page (rename, describe, visibility, team, shares, delete) and
the version page's stage and delete forms: who may use them, that every write goes through the
services and is audited, and that a refused change saves nothing."""

import pytest
from django.test import Client
from django.urls import reverse

from apps.accounts import services as accounts
from apps.accounts.roles import SCIENTIST
from apps.audit.models import AuditEvent
from apps.registry import permissions, selectors
from apps.registry.models import ModelAlias, ModelVersion, RegisteredModel
from tests.conftest import make_user
from tests.registry.page_factories import (  # noqa: F401  (artifact_store is a fixture)
    artifact_store,
    make_model,
    make_version,
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
    return make_model(owner, "churn", description="Predicts churn.")


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def settings_url(model) -> str:
    return reverse("registry:model_settings", args=[model.name])


def details(model, **changes) -> dict:
    team = changes.pop("team", model.team_id)
    data = {"action": "update", "name": model.name, "description": model.description, "visibility": model.visibility}
    return {**data, "team": team or "", **changes}


def fresh(user):
    # A new instance: guardian caches object permissions on the user it checked.
    return type(user).objects.get(pk=user.pk)


# --- Details ------------------------------------------------------------------------------------


def test_owner_renames_the_model_and_the_rename_is_audited(owner, model):
    response = client_for(owner).post(settings_url(model), details(model, name="churn-v2"))
    assert response.status_code == 302
    assert response["Location"] == reverse("registry:model_settings", args=["churn-v2"])
    model.refresh_from_db()
    assert model.name == "churn-v2"
    event = AuditEvent.objects.get(action="registry.model.renamed")
    assert event.changes["name"] == ["churn", "churn-v2"]


def test_a_name_taken_in_another_case_is_refused_inline_and_nothing_is_saved(owner, model):
    make_model(owner, "fraud")
    response = client_for(owner).post(
        settings_url(model), details(model, name="FRAUD", description="New words", visibility="organisation")
    )
    assert response.status_code == 400
    assert "already exists" in response.context["settings_form"].errors["name"][0]
    assert 'class="invalid-feedback">Registered Model (name=FRAUD) already exists' in response.content.decode()
    model.refresh_from_db()
    assert (model.name, model.description, model.visibility) == ("churn", "Predicts churn.", "private")
    assert not AuditEvent.objects.filter(action__in=["registry.model.renamed", "registry.model.updated"]).exists()


def test_an_invalid_name_is_refused_by_the_field(owner, model):
    response = client_for(owner).post(settings_url(model), details(model, name="a/b"))
    assert response.status_code == 400
    assert "cannot contain" in response.context["settings_form"].errors["name"][0]
    assert RegisteredModel.objects.get(pk=model.pk).name == "churn"


def test_opening_the_model_to_the_organisation_makes_it_visible_to_another_scientist(owner, other_scientist, model):
    assert selectors.model_for(other_scientist, "churn") is None
    response = client_for(owner).post(
        settings_url(model), details(model, visibility="organisation", description="Now **public**.")
    )
    assert response.status_code == 302
    assert selectors.model_for(other_scientist, "churn") is not None
    assert client_for(other_scientist).get(reverse("registry:model", args=["churn"])).status_code == 200
    event = AuditEvent.objects.get(action="registry.model.updated")
    assert event.changes["visibility"] == ["private", "organisation"]


def test_owner_gives_the_model_to_their_team_and_takes_it_back(users, owner, model):
    team = accounts.create_team(name="Retention", by=users["admin"])
    accounts.add_team_member(team=team, user=owner, by=users["admin"])
    client = client_for(owner)
    assert client.post(settings_url(model), details(model, team=team.pk)).status_code == 302
    assert RegisteredModel.objects.get(pk=model.pk).team_id == team.pk
    model.refresh_from_db()
    assert client.post(settings_url(model), details(model, team="")).status_code == 302
    assert RegisteredModel.objects.get(pk=model.pk).team_id is None


# --- Sharing ------------------------------------------------------------------------------------


def test_sharing_with_a_user_makes_the_model_visible_and_unsharing_hides_it(owner, other_scientist, model):
    client = client_for(owner)
    response = client.post(settings_url(model), {"action": "share", "username": other_scientist.username})
    assert response.status_code == 302
    assert selectors.model_for(other_scientist, "churn") is not None
    assert client_for(other_scientist).get(reverse("registry:model", args=["churn"])).status_code == 200
    rows = client.get(settings_url(model)).context["access"]
    assert [(row["kind"], row["access"]) for row in rows if row["kind"].startswith("shared")] == [
        ("shared_user", ["view"])
    ]
    client.post(settings_url(model), {"action": "unshare", "username": other_scientist.username})
    assert selectors.model_for(fresh(other_scientist), "churn") is None
    assert client_for(other_scientist).get(reverse("registry:model", args=["churn"])).status_code == 404
    actions = list(AuditEvent.objects.order_by("pk").values_list("action", flat=True))
    assert actions[-2:] == ["registry.model.shared", "registry.model.unshared"]


def test_a_change_share_lets_the_user_register_versions(owner, other_scientist, model):
    client_for(owner).post(
        settings_url(model), {"action": "share", "username": other_scientist.username, "level": "change"}
    )
    grantee = fresh(other_scientist)
    assert permissions.can_view(grantee, model) and permissions.can_change(grantee, model)
    assert not permissions.can_manage(grantee, model)


def test_a_request_deployment_share_to_a_team_shows_in_the_access_table(users, owner, model):
    team = accounts.create_team(name="Platform", by=users["admin"])
    member = make_user("mia", "Business owners")
    accounts.add_team_member(team=team, user=member, by=users["admin"])
    client = client_for(owner)
    response = client.post(settings_url(model), {"action": "share", "team": team.pk, "level": "request_deployment"})
    assert response.status_code == 302
    page = client.get(settings_url(model))
    shared = [row for row in page.context["access"] if row["kind"] == "shared_team"]
    assert [(row["grantee"], row["access"]) for row in shared] == [(team, ["view", "request deployment"])]
    assert "request deployment" in page.content.decode()
    assert permissions.can_request_deployment(fresh(member), model)


def test_the_access_table_lists_owner_team_and_organisation(users, owner):
    team = accounts.create_team(name="Retention", by=users["admin"])
    accounts.add_team_member(team=team, user=owner, by=users["admin"])
    model = make_model(owner, "open-model", visibility="organisation", team=team)
    kinds = [row["kind"] for row in client_for(owner).get(settings_url(model)).context["access"]]
    assert kinds == ["owner", "team", "organisation"]


def test_sharing_with_an_unknown_user_is_refused_inline(owner, model):
    response = client_for(owner).post(settings_url(model), {"action": "share", "username": "ghost"})
    assert response.status_code == 400
    assert "No active user named" in response.content.decode()
    assert [row["kind"] for row in selectors.model_access(model)] == ["owner"]


# --- Who may --------------------------------------------------------------------------------------


def test_readers_get_403_and_strangers_404_on_get_and_post(owner, other_scientist, model):
    stranger = client_for(other_scientist)
    assert stranger.get(settings_url(model)).status_code == 404
    assert stranger.post(settings_url(model), {"action": "delete"}).status_code == 404
    RegisteredModel.objects.filter(pk=model.pk).update(visibility="organisation")
    assert stranger.get(settings_url(model)).status_code == 403
    assert stranger.post(settings_url(model), {"action": "delete"}).status_code == 403
    assert stranger.post(settings_url(model), details(model, name="mine")).status_code == 403
    assert RegisteredModel.objects.filter(pk=model.pk, name="churn").exists()


def test_anonymous_users_are_sent_to_login(model):
    version = make_version(model)
    for url in (
        settings_url(model),
        reverse("registry:version_stage", args=[model.name, version.version]),
        reverse("registry:version_delete", args=[model.name, version.version]),
    ):
        response = Client().post(url, {"action": "delete"})
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("login"))
    assert RegisteredModel.objects.filter(pk=model.pk).exists()


def test_the_model_page_links_settings_for_managers_only(owner, other_scientist, model):
    url = reverse("registry:model", args=[model.name])
    assert settings_url(model) in client_for(owner).get(url).content.decode()
    RegisteredModel.objects.filter(pk=model.pk).update(visibility="organisation")
    assert settings_url(model) not in client_for(other_scientist).get(url).content.decode()


def test_a_team_lead_manages_the_model_of_a_team_member(users, owner):
    lead = make_user("lead", SCIENTIST)
    team = accounts.create_team(name="Retention", by=users["admin"], lead=lead)
    accounts.add_team_member(team=team, user=owner, by=users["admin"])
    model = make_model(owner, "team-model", team=team)
    assert client_for(lead).get(settings_url(model)).status_code == 200


# --- Delete ---------------------------------------------------------------------------------------


def test_owner_deletes_the_model_with_its_versions(owner, model):
    make_version(model)
    response = client_for(owner).post(settings_url(model), {"action": "delete"})
    assert response.status_code == 302
    assert response["Location"] == reverse("registry:model_list")
    assert not RegisteredModel.objects.filter(pk=model.pk).exists()
    assert not ModelVersion.objects.filter(registered_model_id=model.pk).exists()
    assert AuditEvent.objects.filter(action="registry.model.deleted").count() == 1


# --- Version page: stage and delete ---------------------------------------------------------------


def test_a_stage_transition_through_the_version_page_archives_the_others_and_is_audited(owner, model):
    first, second = make_version(model), make_version(model)
    client = client_for(owner)
    client.post(reverse("registry:version_stage", args=[model.name, 1]), {"stage": "Production"})
    response = client.post(
        reverse("registry:version_stage", args=[model.name, 2]),
        {"stage": "Production", "archive_existing_versions": "on"},
    )
    assert response.status_code == 302
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.current_stage, second.current_stage) == ("Archived", "Production")
    event = AuditEvent.objects.filter(action="registry.version.stage_changed").latest("pk")
    assert event.changes["stage"] == ["None", "Production"]


def test_archiving_others_outside_an_active_stage_is_refused_inline(owner, model):
    version = make_version(model)
    response = client_for(owner).post(
        reverse("registry:version_stage", args=[model.name, version.version]),
        {"stage": "Archived", "archive_existing_versions": "on"},
    )
    assert response.status_code == 400
    assert 'data-testid="stage-error"' in response.content.decode()
    version.refresh_from_db()
    assert version.current_stage == "None"


def test_the_version_page_shows_stage_and_delete_forms_to_managers_only(owner, other_scientist, model):
    version = make_version(model)
    url = reverse("registry:version", args=[model.name, version.version])
    page = client_for(owner).get(url).content.decode()
    assert 'data-testid="stage-form"' in page and 'data-testid="version-delete-form"' in page
    RegisteredModel.objects.filter(pk=model.pk).update(visibility="organisation")
    page = client_for(other_scientist).get(url).content.decode()
    assert 'data-testid="stage-form"' not in page and 'data-testid="version-delete-form"' not in page


def test_readers_cannot_move_stages_or_delete_versions(owner, other_scientist, model):
    version = make_version(model)
    RegisteredModel.objects.filter(pk=model.pk).update(visibility="organisation")
    reader = client_for(other_scientist)
    stage_url = reverse("registry:version_stage", args=[model.name, version.version])
    assert reader.post(stage_url, {"stage": "Production"}).status_code == 403
    assert reader.post(reverse("registry:version_delete", args=[model.name, version.version])).status_code == 403
    version.refresh_from_db()
    assert (version.current_stage, version.is_deleted) == ("None", False)


def test_a_version_deleted_through_the_version_page_is_gone_and_audited(owner, model):
    make_version(model)
    second = make_version(model)
    client = client_for(owner)
    client.post(reverse("registry:alias_set", args=[model.name]), {"alias": "champion", "version": 2})
    assert ModelAlias.objects.filter(registered_model=model, model_version=second).exists()
    response = client.post(reverse("registry:version_delete", args=[model.name, 2]))
    assert response.status_code == 302
    assert response["Location"] == reverse("registry:model", args=[model.name])
    second.refresh_from_db()
    assert second.is_deleted
    assert not ModelAlias.objects.filter(registered_model=model).exists()
    assert client.get(reverse("registry:version", args=[model.name, 2])).status_code == 404
    assert AuditEvent.objects.filter(action="registry.version.deleted", object_id=str(second.pk)).exists()
