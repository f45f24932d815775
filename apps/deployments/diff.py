"""What a deployment request changes: the requested version against the version it replaces on
its endpoint (or "new endpoint"), as rows an approver reads at a glance — the version itself,
the rollout plan (traffic before → after), params, metrics with deltas and thresholds, the
signature's inputs, training datasets and model card fields.

A read (like selectors.py): permission-filtered, a fixed number of queries whatever the number
of params, metrics, columns or datasets. The version compared against is the endpoint's live
version while the request is open; once the request has been deployed, the version it replaced
(the primary revision that ended the moment it went live), so the page still answers "what did
this change" after the fact. Facts from runs, datasets or a version the user may not see are
left out and said to be hidden.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from apps.deployments import selectors
from apps.deployments.models import DeploymentRequest, Endpoint, EndpointRevision
from apps.registry import cards
from apps.registry import page_selectors as registry_pages
from apps.registry import selectors as registry_selectors
from apps.registry.models import ModelCard, ModelVersion
from apps.tracking import selectors as tracking_selectors

ADDED, REMOVED, CHANGED, SAME = "added", "removed", "changed", "same"
# Card fields that differ between any two versions by construction: noise in a diff.
CARD_NOISE = {"model_details.version", "model_details.date"}
CARD_TEXT_LIMIT = 300


@dataclass
class Row:
    """One line of the diff: `old` is the live (replaced) side, `new` the requested one."""

    key: str
    old: Any = None
    new: Any = None
    change: str = SAME
    delta: float | None = None
    note: str = ""


@dataclass
class RequestDiff:
    candidate: ModelVersion
    live: ModelVersion | None
    endpoint: Endpoint | None
    new_endpoint: bool
    # "live now" while the request is open, "replaced" once it has been deployed.
    baseline: str
    live_hidden: bool = False
    same_version: bool = False
    version_rows: list[Row] = field(default_factory=list)
    rollout_rows: list[Row] = field(default_factory=list)
    param_rows: list[Row] = field(default_factory=list)
    metric_rows: list[Row] = field(default_factory=list)
    signature_rows: list[Row] = field(default_factory=list)
    dataset_rows: list[Row] = field(default_factory=list)
    card_rows: list[Row] = field(default_factory=list)
    card_unchanged: int = 0
    hidden: list[str] = field(default_factory=list)

    @property
    def changed_count(self) -> int:
        sections = (self.param_rows, self.metric_rows, self.signature_rows, self.dataset_rows, self.card_rows)
        return sum(1 for rows in sections for row in rows if row.change != SAME)


def request_diff(user, request: DeploymentRequest) -> RequestDiff:
    """The diff of `request` for `user` (who may see the request)."""
    candidate = request.model_version
    endpoint = (
        selectors.visible_endpoints(user)
        .filter(name=request.endpoint_name)
        .select_related("current_version__registered_model", "current_version__run", "canary_version__registered_model")
        .first()
    )
    live, baseline = _baseline(request, endpoint)
    if baseline == "replaced":
        new_endpoint = live is None  # nothing was live when it was deployed
    else:
        new_endpoint = live is None and (endpoint is None or endpoint.state != Endpoint.State.LIVE)
    live_hidden = False
    if live is not None and not registry_selectors.visible_versions(user).filter(pk=live.pk).exists():
        live, live_hidden = None, True
    diff = RequestDiff(
        candidate=candidate,
        live=live,
        endpoint=endpoint,
        new_endpoint=new_endpoint and not live_hidden,
        baseline=baseline,
        live_hidden=live_hidden,
        same_version=live is not None and live.pk == candidate.pk,
    )
    if live_hidden:
        diff.hidden.append("the version it replaces (a model you cannot see)")

    runs = [version.run for version in (candidate, live) if version is not None and version.run_id]
    visible_runs = registry_pages.visible_run_ids(user, runs)
    shown = [run for run in runs if run.pk in visible_runs]
    if candidate.run_id and candidate.run_id not in visible_runs:
        diff.hidden.append("the requested version's run (params, metrics, inputs)")
    if live is not None and live.run_id and live.run_id not in visible_runs:
        diff.hidden.append("the live version's run (params, metrics, inputs)")

    def of_run(values: dict, version: ModelVersion | None) -> dict:
        if version is None or version.run_id not in visible_runs:
            return {}
        return values.get(version.run_id, {})

    params = tracking_selectors.params_by_run(shown) if shown else {}
    metrics = tracking_selectors.latest_metrics_by_run(shown) if shown else {}
    inputs = registry_pages.training_datasets_of_runs(user, shown) if shown else {}
    cards_by_version = _cards(candidate, live)

    diff.version_rows = _version_rows(candidate, live, cards_by_version)
    diff.rollout_rows = _rollout_rows(request, endpoint, live)
    diff.param_rows = compare(of_run(params, live), of_run(params, candidate))
    thresholds = {row.get("metric"): row for row in request.environment.metric_thresholds or []}
    diff.metric_rows = _metric_rows(of_run(metrics, live), of_run(metrics, candidate), thresholds)
    diff.signature_rows = signature_rows(live.signature_inputs if live else None, candidate.signature_inputs)
    card_datasets = registry_pages.dataset_versions_by_id(
        user,
        [
            pk
            for card in cards_by_version.values()
            for pk in (card.training_data if isinstance(card.training_data, list) else [])
        ],
    )
    old_datasets = (
        _datasets_of(of_run(inputs, live) or [], cards_by_version.get(live.pk), card_datasets) if live else {}
    )
    new_datasets = _datasets_of(of_run(inputs, candidate) or [], cards_by_version.get(candidate.pk), card_datasets)
    diff.dataset_rows = _dataset_rows(old_datasets, new_datasets)
    if live is not None:
        # Against nothing, every card field would be "added": the completeness row says enough.
        diff.card_rows, diff.card_unchanged = _card_rows(
            cards_by_version.get(live.pk), cards_by_version.get(candidate.pk)
        )
    return diff


def _baseline(request: DeploymentRequest, endpoint: Endpoint | None) -> tuple[ModelVersion | None, str]:
    if request.deployed_at is not None:
        # The primary revision that ended the moment this request went live (mark_live ends
        # it with the same timestamp); none: the endpoint was new.
        replaced = (
            EndpointRevision.objects.filter(
                endpoint__name=request.endpoint_name,
                role=EndpointRevision.Role.PRIMARY,
                ended_at=request.deployed_at,
            )
            .exclude(request=request)
            .select_related("model_version__registered_model", "model_version__run")
            .first()
        )
        return (replaced.model_version if replaced else None), "replaced"
    if endpoint is None or endpoint.state != Endpoint.State.LIVE or endpoint.current_version is None:
        return None, "live now"
    return endpoint.current_version, "live now"


def _cards(*versions: ModelVersion | None) -> dict[int, ModelCard]:
    ids = [version.pk for version in versions if version is not None]
    return {card.model_version_id: card for card in ModelCard.objects.filter(model_version_id__in=ids)}


def compare(old: dict[str, Any], new: dict[str, Any]) -> list[Row]:
    """Key by key: what was added, removed, changed or kept; changes first, then by key."""
    rows = []
    for key in sorted(set(old) | set(new)):
        if key not in old:
            change = ADDED
        elif key not in new:
            change = REMOVED
        else:
            change = SAME if old[key] == new[key] else CHANGED
        rows.append(Row(key=key, old=old.get(key), new=new.get(key), change=change))
    return _changes_first(rows)


def _changes_first(rows: list[Row]) -> list[Row]:
    return sorted(rows, key=lambda row: row.change == SAME)


def _version_rows(candidate: ModelVersion, live: ModelVersion | None, by_version: dict[int, ModelCard]) -> list[Row]:
    def facts(version: ModelVersion | None) -> dict[str, Any]:
        if version is None:
            return {}
        card = by_version.get(version.pk)
        return {
            "Model version": f"{version.registered_model.name} v{version.version}",
            "Flavor": version.flavor or "—",
            "Stage": version.current_stage or "—",
            "Card completeness": f"{cards.completeness(card)[0]} %" if card is not None else "no card",
        }

    rows = compare(facts(live), facts(candidate))
    order = ["Model version", "Flavor", "Stage", "Card completeness"]
    return sorted(rows, key=lambda row: order.index(row.key))


def _rollout_rows(request: DeploymentRequest, endpoint: Endpoint | None, live: ModelVersion | None) -> list[Row]:
    """Traffic per version before and after the request (open requests: from the endpoint as
    it is now; deployed ones: replace → 100 %, canary → the share asked for)."""
    candidate = request.model_version
    label = f"{candidate.registered_model.name} v{candidate.version}"
    canary = request.rollout == DeploymentRequest.Rollout.CANARY
    before: dict[str, int] = {}
    if request.deployed_at is None and endpoint is not None and endpoint.state == Endpoint.State.LIVE:
        if endpoint.current_version is not None:
            current = endpoint.current_version
            before[f"{current.registered_model.name} v{current.version}"] = 100 - (endpoint.canary_percent or 0)
        if endpoint.canary_version is not None:
            other = endpoint.canary_version
            before[f"{other.registered_model.name} v{other.version}"] = endpoint.canary_percent
    elif live is not None:
        before[f"{live.registered_model.name} v{live.version}"] = 100
    after: dict[str, int] = {}
    if canary:
        # A new canary takes the place of an existing one; the primary keeps the rest.
        if live is not None:
            after[f"{live.registered_model.name} v{live.version}"] = 100 - request.canary_percent
        after[label] = request.canary_percent
    else:
        after[label] = 100
    rows = []
    for key in [*before, *[k for k in after if k not in before]]:
        old, new = before.get(key, 0), after.get(key, 0)
        rows.append(
            Row(
                key=f"Traffic to {key}",
                old=f"{old} %",
                new=f"{new} %",
                change=SAME if old == new else (ADDED if not old else REMOVED if not new else CHANGED),
            )
        )
    return rows


def _metric_value(metric) -> float | None:
    if metric is None or getattr(metric, "is_nan", False) or metric.value is None:
        return None
    return metric.value


def _metric_rows(old: dict, new: dict, thresholds: dict) -> list[Row]:
    rows = []
    for row in compare({k: _metric_value(v) for k, v in old.items()}, {k: _metric_value(v) for k, v in new.items()}):
        if row.old is not None and row.new is not None:
            row.delta = row.new - row.old
        threshold = thresholds.get(row.key)
        if threshold:
            row.note = f"{threshold.get('op')} {threshold.get('value')}"
        rows.append(row)
    return sorted(rows, key=lambda row: row.key)


def signature_rows(old_inputs: Any, new_inputs: Any) -> list[Row]:
    """The signature's input columns by name: added, removed, or changed type (or required)."""

    def columns(part: Any) -> dict[str, str]:
        found = {}
        for index, column in enumerate(registry_pages.signature_columns(part)):
            name = column["name"] or f"#{index}"
            kind = column["type"] + (f" {column['shape']}" if column["shape"] else "")
            found[name] = kind + ("" if column["required"] else " (optional)")
        return found

    return compare(columns(old_inputs), columns(new_inputs))


