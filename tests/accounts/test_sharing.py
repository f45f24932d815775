"""The Share dialog: a roles × objects × actions matrix (forbidden answers 404), audit rows,
the who-has-access panel, bulk changes in one transaction, and query bounds."""

import pytest
from django.urls import reverse

from apps.accounts import sharing
from apps.audit.models import AuditEvent
from tests.accounts.conftest import make_model

pytestmark = pytest.mark.django_db

KINDS = ["dataset", "experiment", "model", "endpoint", "environment"]
ROLES = ["anonymous", "nobody", "viewer", "owner", "admin"]
HTMX = {"HTTP_HX_REQUEST": "true"}


def _may_manage(role: str, kind: str) -> bool:
    # Environments have no owner: their approvers and deployers are platform admins' policy.
    return role == "admin" or (role == "owner" and kind != "environment")


@pytest.fixture
def as_role(client, users, owner, objects, team):
    """Signs the client in as one role; the viewer can see every object (a view-level share)."""
    viewer = users["scientist"]
    for kind, obj in objects.items():
        if kind != "environment":  # everyone sees environments
            shareable = sharing.shareable_for_kind(kind)
            sharing.grant(shareable=shareable, obj=obj, by=users["admin"], level=shareable.levels[0].key, user=viewer)
    people = {"nobody": users["nobody"], "viewer": viewer, "owner": owner, "admin": users["admin"]}

    def sign_in(role):
        if role != "anonymous":
            client.force_login(people[role])
        return client

    return sign_in


def _audit_count(obj) -> int:
    return AuditEvent.objects.filter(object_type=obj._meta.label_lower, object_id=str(obj.pk)).count()


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("role", ROLES)
def test_share_dialog_opens_only_for_those_who_manage_the_object(as_role, objects, role, kind):
    response = as_role(role).get(reverse("accounts:share", args=[kind, objects[kind].pk]), **HTMX)
    if role == "anonymous":
        assert response.status_code == 302 and "/login/" in response["Location"]
    else:
        assert response.status_code == (200 if _may_manage(role, kind) else 404)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("role", ROLES)
def test_granting_a_team_works_only_for_managers_and_is_audited(as_role, objects, team, role, kind):
    obj = objects[kind]
    shareable = sharing.shareable_for_kind(kind)
    level = shareable.levels[0].key
    audits = _audit_count(obj)
    response = as_role(role).post(
        reverse("accounts:share", args=[kind, obj.pk]), {"teams": [team.pk], "level": level}, **HTMX
    )
    granted = any(
        g.is_team and g.grantee == team for g in sharing.read_grants(shareable, shareable.model.objects.get(pk=obj.pk))
    )
    if _may_manage(role, kind):
        assert response.status_code == 200
        assert granted
        assert _audit_count(obj) > audits
    else:
        assert response.status_code in (302, 404)
        assert not granted
        assert _audit_count(obj) == audits


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("role", ROLES)
def test_revoking_a_team_works_only_for_managers_and_is_audited(as_role, objects, team, users, role, kind):
    obj = objects[kind]
    shareable = sharing.shareable_for_kind(kind)
    sharing.grant(shareable=shareable, obj=obj, by=users["admin"], level=shareable.levels[-1].key, team=team)
    audits = _audit_count(obj)
    response = as_role(role).post(
        reverse("accounts:share_revoke", args=[kind, obj.pk]), {"grantee": f"team:{team.pk}"}, **HTMX
    )
    still = any(
        g.is_team and g.grantee == team for g in sharing.read_grants(shareable, shareable.model.objects.get(pk=obj.pk))
    )
    if _may_manage(role, kind):
        assert response.status_code == 200
        assert not still
        assert _audit_count(obj) > audits
    else:
        assert response.status_code in (302, 404)
        assert still
        assert _audit_count(obj) == audits


def test_an_unknown_kind_or_object_answers_404(client, users):
    client.force_login(users["admin"])
    assert client.get(reverse("accounts:share", args=["spaceship", 1])).status_code == 404
    assert client.get(reverse("accounts:share", args=["model", 999999])).status_code == 404


def test_a_private_model_shared_with_a_team_becomes_visible_to_its_members_only(client, users, owner, team):
    model = make_model(owner, name="fraud-scorer")
    client.force_login(users["engineer"])
    assert client.get(reverse("registry:model", args=[model.name])).status_code == 404
    client.force_login(owner)
    client.post(reverse("accounts:share", args=["model", model.pk]), {"teams": [team.pk], "level": "view"}, **HTMX)
    client.force_login(users["engineer"])  # a member of the team
    assert client.get(reverse("registry:model", args=[model.name])).status_code == 200
    client.force_login(users["nobody"])
    assert client.get(reverse("registry:model", args=[model.name])).status_code == 404


