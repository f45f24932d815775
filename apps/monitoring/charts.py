"""Plotly figures for the monitoring pages, built in Python and drawn by the vendored plotly.js
(embedded as JSON: the CSP forbids inline scripts), and SVG sparklines for the ops list."""

from __future__ import annotations

from collections.abc import Sequence

import plotly.graph_objects as go
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe

from apps.monitoring import summaries

_LAYOUT = {
    "height": 260,
    "margin": {"l": 50, "r": 20, "t": 36, "b": 36},
    "legend": {"orientation": "h", "y": -0.2},
    "hovermode": "x unified",
}


def _figure(title: str, traces: list, **layout) -> str:
    figure = go.Figure(traces)
    figure.update_layout(title={"text": title, "font": {"size": 14}}, **(_LAYOUT | layout))
    return figure.to_json()


def traffic_figure(series: list[dict]) -> str:
    at = [point["at"] for point in series]
    return _figure(
        "Requests and error rate",
        [
            go.Bar(x=at, y=[p["requests"] for p in series], name="requests", marker_color="#0d6efd"),
            go.Scatter(
                x=at,
                y=[None if p["error_rate"] is None else 100 * p["error_rate"] for p in series],
                name="errors %",
                yaxis="y2",
                mode="lines",
                line={"color": "#dc3545"},
            ),
        ],
        yaxis={"title": "requests"},
        yaxis2={"title": "errors %", "overlaying": "y", "side": "right", "rangemode": "tozero"},
    )


def latency_figure(series: list[dict]) -> str:
    at = [point["at"] for point in series]
    return _figure(
        "Latency (ms)",
        [go.Scatter(x=at, y=[p[key] for p in series], name=key, mode="lines") for key in ("p50", "p95", "p99")],
        yaxis={"title": "ms", "rangemode": "tozero"},
    )


def versions_figure(by_version: dict, labels: dict) -> str:
    return _figure(
        "Requests per model version",
        [
            go.Scatter(
                x=[at for at, _ in points],
                y=[n for _, n in points],
                name=labels.get(version_id, "unknown version"),
                mode="lines",
                stackgroup="one",
            )
            for version_id, points in by_version.items()
        ],
    )


def live_metrics_figure(series: list[dict], offline: dict[str, float]) -> str | None:
    """Live accuracy / RMSE per step, beside the model card's offline values (dashed)."""
    keys = [k for k in ("accuracy", "rmse", "mae") if any(k in p for p in series)]
    if not keys:
        return None
    at = [p["at"] for p in series]
    traces = [
        go.Scatter(x=at, y=[p.get(key) for p in series], name=f"live {key}", mode="lines+markers") for key in keys
    ]
    for key in keys:
        offline_key = next((name for name in offline if name.lower() in _ALIASES.get(key, {key})), None)
        if offline_key is not None and at:
            traces.append(
                go.Scatter(
                    x=[at[0], at[-1]],
                    y=[offline[offline_key]] * 2,
                    name=f"model card {offline_key}",
                    mode="lines",
                    line={"dash": "dash"},
                )
            )
    return _figure("Live metrics from outcome feedback", traces)


_ALIASES = {"accuracy": {"accuracy", "acc"}, "rmse": {"rmse", "root_mean_squared_error"}, "mae": {"mae"}}


def drift_score_figure(points: Sequence[tuple], warn: float, alert: float) -> str:
    at = [p[0] for p in points]
    traces = [go.Scatter(x=at, y=[p[1] for p in points], name="drift score (max PSI)", mode="lines+markers")]
    if at:
        for value, name, color in ((warn, "warn", "#fd7e14"), (alert, "alert", "#dc3545")):
            traces.append(
                go.Scatter(
                    x=[at[0], at[-1]], y=[value, value], name=name, mode="lines", line={"dash": "dot", "color": color}
                )
            )
    return _figure("Drift score over time", traces, yaxis={"rangemode": "tozero"})


def feature_figure(feature: dict) -> str | None:
    """Reference (training profile) against current proportions, on the same bins."""
    reference, current = feature.get("reference") or {}, feature.get("current") or {}
    if "edges" in reference:
        edges = reference["edges"]
        labels = ["< " + _num(edges[0])]
        labels += [f"{_num(edges[i])}–{_num(edges[i + 1])}" for i in range(len(edges) - 1)]
        labels += ["> " + _num(edges[-1])]
        ref, cur = reference["counts"], current.get("counts") or []
    elif "categories" in reference:
        labels = list(reference["categories"])
        ref = list(reference["categories"].values())
        cur = [current.get("categories", {}).get(name, 0) for name in labels]
        labels = ["other" if name == summaries.OTHER else name for name in labels]
    elif "values" in reference:
        labels = [_num(v) for v in reference["values"]]
        ref, cur = reference["counts"], current.get("counts") or []
    else:
        return None
    total_ref, total_cur = sum(ref) or 1, sum(cur) or 1
    score = feature.get("psi")
    title = f"{feature.get('name', 'prediction')} · PSI {score:.3f}" if score is not None else feature.get("name", "")
    return _figure(
        title,
        [
            go.Bar(x=labels, y=[c / total_ref for c in ref], name="training", marker_color="#6c757d"),
            go.Bar(x=labels, y=[c / total_cur for c in cur], name="served", marker_color="#0d6efd"),
        ],
        barmode="group",
        yaxis={"tickformat": ".0%"},
        height=240,
        hovermode="closest",
    )


def _num(value: float) -> str:
    return f"{value:.3g}"


def sparkline(
    values: Sequence[float | None], *, width: int = 120, height: int = 28, color: str = "#0d6efd"
) -> SafeString:
    """An inline SVG polyline (no script: CSP-safe); gaps for missing values."""
    points = [(i, v) for i, v in enumerate(values) if v is not None]
    if not points:
        return mark_safe('<span class="text-body-secondary small">—</span>')  # noqa: S308 - a constant
    low = min(v for _, v in points)
    high = max(v for _, v in points)
    span = (high - low) or 1.0
    step = width / max(1, len(values) - 1)
    coords = " ".join(f"{i * step:.1f},{height - 2 - (v - low) / span * (height - 4):.1f}" for i, v in points)
    return format_html(
        '<svg class="sparkline" width="{}" height="{}" viewBox="0 0 {} {}" role="img" aria-label="trend">'
        '<polyline fill="none" stroke="{}" stroke-width="1.5" points="{}"/></svg>',
        width,
        height,
        width,
        height,
        color,
        coords,
    )
