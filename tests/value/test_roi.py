"""ROI arithmetic on fixed cases: pure functions, no database."""

from datetime import date
from decimal import Decimal

import pytest

from apps.value import roi
from apps.value.roi import Span

D = Decimal


def month(year: int, number: int, amount: str, currency: str = "EUR") -> Span:
    import calendar

    last = calendar.monthrange(year, number)[1]
    return Span(date(year, number, 1), date(year, number, last), D(amount), currency)


def test_roi_is_value_minus_cost_over_cost():
    summary = roi.summarise(costs=[month(2025, 1, "1000")], values=[month(2025, 1, "1500")], currency="EUR")
    assert summary.cost == D("1000.00")
    assert summary.value == D("1500.00")
    assert summary.net == D("500.00")
    assert summary.roi == D("0.5000")
    assert summary.roi_percent == D("50.0")


def test_zero_cost_has_no_roi():
    summary = roi.summarise(costs=[], values=[month(2025, 1, "1500")], currency="EUR")
    assert summary.cost == D("0")
    assert summary.roi is None
    assert summary.payback_date is None


def test_negative_value_gives_a_roi_below_minus_one_hundred_percent():
    summary = roi.summarise(costs=[month(2025, 1, "1000")], values=[month(2025, 1, "-200")], currency="EUR")
    assert summary.net == D("-1200.00")
    assert summary.roi == D("-1.2000")


def test_payback_never_reached_when_value_stays_below_cost():
    costs = [month(2025, m, "1000") for m in range(1, 13)]
    values = [month(2025, m, "900") for m in range(1, 13)]
    summary = roi.summarise(costs=costs, values=values, currency="EUR")
    assert summary.payback_date is None
    assert summary.payback_days is None
    assert summary.roi == D("-0.1000")


def test_payback_date_is_the_first_day_cumulative_value_catches_up():
    # 3,000 spent in January; value 100 a day from February: 30 days of February reach 3,000.
    costs = [month(2025, 1, "3000")]
    values = [Span(date(2025, 2, 1), date(2025, 3, 31), D("5900"))]  # 59 days at 100
    summary = roi.summarise(costs=costs, values=values, currency="EUR")
    assert summary.payback_date == date(2025, 3, 2)
    assert summary.payback_days == 61  # 1 January to 2 March, both included


def test_a_range_takes_a_pro_rata_share_of_entries_that_straddle_it():
    # A 1,000 cost over ten days; the range keeps four of them.
    cost = Span(date(2025, 1, 1), date(2025, 1, 10), D("1000"))
    assert roi.total([cost], date(2025, 1, 7), date(2025, 1, 31)) == D("400.00")
    assert roi.total([cost], date(2024, 12, 1), date(2025, 1, 1)) == D("100.00")
    assert roi.total([cost], date(2025, 2, 1), date(2025, 2, 28)) == D("0.00")


def test_partial_periods_add_up_to_the_whole():
    entry = Span(date(2025, 1, 1), date(2025, 3, 31), D("1000"))  # 90 days
    parts = [
        roi.total([entry], date(2025, 1, 1), date(2025, 1, 31)),
        roi.total([entry], date(2025, 2, 1), date(2025, 2, 28)),
        roi.total([entry], date(2025, 3, 1), date(2025, 3, 31)),
    ]
    assert parts == [D("344.44"), D("311.11"), D("344.44")]
    assert abs(sum(parts) - D("1000")) <= D("0.01")


def test_summary_over_a_range_prorates_cost_and_value():
    costs = [Span(date(2025, 1, 1), date(2025, 12, 31), D("36500"))]  # 100 a day
    values = [Span(date(2025, 7, 1), date(2025, 7, 31), D("6200"))]  # 200 a day
    summary = roi.summarise(costs=costs, values=values, currency="EUR", start=date(2025, 7, 16), end=date(2025, 8, 14))
    assert summary.cost == D("3000.00")
    assert summary.value == D("3200.00")
    assert summary.roi == D("0.0667")


def test_money_stays_decimal_and_rounds_half_even_at_the_end():
    entries = [Span(date(2025, 1, 1), date(2025, 1, 3), D("0.01")) for _ in range(3)]
    # Each day is 0.00333…; the sum over one day of three entries is 0.01, not 0.00 + 0.00 + 0.00.
    assert roi.total(entries, date(2025, 1, 1), date(2025, 1, 1)) == D("0.01")
    assert isinstance(roi.total(entries), Decimal)


def test_entries_in_another_currency_are_refused_not_converted():
    with pytest.raises(roi.MixedCurrencyError, match="USD"):
        roi.summarise(costs=[month(2025, 1, "1000", "EUR")], values=[month(2025, 1, "10", "USD")], currency="EUR")


def test_a_use_case_in_another_currency_sums_in_its_own():
    summary = roi.summarise(
        costs=[month(2025, 1, "1000", "GBP")], values=[month(2025, 1, "1100", "GBP")], currency="GBP"
    )
    assert summary.currency == "GBP"
    assert summary.net == D("100.00")


def test_forecast_spreads_the_expected_annual_value_from_the_target_date():
    forecast = roi.forecast(D("36500"), date(2025, 1, 1), date(2025, 3, 1), date(2025, 3, 10))
    assert forecast == D("1000.00")
    assert roi.forecast(D("36500"), date(2025, 6, 1), None, date(2025, 5, 1)) == D("0.00")
    assert roi.forecast(None, date(2025, 1, 1), None, date(2025, 5, 1)) is None


def test_forecast_against_actual_gap():
    summary = roi.summarise(
        costs=[],
        values=[Span(date(2025, 1, 1), date(2025, 1, 10), D("800"))],
        currency="EUR",
        start=date(2025, 1, 1),
        end=date(2025, 1, 10),
        expected_annual_value=D("36500"),
        forecast_from=date(2025, 1, 1),
    )
    assert summary.forecast_value == D("1000.00")
    assert summary.forecast_gap == D("-200.00")


def test_cumulative_series_ends_at_the_totals():
    costs = [month(2025, 1, "3100")]
    values = [month(2025, 2, "2800")]
    series = roi.cumulative_series(costs, values)
    assert series["dates"][0] == "2025-01-01" and series["dates"][-1] == "2025-02-28"
    assert series["cost"][-1] == 3100.0
    assert series["value"][-1] == 2800.0
