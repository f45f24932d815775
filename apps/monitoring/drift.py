"""Drift reports: an endpoint's recent inputs against its training data's profile, and its
recent predictions against the window before.

Inputs: for every column both served and profiled, the window's merged summary is compared with
the profile on the same bins — numbers with PSI and Kolmogorov–Smirnov on the histogram (plus
an underflow and an overflow bin, so values outside the training range count), categories with
PSI and the Jensen–Shannon distance on the top values (plus "other"). Each feature gets a
verdict from its PSI and the endpoint's thresholds; the report's score is the highest PSI and
its verdict that score's.

Predictions have no reference in a profile (the target column is seldom what the model
outputs), so they are compared with the previous window of the same length: a sudden shift in
what the model answers shows even for columns the profile lacks.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db import transaction
from django.utils import timezone

from apps.deployments.models import Endpoint
from apps.monitoring import reference, selectors, services, summaries
from apps.monitoring.models import DriftReport, TrafficMinute, Verdict

MIN_ROWS = 30  # fewer current rows than this: scores are noise, not reported


def verdict_of(score: float | None, *, warn: float, alert: float) -> str:
    if score is None:
        return Verdict.OK
    if score >= alert:
        return Verdict.ALERT
    if score >= warn:
        return Verdict.WARN
    return Verdict.OK


def merged_window(endpoint_id: int, start: dt.datetime, end: dt.datetime) -> tuple[int, dict, dict]:
    """(rows, {feature: merged summary}, merged prediction summary) over [start, end)."""
    features: dict[str, dict] = {}
    predictions: dict = {}
    rows = 0
    for n, row_features, row_predictions in TrafficMinute.objects.filter(
        endpoint_id=endpoint_id, minute__gte=start, minute__lt=end
    ).values_list("rows", "features", "predictions"):
        rows += n
        if row_features:
            summaries.merge_columns(features, row_features)
        if row_predictions:
            summaries.merge_summary(predictions, row_predictions)
    return rows, features, predictions


def numeric_scores(spec: dict, current: dict) -> dict[str, Any] | None:
    """PSI and KS of a numeric feature; None when its bins do not match the reference's."""
    reference_counts = [0, *spec["counts"], 0]
    bins = current.get("bins")
    if not bins or len(bins) != len(reference_counts):
        return None
    statistic = summaries.ks_binned(reference_counts, bins)
    return {
        "kind": "numeric",
        "psi": summaries.psi(reference_counts, bins),
        "ks": statistic,
        "ks_pvalue": summaries.ks_pvalue(statistic, sum(reference_counts), sum(bins)),
        "reference": {"edges": spec["edges"], "counts": reference_counts},
        "current": {"counts": bins},
    }


def categorical_scores(spec: dict, current: dict) -> dict[str, Any] | None:
    cats = current.get("cats")
    if cats is None:
        return None
    known = spec["categories"]
    reference_counts = dict(known)
    reference_counts[summaries.OTHER] = spec.get("other", 0)
    current_counts = {name: cats.get(name, 0) for name in known}
    current_counts[summaries.OTHER] = sum(n for name, n in cats.items() if name not in known)
    names, ref, cur = summaries.aligned_categories(reference_counts, current_counts)
    return {
        "kind": "categorical",
        "psi": summaries.psi(ref, cur),
        "js": summaries.jensen_shannon(ref, cur),
        "reference": {"categories": dict(zip(names, ref, strict=True))},
        "current": {"categories": dict(zip(names, cur, strict=True))},
    }


def prediction_scores(baseline: dict, current: dict) -> dict[str, Any] | None:
    if not baseline or not current:
        return None
    if "cats" in baseline and "cats" in current:
        names, ref, cur = summaries.aligned_categories(baseline["cats"], current["cats"])
        return {
            "kind": "categorical",
            "psi": summaries.psi(ref, cur),
            "js": summaries.jensen_shannon(ref, cur),
            "reference": {"categories": dict(zip(names, ref, strict=True))},
            "current": {"categories": dict(zip(names, cur, strict=True))},
            "n": current.get("n", 0),
            "baseline_n": baseline.get("n", 0),
        }
    if "lbins" in baseline and "lbins" in current:
        keys, ref, cur = summaries.aligned_log_bins(baseline["lbins"], current["lbins"])
        statistic = summaries.ks_binned(ref, cur)
        return {
            "kind": "numeric",
            "psi": summaries.psi(ref, cur),
            "ks": statistic,
            "ks_pvalue": summaries.ks_pvalue(statistic, sum(ref), sum(cur)),
            "reference": {"values": [summaries.log_bin_value(k) for k in keys], "counts": ref},
            "current": {"counts": cur},
            "n": current.get("n", 0),
            "baseline_n": baseline.get("n", 0),
        }
    return None


