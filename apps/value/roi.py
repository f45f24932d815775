"""ROI arithmetic over cost and value entries: plain functions on plain rows, no database, so
the figures are checked on fixed cases (tests/value/test_roi.py).

Rules (also in the README):
- An entry covers whole days, both ends included, and is spread evenly over them. A range that
  takes part of an entry takes that share of its amount: amount × days in both / days of the
  entry ("pro-rated by days").
- Sums keep full `Decimal` precision and are rounded to cents (half-even) once, at the end.
- ROI = (value − cost) / cost, None ("n/a") when the cost is zero.
- Payback: the first day, counting from the range's start, on which cumulative value has
  caught up with a positive cumulative cost. The payback period is the number of days from
  the first day with a cost to that day, both included. None when it never happens.
- Forecast: the expected annual value spread evenly over 365 days from the target production
  date (no forecast before it, or without an expected value).
- Entries in another currency than the use case's are refused (`MixedCurrencyError`):
  Causeway never converts.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Protocol

CENT = Decimal("0.01")
ZERO = Decimal("0")
DAYS_PER_YEAR = 365
MAX_DAILY_POINTS = 1500


class MixedCurrencyError(ValueError):
    """Figures in different currencies would have to be converted; Causeway refuses."""


class Entry(Protocol):
    period_start: date
    period_end: date
    amount: Decimal
    currency: str


@dataclass(frozen=True)
class Span:
    """A plain entry (used by tests and by the accrual)."""

    period_start: date
    period_end: date
    amount: Decimal
    currency: str = "EUR"


@dataclass
class Summary:
    currency: str
    start: date | None
    end: date | None
    cost: Decimal = ZERO
    value: Decimal = ZERO
    forecast_value: Decimal | None = None
    payback_date: date | None = None
    payback_days: int | None = None
    cost_by_category: dict[str, Decimal] = field(default_factory=dict)

    @property
    def net(self) -> Decimal:
        return self.value - self.cost

    @property
    def roi(self) -> Decimal | None:
        """(value − cost) / cost as a fraction (0.25 is 25 %); None when nothing was spent."""
        if self.cost == ZERO:
            return None
        return ((self.value - self.cost) / self.cost).quantize(Decimal("0.0001"), rounding=ROUND_HALF_EVEN)

    @property
    def roi_percent(self) -> Decimal | None:
        roi = self.roi
        return None if roi is None else (roi * 100).quantize(Decimal("0.1"), rounding=ROUND_HALF_EVEN)

    @property
    def forecast_gap(self) -> Decimal | None:
        """Actual minus forecast value (negative: behind the business case)."""
        return None if self.forecast_value is None else self.value - self.forecast_value

    def as_dict(self) -> dict:
        return {
            "currency": self.currency,
            "start": self.start,
            "end": self.end,
            "cost": self.cost,
            "value": self.value,
            "net": self.net,
            "roi": self.roi,
            "payback_date": self.payback_date,
            "payback_days": self.payback_days,
            "forecast_value": self.forecast_value,
            "cost_by_category": self.cost_by_category,
        }


def money(amount: Decimal) -> Decimal:
    return amount.quantize(CENT, rounding=ROUND_HALF_EVEN)


def days_in(start: date, end: date) -> int:
    return (end - start).days + 1


def overlap_days(entry: Entry, start: date | None, end: date | None) -> int:
    lo = max(entry.period_start, start) if start else entry.period_start
    hi = min(entry.period_end, end) if end else entry.period_end
    return max(0, (hi - lo).days + 1)


def prorated(entry: Entry, start: date | None, end: date | None) -> Decimal:
    """The share of `entry` inside [start, end] (None: open), unrounded."""
    days = overlap_days(entry, start, end)
    if days == 0:
        return ZERO
    total = days_in(entry.period_start, entry.period_end)
    if days == total:
        return Decimal(entry.amount)
    return Decimal(entry.amount) * days / total


def check_currency(entries: Iterable[Entry], currency: str) -> None:
    others = {entry.currency for entry in entries if entry.currency != currency}
    if others:
        raise MixedCurrencyError(
            f"Entries in {', '.join(sorted(others))} cannot be added to figures in {currency}: "
            "Causeway does not convert currencies."
        )


def total(entries: Iterable[Entry], start: date | None = None, end: date | None = None) -> Decimal:
    return money(sum((prorated(entry, start, end) for entry in entries), ZERO))


def forecast(
    expected_annual_value: Decimal | None, from_date: date | None, start: date | None, end: date | None
) -> Decimal | None:
    """Expected value over [start, end]: the annual figure spread over 365 days from `from_date`."""
    if expected_annual_value is None or from_date is None or end is None:
        return None
    lo = max(from_date, start) if start else from_date
    if end < lo:
        return money(ZERO)
    return money(Decimal(expected_annual_value) * days_in(lo, end) / DAYS_PER_YEAR)


def daily_increments(entries: Iterable[Entry], start: date, end: date) -> dict[date, Decimal]:
    """Each day's share of the entries inside [start, end]."""
    per_day: dict[date, Decimal] = {}
    for entry in entries:
        lo, hi = max(entry.period_start, start), min(entry.period_end, end)
        if hi < lo:
            continue
        share = Decimal(entry.amount) / days_in(entry.period_start, entry.period_end)
        day = lo
        while day <= hi:
            per_day[day] = per_day.get(day, ZERO) + share
            day += timedelta(days=1)
    return per_day


