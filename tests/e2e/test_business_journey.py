"""Journey (c): a business owner opens the portfolio, filters it, opens a use case and reads
its ROI chart (cumulative cost and value with the payback marker), then the printable page."""

from datetime import date
from decimal import Decimal

import pytest

from apps.accounts import services as accounts
from apps.value import services
from apps.value.models import CostEntry, UseCase, ValueEntry
from tests.conftest import PASSWORD, make_user
from tests.e2e.conftest import sign_in

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e]


def _monthly(use_case: UseCase, costs: list[int], values: list[int]) -> None:
    for index, (cost, value) in enumerate(zip(costs, values, strict=True)):
        start, end = date(2025, index + 1, 1), date(2025, index + 1, 28)
        CostEntry.objects.create(
            use_case=use_case, category="people", period_start=start, period_end=end, amount=Decimal(cost)
        )
        if value:
            ValueEntry.objects.create(
                use_case=use_case, period_start=start, period_end=end, amount=Decimal(value), evidence="Finance report"
            )


def test_business_owner_reads_the_portfolio_and_a_use_cases_roi_chart(browser, live_server, screenshot):
    owner = make_user("omar", "Business owners")
    stranger = make_user("sam", "Business owners")
    team = accounts.create_team(name="Risk Analytics", by=owner, lead=owner)
    accounts.add_team_member(team=team, user=owner, by=owner)
    churn = services.create_use_case(
        by=owner,
        name="Customer churn reduction",
        team=team,
        expected_annual_value="200000",
        target_production_date=date(2025, 3, 1),
    )
    services.change_stage(use_case=churn, by=owner, stage="production", note="Live")
    _monthly(churn, [20000, 15000, 8000, 5000, 5000, 5000], [0, 0, 9000, 16000, 24000, 30000])
    fraud = services.create_use_case(by=owner, name="Card fraud triage", team=team)
    services.change_stage(use_case=fraud, by=owner, stage="validation")
    _monthly(fraud, [12000, 12000, 12000, 12000, 12000, 12000], [0, 0, 0, 0, 1000, 2000])
    services.create_use_case(by=stranger, name="Someone else's secret", visibility=UseCase.Visibility.PRIVATE)

    page = sign_in(browser, live_server, "omar", PASSWORD)
    page.click("nav >> text=Use cases")
    page.wait_for_selector('[data-testid="portfolio-table"]')
    page.wait_for_selector('[data-testid="value-funnel"] .main-svg')
    page.wait_for_selector('[data-testid="value-roi-ranking"] .main-svg')
    rows = page.locator('[data-testid="use-case-row"]')
    assert rows.count() == 2
    assert "Someone else's secret" not in page.content()
    # Ranked by ROI: churn has paid back, fraud triage has not.
    assert "Customer churn reduction" in rows.nth(0).inner_text()
    screenshot(page, "c1-portfolio")

    page.select_option("#uc-stage", "validation")
    page.click('[data-testid="portfolio-filters"] button[type=submit]')
    page.wait_for_selector('[data-testid="use-case-row"]:has-text("Card fraud triage")')
    assert page.locator('[data-testid="use-case-row"]').count() == 1
    screenshot(page, "c2-portfolio-filtered")

    page.select_option("#uc-stage", "")
    page.click('[data-testid="portfolio-filters"] button[type=submit]')
    page.click('[data-testid="use-case-row"] >> text=Customer churn reduction')
    page.wait_for_selector('[data-testid="value-cumulative"] .main-svg')
    chart = page.locator('[data-testid="value-cumulative"]')
    assert "Payback" in chart.inner_text()
    assert page.locator('[data-testid="summary-payback"]').inner_text().startswith("2025-")
    assert page.locator('[data-testid="stage-history"] li').count() == 2
    page.wait_for_timeout(300)  # let Plotly finish its transition before the screenshot
    screenshot(page, "c3-use-case-roi-chart")

    page.goto(f"{live_server.url}/use-cases/print/")
    page.wait_for_selector('[data-testid="print-table"]')
    screenshot(page, "c4-portfolio-printable")
