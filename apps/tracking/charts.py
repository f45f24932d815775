"""Plotly figures of runs (metric histories, comparisons), built in Python and drawn by the
vendored plotly.js through causeway.js (`data-plotly-src`)."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import plotly.graph_objects as go
from plotly.colors import qualitative

# Ten distinct colours: the compare page shows at most ten runs, each keeps its colour everywhere.
RUN_COLOURS = qualitative.Plotly
MAX_METRIC_FIGURES = 24
MAX_PARALLEL_DIMENSIONS = 16
_MARGIN = {"l": 50, "r": 15, "t": 35, "b": 40}


def run_colour(index: int) -> str:
    return RUN_COLOURS[index % len(RUN_COLOURS)]


def _layout(figure: go.Figure, *, title: str, height: int = 260, margin: dict | None = None, **extra) -> None:
    figure.update_layout(
        title={"text": title, "font": {"size": 13}},
        height=height,
        margin=margin or _MARGIN,
        paper_bgcolor="rgba(0,0,0,0)",
        plot_bgcolor="rgba(0,0,0,0)",
        **extra,
    )


def _x_values(points: list[tuple], x_axis: str) -> list:
    if x_axis == "time":
        return [datetime.fromtimestamp(timestamp / 1000, tz=UTC).isoformat() for _, timestamp, _ in points]
    return [step for step, _, _ in points]


def _mode(points: list) -> str:
    return "lines+markers" if len(points) <= 60 else "lines"


def run_metric_figures(history: dict[str, list[tuple]], *, x_axis: str = "step") -> list[dict]:
    """One small chart per metric of a run that has more than one point (single values are
    read from the metrics table), x by step or by wall-clock time."""
    figures = []
    for index, (key, points) in enumerate(sorted(history.items())):
        if len(points) < 2:
            continue
        figure = go.Figure(
            go.Scatter(
                x=_x_values(points, x_axis),
                y=[value for _, _, value in points],
                mode=_mode(points),
                name=key,
                line={"color": run_colour(0), "width": 2},
                marker={"size": 4},
                connectgaps=False,
            )
        )
        _layout(
            figure,
            title=key,
            showlegend=False,
            xaxis={"title": {"text": "time (UTC)" if x_axis == "time" else "step"}},
        )
        figures.append({"id": f"metric-fig-{index}", "key": key, "json": figure.to_json()})
        if len(figures) >= MAX_METRIC_FIGURES:
            break
    return figures


def compare_metric_figures(runs, history_by_run: dict[int, dict[str, list]], *, x_axis: str = "step") -> list[dict]:
    """One chart per metric with a line per run (metrics that have a single value in every
    run are left to the table, the parallel coordinates and the scatter)."""
    keys = sorted({key for history in history_by_run.values() for key in history})
    figures = []
    for index, key in enumerate(keys):
        if all(len(history_by_run.get(run.pk, {}).get(key, [])) < 2 for run in runs):
            continue
        figure = go.Figure()
        for run_index, run in enumerate(runs):
            points = history_by_run.get(run.pk, {}).get(key, [])
            if not points:
                continue
            figure.add_trace(
                go.Scatter(
                    x=_x_values(points, x_axis),
                    y=[value for _, _, value in points],
                    mode=_mode(points),
                    name=str(run),
                    legendgroup=run.run_uuid,
                    line={"color": run_colour(run_index), "width": 2},
                    marker={"size": 4},
                )
            )
        _layout(
            figure,
            title=key,
            height=300,
            xaxis={"title": {"text": "time (UTC)" if x_axis == "time" else "step"}},
            legend={"orientation": "h", "y": -0.25, "font": {"size": 11}},
        )
        figures.append({"id": f"compare-fig-{index}", "key": key, "json": figure.to_json()})
        if len(figures) >= MAX_METRIC_FIGURES:
            break
    return figures


def as_number(value) -> float | None:
    """A finite float from a param or metric value, or None."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _short(text: str, limit: int = 18) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _format(number: float) -> str:
    return f"{number:.4g}"