def extent(costs: Sequence[Entry], values: Sequence[Entry]) -> tuple[date, date] | None:
    every = [*costs, *values]
    if not every:
        return None
    return min(e.period_start for e in every), max(e.period_end for e in every)


def payback(
    costs: Sequence[Entry], values: Sequence[Entry], start: date | None = None, end: date | None = None
) -> tuple[date | None, int | None]:
    """(payback date, payback period in days), or (None, None) when value never catches up."""
    bounds = extent(costs, values)
    if bounds is None:
        return None, None
    lo, hi = max(bounds[0], start) if start else bounds[0], min(bounds[1], end) if end else bounds[1]
    if hi < lo:
        return None, None
    cost_days, value_days = daily_increments(costs, lo, hi), daily_increments(values, lo, hi)
    cumulative_cost = cumulative_value = ZERO
    first_cost_day: date | None = None
    day = lo
    while day <= hi:
        cumulative_cost += cost_days.get(day, ZERO)
        cumulative_value += value_days.get(day, ZERO)
        if first_cost_day is None and cumulative_cost > ZERO:
            first_cost_day = day
        # Compared at cents, as the figures are shown: no payback "missed" by a rounding residue.
        if first_cost_day is not None and money(cumulative_value) >= money(cumulative_cost):
            return day, days_in(first_cost_day, day)
        day += timedelta(days=1)
    return None, None


def summarise(
    *,
    costs: Sequence[Entry],
    values: Sequence[Entry],
    currency: str,
    start: date | None = None,
    end: date | None = None,
    expected_annual_value: Decimal | None = None,
    forecast_from: date | None = None,
    today: date | None = None,
) -> Summary:
    """Cost, value, net, ROI, payback and forecast of one use case over [start, end] (None:
    open). Raises MixedCurrencyError when an entry is not in `currency`."""
    check_currency(costs, currency)
    check_currency(values, currency)
    summary = Summary(currency=currency, start=start, end=end)
    summary.cost = total(costs, start, end)
    summary.value = total(values, start, end)
    by_category: dict[str, Decimal] = {}
    for entry in costs:
        category = getattr(entry, "category", "other")
        by_category[category] = by_category.get(category, ZERO) + prorated(entry, start, end)
    summary.cost_by_category = {key: money(amount) for key, amount in sorted(by_category.items())}
    summary.payback_date, summary.payback_days = payback(costs, values, start, end)
    summary.forecast_value = forecast(expected_annual_value, forecast_from, start, end or today)
    return summary


def cumulative_series(
    costs: Sequence[Entry], values: Sequence[Entry], start: date | None = None, end: date | None = None
) -> dict[str, list]:
    """Daily cumulative cost and value (for the curves): {"dates", "cost", "value"} as floats
    for plotting only — every figure shown as money comes from `summarise`."""
    bounds = extent(costs, values)
    if bounds is None:
        return {"dates": [], "cost": [], "value": []}
    lo, hi = max(bounds[0], start) if start else bounds[0], min(bounds[1], end) if end else bounds[1]
    cost_days, value_days = daily_increments(costs, lo, hi), daily_increments(values, lo, hi)
    dates, cost_line, value_line = [], [], []
    cumulative_cost = cumulative_value = ZERO
    # A point a day for up to about four years, a point a week beyond (the sums stay daily).
    step = 1 if (hi - lo).days <= MAX_DAILY_POINTS else 7
    day = lo
    while day <= hi:
        cumulative_cost += cost_days.get(day, ZERO)
        cumulative_value += value_days.get(day, ZERO)
        if (day - lo).days % step and day != hi:
            day += timedelta(days=1)
            continue
        dates.append(day.isoformat())
        cost_line.append(float(money(cumulative_cost)))
        value_line.append(float(money(cumulative_value)))
        day += timedelta(days=1)
    return {"dates": dates, "cost": cost_line, "value": value_line}