def test_sharing_with_several_users_and_teams_at_once_is_one_form(client, users, owner, objects, team):
    client.force_login(owner)
    dataset = objects["dataset"]
    response = client.post(
        reverse("accounts:share", args=["dataset", dataset.pk]),
        {"usernames": "scientist, approver", "teams": [team.pk], "level": "change"},
        **HTMX,
    )
    assert response.status_code == 200
    grants = {g.key: g.levels for g in sharing.read_grants(sharing.shareable_for_kind("dataset"), dataset)}
    assert grants == {
        f"user:{users['scientist'].pk}": ["view", "change"],
        f"user:{users['approver'].pk}": ["view", "change"],
        f"team:{team.pk}": ["view", "change"],
    }


def test_an_unknown_username_is_a_clear_400_and_changes_nothing(client, users, owner, objects):
    client.force_login(owner)
    dataset = objects["dataset"]
    response = client.post(
        reverse("accounts:share", args=["dataset", dataset.pk]),
        {"usernames": "scientist, ghost", "level": "view"},
        **HTMX,
    )
    assert response.status_code == 400
    assert "ghost" in response.content.decode()
    assert sharing.read_grants(sharing.shareable_for_kind("dataset"), dataset) == []


def test_an_unknown_level_is_a_400(client, owner, objects, team):
    client.force_login(owner)
    response = client.post(
        reverse("accounts:share", args=["model", objects["model"].pk]), {"teams": [team.pk], "level": "root"}, **HTMX
    )
    assert response.status_code == 400


def test_environment_levels_are_for_teams_only(client, users, objects):
    client.force_login(users["admin"])
    response = client.post(
        reverse("accounts:share", args=["environment", objects["environment"].pk]),
        {"usernames": "scientist", "level": "approve"},
        **HTMX,
    )
    assert response.status_code == 400
    assert "teams only" in response.content.decode()


def test_granting_approve_on_an_environment_adds_an_approval_rule_for_the_team(client, users, objects, team):
    client.force_login(users["admin"])
    environment = objects["environment"]
    client.post(
        reverse("accounts:share", args=["environment", environment.pk]),
        {"teams": [team.pk], "level": "approve"},
        **HTMX,
    )
    assert environment.approval_rules.filter(team=team, required_approvals=1).exists()
    assert AuditEvent.objects.filter(
        action="deployment.environment.policy_changed", object_id=str(environment.pk)
    ).exists()


def test_the_last_approval_rule_of_an_environment_cannot_be_removed(client, users, team):
    from tests.accounts.conftest import make_environment

    environment = make_environment()
    environment.approval_rules.all().delete()
    shareable = sharing.shareable_for_kind("environment")
    sharing.grant(shareable=shareable, obj=environment, by=users["admin"], level="approve", team=team)
    client.force_login(users["admin"])
    response = client.post(
        reverse("accounts:share_revoke", args=["environment", environment.pk]), {"grantee": f"team:{team.pk}"}, **HTMX
    )
    assert response.status_code == 400
    assert environment.approval_rules.filter(team=team).exists()


def test_granting_invoke_on_an_endpoint_lets_the_grantee_call_it(client, users, owner, objects):
    from apps.deployments import permissions

    endpoint = objects["endpoint"]
    assert not permissions.can_invoke(users["nobody"], endpoint)
    client.force_login(owner)
    client.post(
        reverse("accounts:share", args=["endpoint", endpoint.pk]), {"usernames": "nobody", "level": "invoke"}, **HTMX
    )
    nobody = type(users["nobody"]).objects.get(pk=users["nobody"].pk)  # fresh permission cache
    assert permissions.can_invoke(nobody, endpoint)


def test_who_has_access_lists_owner_team_organisation_shares_and_admins(users, owner, team):
    model = make_model(owner, team=team, visibility="organisation")
    shareable = sharing.shareable_for_kind("model")
    sharing.grant(shareable=shareable, obj=model, by=owner, level="change", user=users["scientist"])
    rows = sharing.who_has_access(shareable, shareable.lookup(owner, model.pk))
    reasons = [row.reason for row in rows]
    assert reasons == ["owner", "team", "organisation", "user", "admins"]
    assert rows[3].access == ["view", "change (versions, cards, aliases)"]


def test_the_who_has_access_panel_costs_a_bounded_number_of_queries(client, owner, team, django_assert_max_num_queries):
    from tests.conftest import make_user

    model = make_model(owner)
    shareable = sharing.shareable_for_kind("model")
    for index in range(15):
        sharing.grant(shareable=shareable, obj=model, by=owner, level="change", user=make_user(f"person{index}"))
    sharing.grant(shareable=shareable, obj=model, by=owner, level="view", team=team)
    client.force_login(owner)
    with django_assert_max_num_queries(12):
        response = client.get(reverse("accounts:share", args=["model", model.pk]), **HTMX)
    assert response.content.decode().count('data-testid="access-row"') == 1 + 15 + 1 + 1


def test_the_share_page_works_without_javascript(client, owner, objects, team):
    client.force_login(owner)
    url = reverse("accounts:share", args=["model", objects["model"].pk])
    page = client.get(url)
    assert page.status_code == 200 and "<html" in page.content.decode()
    response = client.post(url, {"teams": [team.pk], "level": "view"})
    assert response.status_code == 302 and response["Location"] == url


