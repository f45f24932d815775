"""Plotly figures for dataset profiles, built in Python and drawn by the vendored plotly.js."""

from __future__ import annotations

import plotly.graph_objects as go

from apps.catalog.models import Column


def histogram_figure_json(column: Column, stats: dict) -> str | None:
    """A bar chart of a numeric column's histogram, or None when there is none to draw."""
    histogram = (stats or {}).get("histogram") or {}
    edges, counts = histogram.get("edges") or [], histogram.get("counts") or []
    if len(edges) != len(counts) + 1 or not counts:
        return None
    centres = [(edges[i] + edges[i + 1]) / 2 for i in range(len(counts))]
    widths = [edges[i + 1] - edges[i] for i in range(len(counts))]
    figure = go.Figure(go.Bar(x=centres, y=counts, width=widths, marker_line_width=0, name=column.name))
    figure.update_layout(
        title={"text": column.name, "font": {"size": 13}},
        height=220,
        margin={"l": 40, "r": 10, "t": 30, "b": 30},
        bargap=0.02,
        paper_bgcolor="rgba(0,0,0,0)",
        plot_bgcolor="rgba(0,0,0,0)",
        showlegend=False,
    )
    return figure.to_json()


def profile_figures(columns: list[Column], column_stats: dict[int, dict], limit: int = 12) -> list[dict]:
    figures = []
    for column in columns:
        figure = histogram_figure_json(column, column_stats.get(column.pk, {}))
        if figure:
            figures.append({"id": f"hist-{column.pk}", "json": figure})
        if len(figures) >= limit:
            break
    return figures
