"""The lineage graph as a Plotly figure, built in Python and drawn by the vendored plotly.js:
layered left to right (upstream, the focus, downstream), one marker trace per kind of node
(datasets, runs, model versions, and whatever kinds come later), edges as lines. Also where each
node's page is."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import plotly.graph_objects as go
from django.urls import NoReverseMatch, reverse

CLASSIFICATION_COLOURS = {
    "public": "#198754",
    "internal": "#0d6efd",
    "confidential": "#fd7e14",
    "pii": "#dc3545",
}
OTHER_COLOUR = "#6c757d"
LABEL_LENGTH = 32

# How each kind of node is drawn and named. Datasets are coloured by classification; a kind not
# listed here (deployments, before they get a style) is drawn as a grey hexagon.
KIND_STYLES: dict[str, dict[str, str]] = {
    "dataset": {"symbol": "circle", "colour": "", "name": "Datasets", "singular": "dataset", "icon": "bi-database"},
    "run": {"symbol": "diamond", "colour": "#6f42c1", "name": "Runs", "singular": "run", "icon": "bi-activity"},
    "model_version": {
        "symbol": "square",
        "colour": "#0f766e",
        "name": "Model versions",
        "singular": "model version",
        "icon": "bi-box-seam",
    },
    "endpoint": {
        "symbol": "triangle-right",
        "colour": "#b45309",
        "name": "Endpoints",
        "singular": "endpoint",
        "icon": "bi-rocket-takeoff",
    },
}
DEFAULT_STYLE = {"symbol": "hexagon", "colour": OTHER_COLOUR, "name": "Other", "singular": "node", "icon": "bi-circle"}
EDGE_STYLES = {
    "flow": {"color": "#adb5bd", "dash": "solid"},
    "input": {"color": "#b197e0", "dash": "dot"},
    "registered": {"color": "#5fb3a9", "dash": "solid"},
    "deployed": {"color": "#d9a066", "dash": "solid"},
}


def style_of(kind: str) -> dict[str, str]:
    return KIND_STYLES.get(kind, DEFAULT_STYLE | {"name": kind.replace("_", " ").capitalize() + "s", "singular": kind})


def node_url(node: dict[str, Any]) -> str | None:
    """The page of a node, or None when its app has no page for it (yet)."""
    try:
        if node["kind"] == "dataset":
            return reverse("catalog:dataset", kwargs={"slug": node["slug"]})
        if node["kind"] == "run":
            return reverse("tracking:run", args=(node["experiment_id"], node["run_uuid"]))
        if node["kind"] == "model_version":
            # The registry's pages are newer than this graph: link them only when they exist.
            return reverse("registry:version", kwargs={"model": node["model"], "version": node["version"]})
        if node["kind"] == "endpoint":
            return reverse("deployments:endpoint", kwargs={"name": node["name"]})
    except NoReverseMatch:
        return None
    return None


def add_links(graph: dict[str, Any]) -> dict[str, Any]:
    """Each node gains `url` (its page, or None) and `hops` (its distance from the focus)."""
    for node in graph["nodes"]:
        node["url"] = node_url(node)
        node["hops"] = abs(node["layer"])
    return graph


def layer_title(layer: int, focus_kind: str = "dataset") -> str:
    if layer == 0:
        return f"This {style_of(focus_kind)['singular']}"
    side = "Upstream" if layer < 0 else "Downstream"
    return side if abs(layer) == 1 else f"{side} ({abs(layer)} hops)"


def positions(nodes: list[dict[str, Any]]) -> dict[str, tuple[float, float]]:
    """x is the node's layer; within a layer nodes are spread evenly around y = 0, in the
    order given (the selector sorts them by kind, then name)."""
    by_layer: dict[int, list[str]] = defaultdict(list)
    for node in nodes:
        by_layer[node["layer"]].append(node["id"])
    placed = {}
    for layer, ids in by_layer.items():
        middle = (len(ids) - 1) / 2
        for i, node_id in enumerate(ids):
            placed[node_id] = (float(layer), middle - i)
    return placed


def edge_text(edge: dict[str, Any]) -> str:
    if edge.get("kind", "flow") == "flow":
        runs = edge.get("runs", 1)
        return f"{edge.get('job', '')}<br>{runs} run{'s' if runs != 1 else ''}"
    if edge["kind"] == "input":
        versions = edge.get("versions", 1)
        text = f"read v{edge.get('version')}" + (f" (and {versions - 1} older)" if versions > 1 else "")
        return text + (f"<br>{edge['context']}" if edge.get("context") else "")
    if edge["kind"] == "registered":
        return "registered from"
    if edge["kind"] == "deployed":
        return "served by" + (" (live)" if edge.get("live") else "")
    return edge["kind"]


def node_text(node: dict[str, Any], focus_kind: str) -> str:
    where = layer_title(node["layer"], focus_kind)
    if node["kind"] == "dataset":
        return f"{node['label']}<br>dataset · {node.get('classification', '')} · {where}"
    if node["kind"] == "run":
        status = node.get("status", "").lower() + (" · deleted" if node.get("deleted") else "")
        return f"run {node['label']}<br>{node.get('experiment', '')} · {status} · {where}"
    if node["kind"] == "model_version":
        stage = node.get("stage")
        return f"{node['label']}<br>model version{f' · {stage}' if stage and stage != 'None' else ''} · {where}"
    if node["kind"] == "endpoint":
        return f"endpoint {node['label']}<br>{node.get('environment', '')} · {node.get('state', '')} · {where}"
    return f"{node['label']}<br>{node['kind']} · {where}"


def graph_figure_json(graph: dict[str, Any]) -> str:
    nodes, edges = graph["nodes"], graph["edges"]
    focus_kind = next((n["kind"] for n in nodes if n["is_focus"]), "dataset")
    placed = positions(nodes)
    figure = go.Figure()
    mid_x, mid_y, mid_text = [], [], []
    by_edge_kind: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for edge in edges:
        by_edge_kind[edge.get("kind", "flow")].append(edge)
    for kind, group in by_edge_kind.items():
        edge_x: list[float | None] = []
        edge_y: list[float | None] = []
        for edge in group:
            (x0, y0), (x1, y1) = placed[edge["source"]], placed[edge["target"]]
            edge_x += [x0, x1, None]
            edge_y += [y0, y1, None]
            mid_x.append((x0 + x1) / 2)
            mid_y.append((y0 + y1) / 2)
            mid_text.append(edge_text(edge))
        style = EDGE_STYLES.get(kind, EDGE_STYLES["flow"])
        figure.add_trace(
            go.Scatter(
                x=edge_x,
                y=edge_y,
                mode="lines",
                line={"width": 1.5, "color": style["color"], "dash": style["dash"]},
                hoverinfo="skip",
                name=kind,
                showlegend=False,
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
            name="links",
            showlegend=False,
        )
    )
    by_kind: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for node in nodes:
        by_kind[node["kind"]].append(node)
    for kind, group in by_kind.items():
        style = style_of(kind)
        figure.add_trace(
            go.Scatter(
                x=[placed[n["id"]][0] for n in group],
                y=[placed[n["id"]][1] for n in group],
                mode="markers+text",
                text=[_short(n["label"]) for n in group],
                textposition="bottom center",
                hovertext=[node_text(n, focus_kind) for n in group],
                hoverinfo="text",
                marker={
                    "size": [22 if n["is_focus"] else 15 for n in group],
                    "symbol": style["symbol"],
                    "opacity": [0.45 if n.get("deleted") else 1 for n in group],
                    "color": [
                        style["colour"] or CLASSIFICATION_COLOURS.get(n.get("classification", ""), OTHER_COLOUR)
                        for n in group
                    ],
                    "line": {"width": [3 if n["is_focus"] else 1 for n in group], "color": "#212529"},
                },
                # Where each node's page is, for a click handler (the lists below the figure link them).
                customdata=[n.get("url") or "" for n in group],
                name=style["name"],
            )
        )
    layers = sorted({n["layer"] for n in nodes})
    tallest = max((sum(1 for n in nodes if n["layer"] == layer) for layer in layers), default=1)
    figure.update_layout(
        template="none",
        height=max(260, 70 * tallest + 100),
        margin={"l": 20, "r": 20, "t": 30, "b": 40},
        showlegend=len(by_kind) > 1,
        legend={"orientation": "h", "x": 0, "y": 1.02, "yanchor": "bottom", "itemclick": False},
        hovermode="closest",
        xaxis={
            "tickvals": layers,
            "ticktext": [layer_title(layer, focus_kind) for layer in layers],
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
