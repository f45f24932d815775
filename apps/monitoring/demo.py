"""Demo monitoring: four weeks of telemetry for the live "churn-propensity" endpoint (hourly rows
for the older weeks, minute rows for the last two days), prediction records with outcome
feedback (live accuracy beside the card's), and drift reports over time. In the last three
days the customers' credit `score` shifts down (a bureau changed its scale), so the newest
drift report is an alert and the share of predicted churners rises.

Written with bulk_create from generated summaries (what the telemetry flusher would have
written), so loading takes seconds. Idempotent: an endpoint that has telemetry is left alone.
"""

from __future__ import annotations

import datetime as dt
import uuid

import numpy as np
from django.utils import timezone

from apps.deployments.models import Endpoint
from apps.monitoring import drift, reference, summaries
from apps.monitoring.models import LATENCY_FIELDS, Outcome, PredictionRecord, TrafficMinute

ENDPOINT = "churn-propensity"
DAYS = 28
MINUTE_ROWS_HOURS = 48
DRIFT_HOURS = 72
SEED = 20240607
# Latency bucket shares of a healthy minute (mostly 5–25 ms, a tail to a second).
LATENCY_SHARES = np.array([0, 0.02, 0.18, 0.45, 0.25, 0.06, 0.025, 0.01, 0.004, 0.001, 0, 0, 0, 0], dtype=float)


def load(context: dict) -> None:
    endpoint = (
        Endpoint.objects.filter(name=ENDPOINT, state=Endpoint.State.LIVE).select_related("current_version").first()
    )
    if endpoint is None or TrafficMinute.objects.filter(endpoint=endpoint).exists():
        return
    rng = np.random.default_rng(SEED)
    now = timezone.now().replace(second=0, microsecond=0)
    training = _profiled_training_data(endpoint)
    spec = reference.spec_of(training.profile if training else None)
    score_spec = spec.get("score")
    rows = []
    start = now - dt.timedelta(days=DAYS)
    moment = start.replace(minute=0)
    while moment < now:
        recent = moment >= now - dt.timedelta(hours=MINUTE_ROWS_HOURS)
        step = dt.timedelta(minutes=1) if recent else dt.timedelta(hours=1)
        rows.append(_period(endpoint, moment, step, now, rng, score_spec))
        moment += step
    TrafficMinute.objects.bulk_create(rows, batch_size=500)
    _predictions_and_outcomes(endpoint, now, rng)
    _drift_reports(endpoint, now)


def _profiled_training_data(endpoint: Endpoint):
    """The champion's training data, profiled now if the catalog's job has not run yet (the
    demo loads before any worker starts); the job does the same work again later."""
    version = reference.training_dataset_version(endpoint.current_version_id)
    if version is not None:
        return version
    from apps.catalog import services as catalog
    from apps.catalog.profiling import ProfileError, profile_file, sha256_file
    from apps.tracking.models import RunInput

    pending = (
        RunInput.objects.filter(run__model_versions__pk=endpoint.current_version_id, dataset_version__isnull=False)
        .select_related("dataset_version")
        .first()
    )
    if pending is None or not pending.dataset_version.source_uri:
        return None
    try:
        profile = profile_file(pending.dataset_version.source_uri, pending.dataset_version.format)
        digest, size = sha256_file(pending.dataset_version.source_uri)
    except (ProfileError, OSError):
        return None
    catalog.apply_profile(
        version=pending.dataset_version, profile=profile.to_dict(), content_hash=digest, size_bytes=size
    )
    return reference.training_dataset_version(endpoint.current_version_id)


