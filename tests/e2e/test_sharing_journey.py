"""Journey (d): an admin shares a private, team-owned registered model with another team in
the Share dialog; a member of that team can then see it while another user still gets 404."""

import pytest
from playwright.sync_api import expect

from apps.accounts import services as accounts
from apps.audit.models import AuditEvent
from tests.accounts.conftest import make_model
from tests.conftest import PASSWORD, make_user
from tests.e2e.conftest import sign_in

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e]


def test_admin_shares_a_model_with_a_team_whose_member_then_sees_it(browser, live_server, screenshot):
    admin = make_user("ada", "Platform admins")
    owner = make_user("olga", "Data scientists")
    member = make_user("felix", "ML engineers")
    make_user("oscar", "ML engineers")
    risk = accounts.create_team(name="Risk Analytics", lead=owner, by=admin)
    fraud = accounts.create_team(name="Fraud Squad", by=admin)
    accounts.add_team_member(team=fraud, user=member, by=admin)
    model = make_model(owner, name="credit-scorer", team=risk, visibility="private")
    model_url = f"{live_server.url}/models/{model.name}/"

    felix = sign_in(browser, live_server, "felix", PASSWORD)
    assert felix.goto(model_url).status == 404
    screenshot(felix, "d1-member-gets-404-before-the-share")

    page = sign_in(browser, live_server, "ada", PASSWORD)
    page.goto(model_url)
    page.click('[data-testid="share-button"]')
    dialog = page.locator('[data-testid="share-dialog"]')
    dialog.locator('[data-testid="share-form"]').wait_for()
    expect(dialog.locator('[data-testid="access-row"][data-reason="team"]')).to_contain_text("Risk Analytics")
    screenshot(page, "d2-share-dialog-open")
    dialog.locator('select[name="teams"]').select_option(label="Fraud Squad")
    dialog.locator('select[name="level"]').select_option("view")
    dialog.locator('[data-testid="share-submit"]').click()
    expect(dialog.locator('[data-testid="share-notice"]')).to_be_visible()
    expect(dialog.locator('[data-testid="access-row"][data-reason="team_share"]')).to_contain_text("Fraud Squad")
    screenshot(page, "d3-shared-with-fraud-squad")
    assert AuditEvent.objects.filter(action="registry.model.shared", object_id=str(model.pk)).exists()

    response = felix.goto(model_url)
    assert response.status == 200
    expect(felix.locator("h1")).to_contain_text("credit-scorer")
    screenshot(felix, "d4-member-sees-the-model")

    oscar = sign_in(browser, live_server, "oscar", PASSWORD)
    assert oscar.goto(model_url).status == 404
    screenshot(oscar, "d5-other-user-still-gets-404")

    # The admin's access report for the member now says why they reach the model.
    page.goto(f"{live_server.url}/accounts/manage/users/{member.pk}/access/")
    expect(page.locator('[data-testid="report-model"]')).to_contain_text("via team Fraud Squad: view")
    screenshot(page, "d6-access-report-of-the-member")
