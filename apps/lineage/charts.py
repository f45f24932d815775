"""The lineage graph as a Plotly figure, built in Python and drawn by the vendored plotly.js:
layered left to right (upstream, the focus, downstream), nodes as labelled markers, edges as
lines."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import plotly.graph_objects as go

CLASSIFICATION_COLOURS = {
    "public": "#198754",
    "internal": "#0d6efd",
    "confidential": "#fd7e14",
    "pii": "#dc3545",
}
OTHER_COLOUR = "#6c757d"
LABEL_LENGTH = 32


def layer_title(layer: int) -> str:
    if layer == 0:
        return "This dataset"
    side = "Upstream" if layer < 0 else "Downstream"
    return side if abs(layer) == 1 else f"{side} ({abs(layer)} hops)"


def positions(nodes: list[dict[str, Any]]) -> dict[str, tuple[float, float]]:
    """x is the node's layer; within a layer nodes are spread evenly around y = 0, in the
    order given (the selector sorts them by name)."""
    by_layer: dict[int, list[str]] = defaultdict(list)
    for node in nodes:
        by_layer[node["layer"]].append(node["id"])
    placed = {}
    for layer, ids in by_layer.items():
        middle = (len(ids) - 1) / 2
        for i, node_id in enumerate(ids):
            placed[node_id] = (float(layer), middle - i)
    return placed


def graph_figure_json(graph: dict[str, Any]) -> str:
    nodes, edges = graph["nodes"], graph["edges"]
    placed = positions(nodes)
    edge_x: list[float | None] = []
    edge_y: list[float | None] = []
    mid_x, mid_y, mid_text = [], [], []
    for edge in edges:
        (x0, y0), (x1, y1) = placed[edge["source"]], placed[edge["target"]]
        edge_x += [x0, x1, None]
        edge_y += [y0, y1, None]
        mid_x.append((x0 + x1) / 2)
        mid_y.append((y0 + y1) / 2)
        runs = edge.get("runs", 1)
        mid_text.append(f"{edge.get('job', '')}<br>{runs} run{'s' if runs != 1 else ''}")
    figure = go.Figure()
    figure.add_trace(
        go.Scatter(
            x=edge_x, y=edge_y, mode="lines", line={"width": 1.5, "color": "#adb5bd"}, hoverinfo="skip", name="flow"
        )
    )
    figure.add_trace(
        go.Scatter(
            x=mid_x,
            y=mid_y,
            mode="markers",
            marker={"size": 6, "color": "#adb5bd", "symbol": "triangle-right"},
            hovertext=mid_text,
            hoverinfo="text",
            name="runs",
        )
    )
    figure.add_trace(
        go.Scatter(
            x=[placed[n["id"]][0] for n in nodes],
            y=[placed[n["id"]][1] for n in nodes],
            mode="markers+text",
            text=[_short(n["label"]) for n in nodes],
            textposition="bottom center",
            hovertext=[f"{n['label']}<br>{n['classification']} · {layer_title(n['layer'])}" for n in nodes],
            hoverinfo="text",
            marker={
                "size": [22 if n["is_focus"] else 15 for n in nodes],
                "opacity": 1,
                "color": [CLASSIFICATION_COLOURS.get(n.get("classification", ""), OTHER_COLOUR) for n in nodes],
                "line": {"width": [3 if n["is_focus"] else 1 for n in nodes], "color": "#212529"},
            },
            customdata=[n.get("slug", "") for n in nodes],
            name="datasets",
        )
    )
    layers = sorted({n["layer"] for n in nodes})
    tallest = max((sum(1 for n in nodes if n["layer"] == layer) for layer in layers), default=1)
    figure.update_layout(
        template="none",
        height=max(260, 80 * tallest + 80),
        margin={"l": 20, "r": 20, "t": 20, "b": 40},
        showlegend=False,
        hovermode="closest",
        xaxis={
            "tickvals": layers,
            "ticktext": [layer_title(layer) for layer in layers],
            "showgrid": False,
            "zeroline": False,
            "range": [min(layers, default=0) - 0.6, max(layers, default=0) + 0.6],
            "fixedrange": True,
        },
        yaxis={"visible": False, "showgrid": False, "zeroline": False, "fixedrange": True},
    )
    return figure.to_json()


def _short(label: str) -> str:
    return label if len(label) <= LABEL_LENGTH else label[: LABEL_LENGTH - 1] + "…"