def _datasets_of(run_inputs: list[dict], card: ModelCard | None, card_datasets: dict) -> dict[str, str]:
    """`{dataset label: where it is named}` from the run's logged inputs and the card's
    training data; datasets the user may not see are counted, not named."""
    found: dict[str, str] = {}
    hidden = 0
    for item in run_inputs:
        if item.get("hidden"):
            hidden += 1
            continue
        dataset = item.get("dataset")
        label = f"{dataset.name} v{item['version']}" if dataset is not None else item.get("name") or "unnamed input"
        found[label] = f"run input ({item.get('context') or 'training'})"
    for pk in card.training_data if card is not None and isinstance(card.training_data, list) else []:
        version = card_datasets.get(int(pk)) if str(pk).isdigit() else None
        if version is None:
            hidden += 1
            continue
        label = f"{version.dataset.name} v{version.number}"
        found[label] = found[label] + ", model card" if label in found else "model card"
    if hidden:
        found[f"{hidden} dataset(s) you cannot see"] = "hidden"
    return found


def _dataset_rows(old: dict[str, str], new: dict[str, str]) -> list[Row]:
    rows = compare(old, new)
    for row in rows:
        # Where a dataset is named may move (run input → card): the dataset itself is unchanged.
        if row.change == CHANGED:
            row.change = SAME
    return _changes_first(rows)


