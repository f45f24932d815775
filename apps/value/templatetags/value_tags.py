"""Money and ROI as the value pages show them: grouped digits, two places, "n/a" for no ROI."""

from decimal import Decimal

from django import template

register = template.Library()


@register.filter
def money(amount, currency: str = "") -> str:
    if amount is None or amount == "":
        return "—"
    text = f"{Decimal(amount):,.2f}"
    return f"{text} {currency}".strip()


@register.filter
def roi_percent(summary) -> str:
    """The ROI of a summary in percent, or "n/a" when nothing was spent."""
    value = getattr(summary, "roi_percent", None)
    return "n/a" if value is None else f"{value} %"


@register.filter
def payback(summary) -> str:
    if summary is None or summary.payback_date is None:
        return "not yet"
    months = Decimal(summary.payback_days) / Decimal("30.4375")
    return f"{summary.payback_date:%Y-%m-%d} ({summary.payback_days} days, {months:.1f} months)"
