"""Platform admins' pages: users (search, roles, invite, deactivate), teams, access report."""

import re

import pytest
from django.core import mail
from django.urls import reverse

from apps.accounts import services as accounts
from apps.accounts import sharing
from apps.accounts.models import User
from apps.audit.models import AuditEvent
from tests.accounts.conftest import make_endpoint, make_experiment, make_model
from tests.catalog.factories import make_dataset
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db

ADMIN_PAGES = [
    ("accounts:manage_users", []),
    ("accounts:manage_invite", []),
    ("accounts:team_create", []),
    ("accounts:bulk_share", []),
]


@pytest.mark.parametrize("name,args", ADMIN_PAGES)
@pytest.mark.parametrize("role", ["scientist", "approver", "ops", "nobody"])
def test_admin_pages_do_not_exist_for_other_roles(client, users, role, name, args):
    client.force_login(users[role])
    assert client.get(reverse(name, args=args)).status_code == 404


@pytest.mark.parametrize("name", ["accounts:manage_user", "accounts:manage_user_access"])
def test_user_pages_do_not_exist_for_other_roles(client, users, name):
    client.force_login(users["engineer"])
    assert client.get(reverse(name, args=[users["scientist"].pk])).status_code == 404


def test_the_users_list_searches_and_filters_by_role(client, users):
    client.force_login(users["admin"])
    page = client.get(reverse("accounts:manage_users"), {"role": "approver"})
    names = [person.username for person in page.context["page"]]
    assert names == ["approver"]
    page = client.get(reverse("accounts:manage_users"), {"q": "scien"})
    assert [person.username for person in page.context["page"]] == ["scientist"]
    page = client.get(reverse("accounts:manage_users"), {"role": "none"})
    assert [person.username for person in page.context["page"]] == ["nobody"]


def test_the_users_list_costs_a_bounded_number_of_queries(client, users, django_assert_max_num_queries):
    from tests.conftest import make_user

    for index in range(30):
        make_user(f"extra{index}", "Data scientists")
    client.force_login(users["admin"])
    with django_assert_max_num_queries(10):
        response = client.get(reverse("accounts:manage_users"))
    assert response.status_code == 200


def _invite(client, **extra):
    data = {"username": "newbie", "email": "newbie@example.test", "display_name": "New Bie", **extra}
    return client.post(reverse("accounts:manage_invite"), data)


def test_an_invitation_creates_a_passwordless_account_and_mails_a_single_use_link(
    client, users, django_capture_on_commit_callbacks
):
    client.force_login(users["admin"])
    with django_capture_on_commit_callbacks(execute=True):
        response = _invite(client, roles=["Data scientists"])
    assert response.status_code == 302
    newbie = User.objects.get(username="newbie")
    assert not newbie.has_usable_password()
    assert [group.name for group in newbie.groups.all()] == ["Data scientists"]
    assert AuditEvent.objects.filter(action="user.invite", object_id=str(newbie.pk)).exists()
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["newbie@example.test"]
    link = re.search(r"http://testserver(/accounts/set-password/\S+)", mail.outbox[0].body).group(1)

    client.logout()
    form_page = client.get(link, follow=True)  # Django swaps the token for a session marker
    assert form_page.status_code == 200 and form_page.context["validlink"]
    done = client.post(
        form_page.redirect_chain[-1][0],
        {"new_password1": "a fine new passphrase 9", "new_password2": "a fine new passphrase 9"},
    )
    assert done.status_code == 302 and done["Location"] == reverse("login")
    assert (
        client.post(reverse("login"), {"username": "newbie", "password": "a fine new passphrase 9"}).status_code == 302
    )
    client.logout()
    assert not client.get(link, follow=True).context["validlink"]  # single use


def test_inviting_a_taken_username_is_a_clear_400(client, users):
    client.force_login(users["admin"])
    response = _invite(client, username="scientist")
    assert response.status_code == 400
    assert "taken" in response.content.decode()


def test_a_deactivated_user_cannot_sign_in_nor_use_tokens_nor_keep_their_session(client, users):
    person = users["scientist"]
    _, raw = accounts.create_token(user=person, name="script")
    other = type(client)()
    other.force_login(person)
    assert other.get(reverse("accounts:profile")).status_code == 200

    client.force_login(users["admin"])
    response = client.post(reverse("accounts:manage_user_active", args=[person.pk]), {"action": "deactivate"})
    assert response.status_code == 302
    person.refresh_from_db()
    assert not person.is_active
    assert AuditEvent.objects.filter(action="user.deactivate", object_id=str(person.pk)).exists()

    assert other.get(reverse("accounts:profile")).status_code == 302  # session ended
    fresh = type(client)()
    assert fresh.post(reverse("login"), {"username": "scientist", "password": PASSWORD}).status_code == 200
    assert fresh.get(reverse("api:me"), HTTP_AUTHORIZATION=f"Bearer {raw}").status_code == 401
    assert accounts.authenticate_token(raw) is None