def card_fields(card: ModelCard | None) -> dict[str, str]:
    """The card's content flattened to `{section.key: text}` (lists and tables as JSON)."""
    if card is None:
        return {}
    flat: dict[str, str] = {}
    for name in cards.CARD_FIELDS:
        value = getattr(card, name)
        if isinstance(value, dict):
            for key, item in value.items():
                flat[f"{name}.{key}"] = _text(item)
        else:
            flat[name] = _text(value)
    return {key: value for key, value in flat.items() if key not in CARD_NOISE and value}


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    return json.dumps(value, sort_keys=True, default=str) if value not in ([], {}) else ""


def _card_rows(old: ModelCard | None, new: ModelCard | None) -> tuple[list[Row], int]:
    """Changed card fields only (with both texts, shortened), and how many were unchanged."""
    rows = compare(card_fields(old), card_fields(new))
    changed = [row for row in rows if row.change != SAME]
    for row in changed:
        row.old = _short(row.old)
        row.new = _short(row.new)
        section = row.key.split(".", 1)[0]
        row.note = cards.SECTIONS.get(section, section.replace("_", " ").capitalize())
    return changed, len(rows) - len(changed)


def _short(value: str | None) -> str | None:
    if value is None or len(value) <= CARD_TEXT_LIMIT:
        return value
    return value[: CARD_TEXT_LIMIT - 1] + "…"
