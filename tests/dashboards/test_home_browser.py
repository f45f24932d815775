"""The role homes in a real browser: the htmx widgets of other apps load in place of their
placeholders, and the role switcher moves between homes (CSP allows no inline script)."""

import pytest

from apps.accounts.roles import APPROVER
from apps.dashboards import selectors
from tests.conftest import PASSWORD
from tests.e2e.conftest import sign_in

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_the_owner_home_loads_the_portfolio_widget_in_place_of_its_placeholder(users, live_server, browser):  # noqa: F811
    if selectors.url_or_none("value:home_widget") is None:
        pytest.skip("the value app does not serve its home widget yet")
    from playwright.sync_api import expect

    page = sign_in(browser, live_server, "owner", PASSWORD)
    expect(page.locator('[data-testid="fragment"]')).to_have_count(0)
    expect(page.locator('[data-role-home="owner"] .card').first).to_be_visible()
    page.context.close()


def test_the_role_switcher_moves_between_homes(users, live_server, browser):  # noqa: F811
    from django.contrib.auth.models import Group
    from playwright.sync_api import expect

    users["engineer"].groups.add(Group.objects.get(name=APPROVER))
    page = sign_in(browser, live_server, "engineer", PASSWORD)
    expect(page.locator('[data-role-home="engineer"]')).to_be_visible()
    page.get_by_role("link", name="Approver", exact=True).click()
    expect(page.locator('[data-role-home="approver"]')).to_be_visible()
    page.goto(f"{live_server.url}/")
    expect(page.locator('[data-role-home="approver"]')).to_be_visible()
    page.context.close()
