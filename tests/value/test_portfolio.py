"""Portfolio figures: only the use cases the user may see count; filters; funnel; time to
production; a fixed number of queries."""

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from apps.value import selectors, services
from apps.value.models import StageChange, UseCase
from tests.conftest import make_user
from tests.value.conftest import cost, make_use_case, value

pytestmark = pytest.mark.django_db
D = Decimal
JAN = (date(2025, 1, 1), date(2025, 1, 31))


@pytest.fixture
def cases(users, risk_team):
    public = make_use_case(users["owner"], "Public churn", team=risk_team)
    private = make_use_case(users["owner"], "Private fraud", visibility=UseCase.Visibility.PRIVATE, team=risk_team)
    cost(public, *JAN, "1000")
    value(public, *JAN, "1500")
    cost(private, *JAN, "9000")
    value(private, *JAN, "100")
    return {"public": public, "private": private}


def test_totals_include_only_the_use_cases_the_user_may_see(users, cases):
    outsider = selectors.portfolio(users["scientist"])
    assert [row.use_case.name for row in outsider.rows] == ["Public churn"]
    assert outsider.totals["EUR"].cost == D("1000.00")
    assert outsider.totals["EUR"].value == D("1500.00")
    insider = selectors.portfolio(users["owner"])
    assert insider.totals["EUR"].cost == D("10000.00")
    assert insider.totals["EUR"].value == D("1600.00")


def test_a_shared_private_use_case_counts_for_whom_it_is_shared_with(users, cases):
    services.share_use_case(use_case=cases["private"], grantee=users["scientist"], level="view", by=users["owner"])
    assert selectors.portfolio(users["scientist"]).totals["EUR"].cost == D("10000.00")


def test_anonymous_users_see_nothing(cases):
    from django.contrib.auth.models import AnonymousUser

    assert selectors.portfolio(AnonymousUser()).rows == []


def test_ranking_puts_best_roi_first_and_no_cost_last(users, cases):
    free = make_use_case(users["owner"], "No cost yet")
    value(free, *JAN, "10")
    names = [row.use_case.name for row in selectors.portfolio(users["owner"]).ranked]
    assert names == ["Public churn", "Private fraud", "No cost yet"]


def test_filters_by_team_stage_and_period(users, cases):
    other = make_use_case(users["owner"], "Untagged")
    services.change_stage(use_case=other, by=users["owner"], stage="scoping")
    assert [r.use_case.name for r in selectors.portfolio(users["owner"], stage="scoping").rows] == ["Untagged"]
    team = cases["public"].team
    assert {r.use_case.name for r in selectors.portfolio(users["owner"], team=team).rows} == {
        "Public churn",
        "Private fraud",
    }
    half = selectors.portfolio(users["owner"], start=date(2025, 1, 17), end=date(2025, 2, 28))
    assert half.totals["EUR"].cost == D("4838.71")  # 15 of 31 days of 10,000


def test_currencies_are_never_added_together(users, cases):
    pounds = make_use_case(users["owner"], "Sterling", currency="GBP")
    cost(pounds, *JAN, "500")
    figures = selectors.portfolio(users["owner"])
    assert set(figures.totals) == {"EUR", "GBP"}
    assert figures.totals["GBP"].cost == D("500.00")
    assert figures.totals["EUR"].cost == D("10000.00")


def test_a_mixed_currency_use_case_is_reported_not_summed(users, cases):
    cost(cases["public"], *JAN, "10", currency="USD")
    figures = selectors.portfolio(users["owner"])
    assert any("Public churn" in error and "USD" in error for error in figures.errors)
    assert figures.totals["EUR"].cost == D("9000.00")


def test_funnel_counts_use_cases_per_stage(users, cases):
    services.change_stage(use_case=cases["public"], by=users["owner"], stage="production")
    funnel = {stage: count for stage, _, count in selectors.portfolio(users["owner"]).funnel}
    assert funnel["production"] == 1 and funnel["idea"] == 1 and funnel["retired"] == 0


def test_time_to_production_is_days_from_creation_to_first_production(users, cases):
    use_case = cases["public"]
    StageChange.objects.filter(use_case=use_case).update(changed_at=timezone.now() - timedelta(days=90))
    services.change_stage(use_case=use_case, by=users["owner"], stage="production")
    figures = selectors.portfolio(users["owner"])
    row = next(row for row in figures.rows if row.use_case == use_case)
    assert row.days_to_production == 90
    assert figures.median_days_to_production == 90


def test_the_portfolio_takes_a_fixed_number_of_queries(users, cases, django_assert_max_num_queries):
    for n in range(10):
        extra = make_use_case(users["owner"], f"Extra {n}")
        cost(extra, *JAN, "10")
        value(extra, *JAN, "20")
    viewer = make_user("viewer")
    with django_assert_max_num_queries(6):
        figures = selectors.portfolio(viewer)
    assert len(figures.rows) == 11