def _period(endpoint, moment, step, now, rng, score_spec) -> TrafficMinute:
    hours = step.total_seconds() / 3600
    # Business-hours traffic: ~40 requests a minute at noon, a few at night; weekends quieter.
    daily = 0.25 + 0.75 * np.exp(-(((moment.hour + moment.minute / 60) - 13) ** 2) / 18)
    weekly = 0.6 if moment.weekday() >= 5 else 1.0
    requests = int(rng.poisson(max(0.5, 40 * daily * weekly * hours * 60)))
    drifting = moment >= now - dt.timedelta(hours=DRIFT_HOURS)
    # An incident eleven days ago: an upstream sent malformed payloads for two hours.
    incident = now - dt.timedelta(days=11, hours=3) <= moment < now - dt.timedelta(days=11, hours=1)
    error_rate = 0.18 if incident else 0.004
    errors = int(rng.binomial(requests, error_rate)) if requests else 0
    buckets = rng.multinomial(requests, LATENCY_SHARES / LATENCY_SHARES.sum()) if requests else [0] * 14
    rows_scored = requests * int(rng.integers(1, 4))
    answered = max(0, rows_scored - errors)
    row = TrafficMinute(
        endpoint=endpoint,
        model_version_id=endpoint.current_version_id,
        minute=moment,
        requests=requests,
        errors=errors,
        errors_by_kind={"bad_request": errors} if errors else {},
        rows=rows_scored,
        latency_sum_ms=float(requests * 14.0),
        latency_max_ms=float(rng.uniform(60, 900)) if requests else 0.0,
        features=_features(answered, drifting, rng, score_spec),
        predictions=_predictions(answered, drifting, rng),
    )
    for field, count in zip(LATENCY_FIELDS, buckets, strict=True):
        setattr(row, field, int(count))
    return row


def _features(n: int, drifting: bool, rng, score_spec) -> dict:
    if not n:
        return {}
    sample = min(n, 200)  # summaries of a sample, scaled: cheap and the proportions are what count
    amount = np.log1p(rng.lognormal(4, 0.8, sample))
    out = {
        "log_amount": summaries.summarise_column(amount),
        "month": summaries.summarise_column(rng.integers(1, 13, sample).astype(float)),
    }
    if score_spec is not None:
        counts = np.array(score_spec["counts"], dtype=float)
        shares = counts / counts.sum()
        if drifting:
            # The bureau's new scale: scores read about 60 points lower, so the mass moves down
            # the profile's bins (and some below its range).
            shift = max(1, int(round(60 / max(1e-9, score_spec["edges"][1] - score_spec["edges"][0]))))
            shares = np.concatenate([shares[shift:], np.zeros(shift)])
            under = counts[:shift].sum() / counts.sum()
            bins = [*rng.multinomial(n, np.concatenate([[under], shares * (1 - under) / max(1e-9, shares.sum()), [0]]))]
        else:
            bins = [0, *rng.multinomial(n, shares), 0]
        out["score"] = {"n": n, "nulls": 0, "bins": [int(b) for b in bins]}
    return out


def _predictions(n: int, drifting: bool, rng) -> dict:
    if not n:
        return {}
    churners = int(rng.binomial(n, 0.36 if drifting else 0.21))
    return {"n": n, "nulls": 0, "cats": {"0": n - churners, "1": churners}}


def _predictions_and_outcomes(endpoint, now, rng) -> None:
    """Two weeks of scored customers, their realised churn posted back for the older ones (the
    label arrives with a delay): live accuracy near the card's, dipping with the drift."""
    records, outcomes = [], []
    for day in range(14, 0, -1):
        for _ in range(60):
            at = now - dt.timedelta(days=day, minutes=int(rng.integers(0, 24 * 60)))
            drifting = at >= now - dt.timedelta(hours=DRIFT_HOURS)
            predicted = int(rng.random() < (0.36 if drifting else 0.21))
            request_id = uuid.UUID(int=int(rng.integers(0, 2**63)) << 64 | int(rng.integers(0, 2**63))).hex
            records.append(
                PredictionRecord(
                    endpoint=endpoint,
                    model_version_id=endpoint.current_version_id,
                    request_id=request_id,
                    created_at=at,
                    rows=1,
                    predictions=[predicted],
                )
            )
            if day >= 2:
                right = rng.random() < (0.7 if drifting else 0.82)
                outcomes.append(
                    Outcome(
                        endpoint=endpoint,
                        model_version_id=endpoint.current_version_id,
                        request_id=request_id,
                        row=0,
                        actual=predicted if right else 1 - predicted,
                        predicted=predicted,
                        predicted_at=at,
                        recorded_at=at + dt.timedelta(days=1),
                    )
                )
    PredictionRecord.objects.bulk_create(records, batch_size=500)
    Outcome.objects.bulk_create(outcomes, batch_size=500)


def _drift_reports(endpoint, now) -> None:
    """A report a day for the older weeks, every six hours for the last three days."""
    moments = [now - dt.timedelta(days=d) for d in range(DAYS - 1, 3, -1)]
    moments += [now - dt.timedelta(hours=h) for h in range(72, -1, -6)]
    for moment in moments:
        drift.compute_report(endpoint, now=moment)