def compute_report(endpoint: Endpoint, *, now: dt.datetime | None = None, save: bool = True) -> DriftReport | None:
    """The endpoint's drift report for the window ending `now`; None when it served nothing."""
    now = now or timezone.now()
    config = selectors.monitoring_settings(endpoint)
    window = dt.timedelta(hours=config.drift_window_hours)
    start = now - window
    rows, current, predictions = merged_window(endpoint.pk, start, now)
    if not rows and not current:
        return None
    dataset_version = reference.reference_for(
        reference_version_id=config.reference_version_id, model_version_id=endpoint.current_version_id
    )
    spec = reference.spec_of(dataset_version.profile if dataset_version else None)
    warn, alert = config.drift_warn_psi, config.drift_alert_psi
    features: list[dict] = []
    notes: list[str] = []
    if dataset_version is None:
        notes.append("No profiled training dataset version: input drift cannot be measured.")
    for name in sorted(current):
        summary = current[name]
        column_spec = spec.get(name)
        entry: dict[str, Any] = {"name": name, "n": summary.get("n", 0), "nulls": summary.get("nulls", 0)}
        scores = None
        if column_spec is not None and summary.get("n", 0) - summary.get("nulls", 0) >= MIN_ROWS:
            if column_spec["kind"] == "numeric":
                scores = numeric_scores(column_spec, summary)
            else:
                scores = categorical_scores(column_spec, summary)
        if scores is None:
            entry |= {"kind": "unscored", "psi": None, "verdict": None}
            entry["why"] = "not in the training profile" if column_spec is None else "too few rows or other bins"
        else:
            entry |= scores
            entry["verdict"] = verdict_of(scores["psi"], warn=warn, alert=alert)
        features.append(entry)
    prediction = None
    if predictions.get("n", 0) >= MIN_ROWS:
        _, _, baseline = merged_window(endpoint.pk, start - window, start)
        if baseline.get("n", 0) >= MIN_ROWS:
            prediction = prediction_scores(baseline, predictions)
            if prediction is not None:
                prediction["verdict"] = verdict_of(prediction["psi"], warn=warn, alert=alert)
    scored = [f["psi"] for f in features if f.get("psi") is not None]
    if prediction is not None:
        scored.append(prediction["psi"])
    overall = max(scored) if scored else None
    if not scored and dataset_version is not None:
        notes.append("No served column could be compared with the training profile.")
    features.sort(key=lambda f: -(f.get("psi") or -1))
    fields = {
        "endpoint": endpoint,
        "model_version_id": endpoint.current_version_id,
        "reference_version": dataset_version,
        "window_start": start,
        "window_end": now,
        "computed_at": now,
        "rows": rows,
        "overall_score": overall,
        "verdict": verdict_of(overall, warn=warn, alert=alert),
        "drifted_features": sum(1 for f in features if f.get("verdict") in (Verdict.WARN, Verdict.ALERT)),
        "warn_threshold": warn,
        "alert_threshold": alert,
        "features": features,
        "prediction": prediction,
        "note": " ".join(notes),
    }
    if not save:
        return DriftReport(**fields)
    with transaction.atomic():
        return services.save_drift_report(**fields)


def compute_all(now: dt.datetime | None = None) -> dict[str, int]:
    """A report for every live endpoint that served something in its window."""
    done = skipped = 0
    for endpoint in Endpoint.objects.filter(state=Endpoint.State.LIVE).order_by("pk"):
        if compute_report(endpoint, now=now) is None:
            skipped += 1
        else:
            done += 1
    return {"reports": done, "idle": skipped}
