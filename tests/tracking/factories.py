"""Small ORM builders for tracking rows (the pages' tests do not go through services.py)."""

from __future__ import annotations

import itertools
import time

from apps.tracking.artifacts import experiment_artifact_location, run_artifact_uri
from apps.tracking.models import (
    Experiment,
    ExperimentTag,
    LatestMetric,
    LoggedModel,
    Metric,
    Param,
    Run,
    RunInput,
    RunTag,
)

_names = itertools.count(1)
BASE_TIME = 1_700_000_000_000  # ms


def now_ms() -> int:
    return int(time.time() * 1000)


def make_experiment(
    owner, name: str | None = None, *, visibility="private", team=None, description="", tags=None, deleted=False
) -> Experiment:
    experiment = Experiment.objects.create(
        name=name or f"experiment-{next(_names)}",
        owner=owner,
        team=team,
        visibility=visibility,
        description=description,
        lifecycle_stage="deleted" if deleted else "active",
        creation_time=BASE_TIME,
        last_update_time=BASE_TIME,
    )
    experiment.artifact_location = experiment_artifact_location(experiment.pk)
    experiment.save(update_fields=["artifact_location"])
    ExperimentTag.objects.bulk_create(
        ExperimentTag(experiment=experiment, key=key, value=value) for key, value in (tags or {}).items()
    )
    return experiment


def make_run(
    experiment,
    user=None,
    *,
    name: str = "",
    status: str = "FINISHED",
    params: dict | None = None,
    metrics: dict | None = None,
    tags: dict | None = None,
    start_time: int | None = None,
    duration_ms: int = 90_000,
    deleted: bool = False,
) -> Run:
    """A run with params, tags and metrics. A metric given as a list is its history, one point
    per step; its last point is the latest value."""
    start = start_time if start_time is not None else BASE_TIME + next(_names) * 1000
    run = Run.objects.create(
        experiment=experiment,
        user=user or experiment.owner,
        name=name,
        status=status,
        start_time=start,
        end_time=start + duration_ms if status != "RUNNING" else None,
        lifecycle_stage="deleted" if deleted else "active",
    )
    run.artifact_uri = run_artifact_uri(experiment.pk, run.run_uuid)
    run.save(update_fields=["artifact_uri"])
    Param.objects.bulk_create(Param(run=run, key=key, value=str(value)) for key, value in (params or {}).items())
    RunTag.objects.bulk_create(RunTag(run=run, key=key, value=value) for key, value in (tags or {}).items())
    points, latest = [], []
    for key, values in (metrics or {}).items():
        history = values if isinstance(values, list) else [values]
        for step, value in enumerate(history):
            points.append(Metric(run=run, key=key, value=value, timestamp=start + step * 1000, step=step))
        latest.append(
            LatestMetric(
                run=run,
                experiment_id=run.experiment_id,
                key=key,
                value=history[-1],
                timestamp=start + (len(history) - 1) * 1000,
                step=len(history) - 1,
            )
        )
    Metric.objects.bulk_create(points)
    LatestMetric.objects.bulk_create(latest)
    return run


def add_input(run, *, name="training-data", dataset_version=None, context="training", digest="abc123") -> RunInput:
    return RunInput.objects.create(
        run=run,
        name=name,
        digest=digest,
        source_type="local",
        source="/data/train.csv",
        context=context,
        dataset_version=dataset_version,
    )


def add_logged_model(run, name="model") -> LoggedModel:
    model_id = f"m-{run.run_uuid[:8]}-{next(_names)}"
    return LoggedModel.objects.create(
        model_id=model_id,
        experiment=run.experiment,
        run=run,
        name=name,
        user=run.user,
        status="READY",
        model_type="sklearn",
        source_run_uuid=run.run_uuid,
        artifact_location=f"mlflow-artifacts:/{run.experiment_id}/models/{model_id}/artifacts",
        creation_timestamp=run.start_time,
        last_updated_timestamp=run.start_time,
    )