def _dimension(label: str, values: list, *, numeric_only: bool = False) -> dict | None:
    """One axis: each run's value placed between 0 (bottom) and 1 (top), the labels to write
    along the axis, and the values as text for hovering. Numbers keep their scale; anything
    else (or a numeric param some run lacks) becomes evenly spaced categories."""
    numbers = [as_number(v) for v in values]
    if numeric_only or all(n is not None for n in numbers):
        present = [n for n in numbers if n is not None]
        if not present:
            return None
        low, high = min(present), max(present)
        span = high - low
        positions = [None if n is None else (0.5 if span == 0 else (n - low) / span) for n in numbers]
        ticks = [(0.5, _format(low))] if span == 0 else [(0.0, _format(low)), (1.0, _format(high))]
        texts = ["—" if n is None else _format(n) for n in numbers]
    else:
        shown = ["—" if v is None else str(v) for v in values]
        categories = sorted(set(shown))
        step = 1 / (len(categories) - 1) if len(categories) > 1 else 0
        place = {c: (0.5 if len(categories) == 1 else i * step) for i, c in enumerate(categories)}
        positions = [place[s] for s in shown]
        ticks = [(place[c], _short(c)) for c in categories]
        texts = shown
    return {"label": label, "positions": positions, "ticks": ticks, "texts": texts}


def parallel_coordinates_figure(runs, params: dict[int, dict], metrics: dict[int, dict]) -> str | None:
    """Params (those that differ between the runs; numeric ones on a numeric scale, others as
    categories) and latest metrics as parallel axes, a line per run in its colour.

    Drawn as SVG lines rather than Plotly's `parcoords`: that trace needs WebGL through regl,
    which compiles code at run time and so cannot run under the CSP (no 'unsafe-eval')."""
    param_keys = sorted({key for run in runs for key in params.get(run.pk, {})})
    varying = [k for k in param_keys if len({params.get(run.pk, {}).get(k) for run in runs}) > 1]
    dimensions = [
        _dimension(key, [params.get(run.pk, {}).get(key) for run in runs])
        for key in (varying or param_keys)[: MAX_PARALLEL_DIMENSIONS // 2]
    ]
    metric_keys = sorted({key for run in runs for key in metrics.get(run.pk, {})})
    for key in metric_keys[: MAX_PARALLEL_DIMENSIONS - len(dimensions)]:
        latest = [getattr(metrics.get(run.pk, {}).get(key), "value", None) for run in runs]
        dimensions.append(_dimension(key, latest, numeric_only=True))
    dimensions = [d for d in dimensions if d is not None]
    if len(dimensions) < 2:
        return None
    figure = go.Figure()
    for index, run in enumerate(runs):
        figure.add_trace(
            go.Scatter(
                x=list(range(len(dimensions))),
                y=[d["positions"][index] for d in dimensions],
                text=[f"{d['label']}: {d['texts'][index]}" for d in dimensions],
                hovertemplate="%{text}<extra>" + str(run).replace("<", "&lt;") + "</extra>",
                mode="lines+markers",
                name=str(run),
                line={"color": run_colour(index), "width": 2},
                marker={"size": 6},
                connectgaps=False,
            )
        )
    for position, dimension in enumerate(dimensions):
        figure.add_shape(
            type="line", x0=position, x1=position, y0=0, y1=1, line={"color": "rgba(128,128,128,.6)", "width": 1}
        )
        for y, text in dimension["ticks"]:
            figure.add_annotation(
                x=position, y=y, text=text, showarrow=False, xanchor="left", xshift=4, font={"size": 10}
            )
    _layout(
        figure,
        title="Params and metrics",
        height=400,
        margin={"l": 60, "r": 60, "t": 35, "b": 90},
        xaxis={
            "tickvals": list(range(len(dimensions))),
            "ticktext": [_short(d["label"], 22) for d in dimensions],
            "tickangle": -30,
            "showgrid": False,
            "zeroline": False,
            "range": [-0.2, len(dimensions) - 0.4],
        },
        yaxis={"visible": False, "range": [-0.06, 1.06]},
        legend={"orientation": "h", "y": -0.35, "font": {"size": 11}},
        hovermode="closest",
    )
    return figure.to_json()


def scatter_figure(runs, metrics: dict[int, dict], *, x_key: str, y_key: str) -> str | None:
    """One point per run at its latest values of two metrics."""
    figure = go.Figure()
    for index, run in enumerate(runs):
        x = as_number(getattr(metrics.get(run.pk, {}).get(x_key), "value", None))
        y = as_number(getattr(metrics.get(run.pk, {}).get(y_key), "value", None))
        if x is None or y is None:
            continue
        figure.add_trace(
            go.Scatter(x=[x], y=[y], mode="markers", name=str(run), marker={"size": 12, "color": run_colour(index)})
        )
    if not figure.data:
        return None
    _layout(
        figure,
        title=f"{y_key} against {x_key}",
        height=360,
        xaxis={"title": {"text": x_key}},
        yaxis={"title": {"text": y_key}},
        legend={"orientation": "h", "y": -0.2, "font": {"size": 11}},
    )
    return figure.to_json()
