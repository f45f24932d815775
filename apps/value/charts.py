"""Plotly figures of the value pages, built in Python and drawn by the vendored plotly.js
through causeway.js (`<script type="application/json">` + `data-plotly-src`, CSP-safe).
Money is Decimal everywhere else; it becomes float here only to be drawn."""

from __future__ import annotations

from datetime import date

import plotly.graph_objects as go

from apps.value import roi

COST_COLOUR = "#dc3545"
VALUE_COLOUR = "#198754"
FORECAST_COLOUR = "#6c757d"
NET_COLOUR = "#0d6efd"
_MARGIN = {"l": 60, "r": 20, "t": 40, "b": 50}


def _layout(figure: go.Figure, *, title: str, height: int = 320, **extra) -> None:
    figure.update_layout(
        title={"text": title, "font": {"size": 14}},
        height=height,
        margin=_MARGIN,
        paper_bgcolor="rgba(0,0,0,0)",
        plot_bgcolor="rgba(0,0,0,0)",
        legend={"orientation": "h", "y": -0.2},
        **extra,
    )


def to_json(figure: go.Figure) -> str:
    """The figure as JSON safe inside a <script> element (names are user text: no `</script>`)."""
    text = figure.to_json()
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _f(amount) -> float:
    return float(amount)


def cumulative_figure(use_case, costs, values, summary: roi.Summary, *, start=None, end=None) -> dict | None:
    """Cumulative cost and value over time, the forecast line and the payback marker."""
    series = roi.cumulative_series(costs, values, start, end)
    if not series["dates"]:
        return None
    figure = go.Figure()
    figure.add_trace(
        go.Scatter(
            x=series["dates"], y=series["cost"], name="Cumulative cost", mode="lines", line={"color": COST_COLOUR}
        )
    )
    figure.add_trace(
        go.Scatter(
            x=series["dates"], y=series["value"], name="Cumulative value", mode="lines", line={"color": VALUE_COLOUR}
        )
    )
    if use_case.expected_annual_value and use_case.target_production_date:
        forecast_dates, forecast_values = [], []
        for day in series["dates"][:: max(1, len(series["dates"]) // 60)] + [series["dates"][-1]]:
            amount = roi.forecast(
                use_case.expected_annual_value, use_case.target_production_date, start, date.fromisoformat(day)
            )
            forecast_dates.append(day)
            forecast_values.append(_f(amount or 0))
        figure.add_trace(
            go.Scatter(
                x=forecast_dates,
                y=forecast_values,
                name="Forecast value",
                mode="lines",
                line={"color": FORECAST_COLOUR, "dash": "dash"},
            )
        )
    if summary.payback_date and summary.payback_date.isoformat() in series["dates"]:
        index = series["dates"].index(summary.payback_date.isoformat())
        figure.add_trace(
            go.Scatter(
                x=[summary.payback_date.isoformat()],
                y=[series["value"][index]],
                name=f"Payback {summary.payback_date.isoformat()}",
                mode="markers+text",
                text=["Payback"],
                textposition="top left",
                marker={"size": 13, "symbol": "star", "color": NET_COLOUR},
            )
        )
    _layout(
        figure,
        title=f"Cumulative cost and value ({summary.currency})",
        height=380,
        yaxis={"title": {"text": summary.currency}, "tickformat": ",.0f"},
        hovermode="x unified",
    )
    return {"id": "value-cumulative", "json": to_json(figure)}


def funnel_figure(funnel: list[tuple[str, str, int]]) -> dict:
    figure = go.Figure(
        go.Funnel(
            y=[label for _, label, _ in funnel],
            x=[count for _, _, count in funnel],
            textinfo="value",
            marker={"color": ["#adb5bd", "#6ea8fe", "#3d8bfd", "#0d6efd", "#198754", "#6c757d"]},
        )
    )
    _layout(figure, title="Use cases by stage", height=300)
    return {"id": "value-funnel", "json": to_json(figure)}


def value_vs_cost_figure(rows, currency: str) -> dict | None:
    rows = [row for row in rows if row.summary is not None and row.use_case.currency == currency]
    if not rows:
        return None
    names = [row.use_case.name for row in rows]
    figure = go.Figure()
    figure.add_trace(go.Bar(x=names, y=[_f(row.summary.cost) for row in rows], name="Cost", marker_color=COST_COLOUR))
    figure.add_trace(
        go.Bar(x=names, y=[_f(row.summary.value) for row in rows], name="Value", marker_color=VALUE_COLOUR)
    )
    figure.add_trace(
        go.Scatter(
            x=names, y=[_f(row.summary.net) for row in rows], name="Net", mode="markers", marker_color=NET_COLOUR
        )
    )
    _layout(
        figure,
        title=f"Value against cost ({currency})",
        barmode="group",
        yaxis={"title": {"text": currency}, "tickformat": ",.0f"},
    )
    return {"id": f"value-vs-cost-{currency.lower()}", "json": to_json(figure)}


def roi_ranking_figure(ranked) -> dict | None:
    rows = [row for row in ranked if row.summary is not None and row.summary.roi is not None]
    if not rows:
        return None
    rows = list(reversed(rows))  # best at the top of a horizontal bar chart
    figure = go.Figure(
        go.Bar(
            y=[row.use_case.name for row in rows],
            x=[_f(row.summary.roi_percent) for row in rows],
            orientation="h",
            marker_color=[VALUE_COLOUR if row.summary.roi >= 0 else COST_COLOUR for row in rows],
            text=[f"{row.summary.roi_percent} %" for row in rows],
            textposition="auto",
        )
    )
    _layout(figure, title="ROI ranking", height=max(240, 40 * len(rows) + 80), xaxis={"title": {"text": "ROI (%)"}})
    return {"id": "value-roi-ranking", "json": to_json(figure)}


def time_to_production_figure(rows) -> dict | None:
    rows = [row for row in rows if row.days_to_production is not None]
    if not rows:
        return None
    figure = go.Figure(
        go.Bar(
            x=[row.use_case.name for row in rows],
            y=[row.days_to_production for row in rows],
            marker_color=NET_COLOUR,
        )
    )
    _layout(figure, title="Time to production (days from idea)", height=300, yaxis={"title": {"text": "days"}})
    return {"id": "value-time-to-production", "json": to_json(figure)}