def test_a_reactivated_user_can_sign_in_again(client, users):
    person = users["scientist"]
    accounts.set_active(user=person, active=False, by=users["admin"])
    client.force_login(users["admin"])
    client.post(reverse("accounts:manage_user_active", args=[person.pk]), {"action": "reactivate"})
    client.logout()
    assert client.post(reverse("login"), {"username": "scientist", "password": PASSWORD}).status_code == 302


def test_an_admin_cannot_deactivate_themselves(client, users):
    client.force_login(users["admin"])
    client.post(reverse("accounts:manage_user_active", args=[users["admin"].pk]), {"action": "deactivate"})
    users["admin"].refresh_from_db()
    assert users["admin"].is_active


def test_editing_roles_is_audited_and_staff_follows_the_admin_role(client, users):
    person = users["engineer"]
    client.force_login(users["admin"])
    client.post(reverse("accounts:manage_user_roles", args=[person.pk]), {"roles": ["ML engineers", "Platform admins"]})
    person.refresh_from_db()
    assert person.is_staff
    assert sorted(person.groups.values_list("name", flat=True)) == ["ML engineers", "Platform admins"]
    event = AuditEvent.objects.filter(action="user.set_roles", object_id=str(person.pk)).latest("sequence")
    assert event.after["roles"] == ["ML engineers", "Platform admins"]
    client.post(reverse("accounts:manage_user_roles", args=[person.pk]), {"roles": ["ML engineers"]})
    person.refresh_from_db()
    assert not person.is_staff


def test_admins_create_teams_and_manage_members_and_leads(client, users):
    client.force_login(users["admin"])
    response = client.post(reverse("accounts:team_create"), {"name": "Credit Risk", "lead": "engineer"})
    assert response.status_code == 302
    team = users["engineer"].teams_led.get()
    client.post(reverse("accounts:team_member", args=[team.slug]), {"username": "scientist", "action": "add"})
    assert team.group.user_set.filter(username="scientist").exists()
    client.post(reverse("accounts:team_member", args=[team.slug]), {"username": "scientist", "action": "lead"})
    team.refresh_from_db()
    assert team.lead == users["scientist"]
    client.post(reverse("accounts:team_member", args=[team.slug]), {"username": "engineer", "action": "remove"})
    assert not team.group.user_set.filter(username="engineer").exists()
    actions = set(AuditEvent.objects.filter(object_type="accounts.team").values_list("action", flat=True))
    assert {"team.create", "team.add_member", "team.set_lead", "team.remove_member"} <= actions


def test_a_team_lead_manages_members_but_not_the_lead_and_others_get_404(client, users):
    team = accounts.create_team(name="Credit Risk", lead=users["engineer"], by=users["admin"])
    client.force_login(users["engineer"])
    client.post(reverse("accounts:team_member", args=[team.slug]), {"username": "scientist", "action": "add"})
    assert team.group.user_set.filter(username="scientist").exists()
    client.post(reverse("accounts:team_member", args=[team.slug]), {"username": "scientist", "action": "lead"})
    team.refresh_from_db()
    assert team.lead == users["engineer"]
    client.force_login(users["scientist"])
    url = reverse("accounts:team_member", args=[team.slug])
    assert client.post(url, {"username": "nobody", "action": "add"}).status_code == 404


def test_only_platform_admins_name_a_team_lead_even_through_the_service(users):
    """The rule lives in the service, not only in the view: the lead themself is refused and
    nothing is written."""
    from django.core.exceptions import PermissionDenied

    team = accounts.create_team(name="Credit Risk", lead=users["engineer"], by=users["admin"])
    accounts.add_team_member(team=team, user=users["scientist"], by=users["engineer"])
    with pytest.raises(PermissionDenied):
        accounts.set_team_lead(team=team, lead=users["scientist"], by=users["engineer"])
    team.refresh_from_db()
    assert team.lead == users["engineer"]
    assert not AuditEvent.objects.filter(action="team.set_lead").exists()


