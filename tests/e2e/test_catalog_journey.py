"""Journey (a), catalog part: a scientist searches the catalog, opens a PII dataset whose
content is locked, requests access; its owner approves in another browser; the scientist then
sees the sample rows."""

import pytest

from apps.accounts import services as accounts
from tests.catalog.factories import make_dataset
from tests.conftest import PASSWORD, make_user
from tests.e2e.conftest import sign_in

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e]


def test_scientist_requests_access_and_owner_approves_in_the_browser(browser, live_server, screenshot):
    make_user("sam", "Data scientists")
    owner = make_user("olga", "Data scientists")
    ops = accounts.create_team(name="Platform Ops", by=owner, lead=owner)
    accounts.add_team_member(team=ops, user=owner, by=owner)
    make_dataset(owner, "Card holders", classification="pii", team=ops, tags=["cards"])
    make_dataset(owner, "Branch list", classification="public", team=ops)

    page = sign_in(browser, live_server, "sam", PASSWORD)
    page.click("text=Catalog")
    page.fill("#catalog-q", "card")
    page.press("#catalog-q", "Enter")
    page.wait_for_selector('[data-testid="dataset-result"]:has-text("Card holders")')
    screenshot(page, "a1-catalog-search")
    page.click('[data-testid="dataset-result"]:has-text("Card holders")')
    page.click('button[data-bs-target="#tab-profile"]')
    page.wait_for_selector("#tab-profile.active.show")
    page.wait_for_selector('[data-testid="content-locked"]')
    page.click('button[data-bs-target="#tab-access"]')
    page.fill("#id_purpose", "Features for the card fraud model")
    page.click("text=Request access")
    page.wait_for_selector("text=Access requested")
    screenshot(page, "a2-access-requested")

    approver = sign_in(browser, live_server, "olga", PASSWORD)
    approver.goto(f"{live_server.url}/catalog/access/")
    row = approver.locator('[data-testid="inbox-row"]:has-text("Card holders")')
    row.locator('input[name="comment"]').fill("Approved for the fraud model")
    row.locator('button[value="approve"]').click()
    approver.wait_for_selector("text=Decision recorded")
    screenshot(approver, "a3-owner-approved")

    page.reload(wait_until="networkidle")
    page.click('button[data-bs-target="#tab-profile"]')
    page.wait_for_selector("#tab-profile.active.show")
    page.wait_for_selector('[data-testid="sample-rows"]')
    page.wait_for_timeout(400)  # let the tab finish fading in before the screenshot
    screenshot(page, "a4-content-visible")
    assert page.locator('[data-testid="sample-rows"] tbody tr').count() == 3
