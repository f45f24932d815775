"""Use cases in the Share dialog and the access report. apps.value registers them from its
AppConfig.ready() with `register_use_cases()` below (the same code); the test installs it for
its own duration so it holds whether or not that line is in place yet."""

import pytest
from django.urls import reverse

from apps.accounts import sharing
from apps.audit.models import AuditEvent

pytestmark = pytest.mark.django_db


def use_case_shareable() -> sharing.Shareable:
    from apps.value import permissions, selectors, services
    from apps.value.models import UseCase

    return sharing.Shareable(
        kind="usecase",
        model=UseCase,
        label="use case",
        levels=(sharing.Level("view", "view", "view_usecase"), sharing.Level("change", "change", "change_usecase")),
        lookup=lambda user, pk: (
            selectors.visible_use_cases(user).select_related("owner", "team__lead").filter(pk=pk).first()
        ),
        can_manage=permissions.can_manage,
        share=lambda obj, by, level, user, team, grant: services.share_use_case(
            use_case=obj, grantee=user or team, level=level.key, by=by, grant=grant
        ),
        visible=selectors.visible_use_cases,
        url=lambda obj: reverse("value:use_case", args=[obj.slug]),
    )


@pytest.fixture
def use_case(monkeypatch, owner):
    from apps.value.models import UseCase

    monkeypatch.setitem(sharing.REGISTRY, "usecase", use_case_shareable())
    return UseCase.objects.create(name="Card fraud", slug="card-fraud", owner=owner, visibility="private")


def test_the_owner_shares_a_use_case_with_a_team_and_takes_it_back(client, owner, team, use_case):
    client.force_login(owner)
    url = reverse("accounts:share", args=["usecase", use_case.pk])
    assert client.post(url, {"teams": [team.pk], "level": "change"}, HTTP_HX_REQUEST="true").status_code == 200
    grants = sharing.read_grants(sharing.REGISTRY["usecase"], use_case)
    assert [(g.grantee, g.levels) for g in grants] == [(team, ["view", "change"])]
    revoke = reverse("accounts:share_revoke", args=["usecase", use_case.pk])
    assert client.post(revoke, {"grantee": f"team:{team.pk}"}, HTTP_HX_REQUEST="true").status_code == 200
    assert sharing.read_grants(sharing.REGISTRY["usecase"], use_case) == []
    assert AuditEvent.objects.filter(action="value.use_case.unshared", object_id=str(use_case.pk)).exists()


def test_others_get_404_for_a_use_case_share_dialog(client, users, use_case):
    client.force_login(users["nobody"])
    assert client.get(reverse("accounts:share", args=["usecase", use_case.pk])).status_code == 404


def test_the_access_report_lists_use_cases_shared_via_a_team(users, owner, team, use_case):
    sharing.grant(shareable=sharing.REGISTRY["usecase"], obj=use_case, by=owner, level="view", team=team)
    sections = {section.shareable.kind: section for section in sharing.access_report(users["engineer"])}
    assert [item.reasons for item in sections["usecase"].objects] == [["via team Fraud Squad: view"]]
