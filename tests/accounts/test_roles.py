import pytest
from django.contrib.auth.models import Group

from apps.accounts import services
from apps.accounts.roles import ALL_ROLES, ROLE_PERMISSIONS
from apps.audit.models import AuditEvent

pytestmark = pytest.mark.django_db


def test_the_six_role_groups_exist():
    assert set(Group.objects.filter(name__in=ALL_ROLES).values_list("name", flat=True)) == set(ALL_ROLES)


@pytest.mark.parametrize("role", ALL_ROLES)
def test_each_role_carries_exactly_its_installed_permissions(role):
    group = Group.objects.get(name=role)
    granted = {f"{p.content_type.app_label}.{p.codename}" for p in group.permissions.select_related("content_type")}
    from django.apps import apps

    installed_apps = {config.label for config in apps.get_app_configs()}
    expected = {p for p in ROLE_PERMISSIONS[role] if p.split(".")[0] in installed_apps}
    assert granted == expected


@pytest.mark.parametrize(
    ("user", "perm", "allowed"),
    [
        ("ops", "jobs.retry_job", True),
        ("admin", "jobs.retry_job", True),
        ("scientist", "jobs.retry_job", False),
        ("approver", "audit.view_auditevent", True),
        ("admin", "audit.view_auditevent", True),
        ("scientist", "audit.view_auditevent", False),
        ("engineer", "audit.view_auditevent", False),
        ("owner", "jobs.view_job", False),
        ("nobody", "accounts.add_personalaccesstoken", False),
        ("scientist", "accounts.add_personalaccesstoken", True),
    ],
)
def test_roles_grant_model_permissions(users, user, perm, allowed):
    assert users[user].has_perm(perm) is allowed


def test_set_roles_replaces_roles_and_is_audited(users):
    services.set_roles(user=users["scientist"], roles=["ML engineers", "Approvers"], by=users["admin"])
    names = set(users["scientist"].groups.values_list("name", flat=True))
    assert names == {"ML engineers", "Approvers"}
    event = AuditEvent.objects.filter(action="user.set_roles").latest("sequence")
    assert event.changes["roles"] == [["Data scientists"], ["Approvers", "ML engineers"]]
    assert event.actor_username == "admin"


def test_unknown_role_is_refused(users):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError):
        services.set_roles(user=users["scientist"], roles=["Wizards"], by=users["admin"])


def test_team_membership_is_its_group_membership(users):
    team = services.create_team(name="Fraud", by=users["admin"], lead=users["engineer"])
    services.add_team_member(team=team, user=users["scientist"], by=users["admin"])
    assert set(team.group.user_set.values_list("username", flat=True)) == {"engineer", "scientist"}
    services.remove_team_member(team=team, user=users["engineer"], by=users["admin"])
    team.refresh_from_db()
    assert team.lead is None
    actions = list(AuditEvent.objects.filter(object_type="accounts.team").values_list("action", flat=True))
    assert set(actions) == {"team.create", "team.add_member", "team.remove_member"}


def test_guardian_object_permission_granted_to_a_team_reaches_its_members(users):
    from guardian.shortcuts import assign_perm

    team = services.create_team(name="Validation", by=users["admin"])
    services.add_team_member(team=team, user=users["approver"], by=users["admin"])
    other = services.create_team(name="Other", by=users["admin"])
    assign_perm("accounts.change_team", team.group, other)
    assert users["approver"].has_perm("accounts.change_team", other)
    assert not users["scientist"].has_perm("accounts.change_team", other)


def test_a_team_created_in_the_django_admin_gets_its_group_and_an_audit_record(users, client):
    users["admin"].is_staff = users["admin"].is_superuser = True
    users["admin"].save()
    client.force_login(users["admin"])
    response = client.post(
        "/admin/accounts/team/add/", {"name": "Pricing", "description": "", "lead": users["engineer"].pk}
    )
    assert response.status_code == 302
    from apps.accounts.models import Team

    team = Team.objects.get(name="Pricing")
    assert team.group.name == "team:pricing"
    assert team.group.user_set.filter(username="engineer").exists()
    assert AuditEvent.objects.filter(action="team.create", object_id=str(team.pk), actor_username="admin").exists()


def test_role_changes_in_the_django_admin_are_audited(users, client):
    users["admin"].is_staff = users["admin"].is_superuser = True
    users["admin"].save()
    client.force_login(users["admin"])
    target = users["scientist"]
    approvers = Group.objects.get(name="Approvers")
    form = {
        "username": target.username,
        "email": target.email,
        "display_name": "",
        "is_active": "on",
        "groups": [g.pk for g in target.groups.all()] + [approvers.pk],
        "date_joined_0": "2026-01-01",
        "date_joined_1": "00:00:00",
        "last_login_0": "",
        "last_login_1": "",
    }
    response = client.post(f"/admin/accounts/user/{target.pk}/change/", form)
    assert response.status_code == 302, response.content[:500]
    event = AuditEvent.objects.filter(action="user.update", object_id=str(target.pk)).latest("sequence")
    assert event.actor_username == "admin"
    assert event.changes["groups"] == [["Data scientists"], ["Approvers", "Data scientists"]]