@pytest.fixture
def reach(users, owner, team):
    """The engineer (a member of `team`) reaches objects for every reason."""
    engineer = users["engineer"]
    own = make_dataset(engineer, "Engineer's own", visibility="private", profiled=False)
    hidden = make_dataset(owner, "Hidden", visibility="private", profiled=False)
    public = make_dataset(owner, "Public list", visibility="organisation", profiled=False)
    direct = make_experiment(owner, name="shared-directly")
    via_team = make_model(owner, name="shared-with-team")
    team_owned = make_model(owner, name="team-owned", team=team)
    invokable = make_endpoint(owner)
    sharing.grant(
        shareable=sharing.shareable_for_kind("experiment"), obj=direct, by=owner, level="change", user=engineer
    )
    sharing.grant(shareable=sharing.shareable_for_kind("model"), obj=via_team, by=owner, level="view", team=team)
    sharing.grant(shareable=sharing.shareable_for_kind("endpoint"), obj=invokable, by=owner, level="invoke", team=team)
    return locals()


def _reasons(sections) -> dict:
    return {(section.shareable.kind, str(item.obj)): item.reasons for section in sections for item in section.objects}


def test_the_access_report_says_what_a_user_reaches_and_why(users, reach):
    reasons = _reasons(sharing.access_report(users["engineer"]))
    assert reasons[("dataset", "Engineer's own")] == ["owner"]
    assert reasons[("dataset", "Public list")] == ["public"]
    assert ("dataset", "Hidden") not in reasons
    assert reasons[("experiment", "shared-directly")] == [
        "shared directly (change (log runs))",
        "shared directly (view)",
    ]
    assert reasons[("model", "shared-with-team")] == ["via team Fraud Squad: view"]
    assert reasons[("model", "team-owned")] == ["team"]
    assert reasons[("endpoint", str(reach["invokable"]))] == ["via team Fraud Squad: invoke (call the endpoint)"]
    assert ("environment", str(reach["invokable"].environment)) in reasons


def test_the_access_report_of_an_admin_says_admin(users, reach):
    reasons = _reasons(sharing.access_report(users["admin"]))
    assert reasons[("dataset", "Hidden")] == ["admin"]


def test_the_access_report_page_costs_a_bounded_number_of_queries(client, users, reach, django_assert_max_num_queries):
    client.force_login(users["admin"])
    url = reverse("accounts:manage_user_access", args=[users["engineer"].pk])
    with django_assert_max_num_queries(40):
        response = client.get(url)
    assert response.status_code == 200
    assert "shared-with-team" in response.content.decode()


def test_an_admin_opens_a_users_page_with_roles_teams_and_tokens(client, users, team):
    accounts.create_token(user=users["engineer"], name="laptop")
    client.force_login(users["admin"])
    page = client.get(reverse("accounts:manage_user", args=[users["engineer"].pk]))
    assert page.status_code == 200
    body = page.content.decode()
    assert "Fraud Squad" in body and "laptop" in body and 'data-testid="deactivate-button"' in body


def test_a_deactivated_member_can_be_removed_from_a_team_but_not_added(client, users, team):
    accounts.set_active(user=users["engineer"], active=False, by=users["admin"])
    client.force_login(users["admin"])
    url = reverse("accounts:team_member", args=[team.slug])
    client.post(url, {"username": "engineer", "action": "remove"})
    assert not team.group.user_set.filter(username="engineer").exists()
    client.post(url, {"username": "engineer", "action": "add"})
    assert not team.group.user_set.filter(username="engineer").exists()


def test_only_admins_and_the_lead_change_members_even_through_the_service(users):
    """The rule lives in the service too: a member who is not the lead is refused and nothing
    is written or audited."""
    from django.core.exceptions import PermissionDenied

    team = accounts.create_team(name="Fraud Ops", lead=users["engineer"], by=users["admin"])
    accounts.add_team_member(team=team, user=users["scientist"], by=users["engineer"])  # the lead
    with pytest.raises(PermissionDenied):
        accounts.add_team_member(team=team, user=users["ops"], by=users["scientist"])
    with pytest.raises(PermissionDenied):
        accounts.remove_team_member(team=team, user=users["engineer"], by=users["scientist"])
    assert set(team.group.user_set.values_list("username", flat=True)) == {"engineer", "scientist"}
    assert AuditEvent.objects.filter(action="team.add_member", actor=users["scientist"]).count() == 0
    accounts.remove_team_member(team=team, user=users["scientist"], by=users["admin"])
    assert set(team.group.user_set.values_list("username", flat=True)) == {"engineer"}