def test_the_share_button_shows_only_for_managers(client, users, owner, objects):
    model = objects["model"]
    client.force_login(owner)
    assert 'data-testid="share-button"' in client.get(reverse("registry:model", args=[model.name])).content.decode()
    shareable = sharing.shareable_for_kind("model")
    sharing.grant(shareable=shareable, obj=model, by=owner, level="view", user=users["scientist"])
    client.force_login(users["scientist"])
    page = client.get(reverse("registry:model", args=[model.name]))
    assert page.status_code == 200 and 'data-testid="share-button"' not in page.content.decode()


def test_bulk_sharing_grants_one_team_on_several_objects(client, users, owner, team):
    models = [make_model(owner) for _ in range(3)]
    client.force_login(users["admin"])
    response = client.post(
        reverse("accounts:bulk_share"),
        {
            "kind": "model",
            "objects": [m.pk for m in models[:2]],
            "teams": [team.pk],
            "level": "view",
            "action": "grant",
        },
    )
    assert response.status_code == 302
    shareable = sharing.shareable_for_kind("model")
    assert [bool(sharing.read_grants(shareable, m)) for m in models] == [True, True, False]
    assert AuditEvent.objects.filter(action="registry.model.shared").count() == 2


def test_bulk_sharing_is_all_or_nothing(client, users, owner, team, monkeypatch):
    models = [make_model(owner) for _ in range(2)]
    shareable = sharing.shareable_for_kind("model")
    real_share = shareable.share
    calls = []

    def failing_share(**kwargs):
        calls.append(kwargs["obj"].pk)
        if len(calls) == 2:
            from django.core.exceptions import ValidationError

            raise ValidationError("the second one fails")
        real_share(**kwargs)

    monkeypatch.setattr(shareable, "share", failing_share)
    client.force_login(users["admin"])
    response = client.post(
        reverse("accounts:bulk_share"),
        {"kind": "model", "objects": [m.pk for m in models], "teams": [team.pk], "level": "view", "action": "grant"},
    )
    assert response.status_code == 400
    assert "the second one fails" in response.content.decode()
    assert [sharing.read_grants(shareable, m) for m in models] == [[], []]
    assert not AuditEvent.objects.filter(action="registry.model.shared").exists()


def test_bulk_sharing_is_for_platform_admins_only(client, users):
    client.force_login(users["scientist"])
    assert client.get(reverse("accounts:bulk_share")).status_code == 404


def test_removing_a_team_from_an_environment_takes_its_rule_and_the_deployer_role(client, users, objects, team):
    environment = objects["environment"]  # has a role rule besides
    shareable = sharing.shareable_for_kind("environment")
    for level in ("approve", "deploy"):
        sharing.grant(shareable=shareable, obj=environment, by=users["admin"], level=level, team=team)
    environment.refresh_from_db()
    assert environment.deployer_team == team
    client.force_login(users["admin"])
    url = reverse("accounts:share_revoke", args=["environment", environment.pk])
    assert client.post(url, {"grantee": f"team:{team.pk}"}, **HTMX).status_code == 200
    environment.refresh_from_db()
    assert environment.deployer_team is None
    assert not environment.approval_rules.filter(team=team).exists()


def test_a_refused_part_of_a_removal_leaves_everything_as_it_was(client, users, team):
    from tests.accounts.conftest import make_environment

    environment = make_environment()
    environment.approval_rules.all().delete()
    shareable = sharing.shareable_for_kind("environment")
    for level in ("approve", "deploy"):
        sharing.grant(shareable=shareable, obj=environment, by=users["admin"], level=level, team=team)
    client.force_login(users["admin"])
    url = reverse("accounts:share_revoke", args=["environment", environment.pk])
    assert client.post(url, {"grantee": f"team:{team.pk}"}, **HTMX).status_code == 400
    environment.refresh_from_db()
    assert environment.deployer_team == team  # the deployer part was rolled back with the refusal


@pytest.mark.parametrize("kind", KINDS)
def test_every_object_page_carries_the_share_button_for_its_managers(client, users, owner, objects, kind):
    obj = objects[kind]
    client.force_login(users["admin"] if kind == "environment" else owner)
    page = client.get(sharing.shareable_for_kind(kind).url(obj))
    assert page.status_code == 200
    body = page.content.decode()
    assert reverse("accounts:share", args=[kind, obj.pk]) in body
    assert 'data-testid="share-button"' in body


def test_a_manager_who_removes_their_own_share_gets_an_answer_not_a_500(client, users, objects):
    """A change share lets its holder manage the dataset's shares; removing it (in the htmx
    dialog) leaves them unable to see the object any more, which must not break the answer."""
    dataset = objects["dataset"]
    shareable = sharing.shareable_for_kind("dataset")
    holder = users["scientist"]
    sharing.grant(shareable=shareable, obj=dataset, by=users["admin"], level="change", user=holder)
    client.force_login(holder)
    response = client.post(
        reverse("accounts:share_revoke", args=["dataset", dataset.pk]),
        {"grantee": f"user:{holder.pk}", "level": "view"},
        **HTMX,
    )
    assert response.status_code == 200
    assert [grant.levels for grant in sharing.read_grants(shareable, dataset)] == [["change"]]
