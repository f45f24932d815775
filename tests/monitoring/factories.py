"""Builders for monitoring data: endpoints (with or without a model version) and telemetry
written directly, as the flusher would. Other apps' tests (alerting, value) may use them:

    from tests.monitoring.factories import make_endpoint, record_minute
    endpoint = make_endpoint(owner)
    record_minute(endpoint=endpoint, minute=now, requests=100, errors={"bad_request": 7},
                  latencies_ms=[12.0] * 95 + [900.0] * 5)
"""

from __future__ import annotations

import datetime as dt
import itertools

from django.utils import timezone

from apps.deployments.models import Endpoint, Environment
from apps.monitoring.models import DriftReport
from apps.monitoring.services import record_minute  # noqa: F401  (re-exported for other apps' tests)

_names = itertools.count(1)


def make_endpoint(owner, *, name: str | None = None, environment: str = "production", team=None, version=None, **extra):
    env, _ = Environment.objects.get_or_create(name=environment, defaults={"forbid_unapproved_pii": False})
    return Endpoint.objects.create(
        name=name or f"endpoint-{next(_names)}",
        environment=env,
        owner=owner,
        team=team,
        current_version=version,
        **extra,
    )


def make_drift_report(endpoint, *, score: float = 0.05, verdict: str = "ok", at: dt.datetime | None = None, **extra):
    at = at or timezone.now()
    return DriftReport.objects.create(
        endpoint=endpoint,
        window_start=at - dt.timedelta(hours=24),
        window_end=at,
        computed_at=at,
        overall_score=score,
        verdict=verdict,
        **extra,
    )


# A training profile as the catalog writes it: "a" numeric on 4 bins, "region" by top values.
PROFILE = {
    "format": "csv",
    "row_count": 1000,
    "columns": [
        {
            "name": "a",
            "type": "float",
            "null_count": 0,
            "histogram": {"edges": [-2.0, -1.0, 0.0, 1.0, 2.0], "counts": [100, 400, 400, 100]},
            "top_values": [],
        },
        {
            "name": "region",
            "type": "string",
            "null_count": 0,
            "top_values": [
                {"value": "north", "count": 250},
                {"value": "south", "count": 250},
                {"value": "east", "count": 250},
                {"value": "west", "count": 250},
            ],
        },
    ],
}


def make_training_data(version, owner, profile: dict | None = None):
    """Attach a profiled dataset version to `version` as its run's training input."""
    from apps.catalog.models import Dataset, DatasetVersion
    from apps.tracking.models import RunInput
    from tests.tracking.factories import make_experiment, make_run

    dataset = Dataset.objects.create(name=f"training-{next(_names)}", slug=f"training-{next(_names)}", owner=owner)
    dataset_version = DatasetVersion.objects.create(
        dataset=dataset, number=1, status="ready", profile=profile or PROFILE, row_count=1000
    )
    if version.run_id is None:
        version.run = make_run(make_experiment(owner), owner)
        version.save(update_fields=["run"])
    RunInput.objects.create(
        run_id=version.run_id,
        name="training",
        digest=f"d{dataset_version.pk}",
        source_type="catalog",
        source="",
        context="training",
        dataset_version=dataset_version,
    )
    return dataset_version
