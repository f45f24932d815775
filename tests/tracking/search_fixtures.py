"""Rows for the search grammar's tests: five runs whose metrics, params, tags, inputs and
attributes make every comparator and ordering rule observable, one stranger run in another
experiment, and three experiments.

| run     | user  | status   | start | end  | rmse | acc  | model | depth | team   | note           |
|---------|-------|----------|-------|------|------|------|-------|-------|--------|----------------|
| alpha   | alice | FINISHED | 1000  | 2000 | 0.3  | 0.9  | rf    | 5     | vision | Hello          |
| beta    | bob   | FAILED   | 2000  | -    | 0.7  | 0.8  | xgb   | 10    | nlp    | hello          |
| gamma   | alice | RUNNING  | 3000  | -    | NaN  | -    | RF    | -     | vision | -              |
| delta   | bob   | FINISHED | 4000  | 5000 | -    | 0.95 | lr    | -     | -      | [draft] *wip*  |
| epsilon | alice | FINISHED | 4000  | 4500 | 0.3  | -    | rf_2  | -     | -      | 50% off        |

Run ids are the name padded with zeros, so ties on start_time (delta, epsilon) break by name.
"""

from __future__ import annotations

import math

from apps.accounts.models import User
from apps.tracking.models import Experiment, ExperimentTag, LatestMetric, Param, Run, RunInput, RunTag

RUNS: dict[str, dict] = {
    "alpha": {
        "user": "alice",
        "status": "FINISHED",
        "start_time": 1000,
        "end_time": 2000,
        "artifact_uri": "s3://bucket/alpha",
        "metrics": {"rmse": 0.3, "acc": 0.9},
        "params": {"model": "rf", "depth": "5"},
        "tags": {"team": "vision", "note": "Hello"},
        "inputs": [("sales", "d1", "training")],
    },
    "beta": {
        "user": "bob",
        "status": "FAILED",
        "start_time": 2000,
        "end_time": None,
        "metrics": {"rmse": 0.7, "acc": 0.8},
        "params": {"model": "xgb", "depth": "10"},
        "tags": {"team": "nlp", "note": "hello"},
        "inputs": [("churn", "d2", "eval")],
    },
    "gamma": {
        "user": "alice",
        "status": "RUNNING",
        "start_time": 3000,
        "end_time": None,
        "metrics": {"rmse": math.nan},
        "params": {"model": "RF"},
        "tags": {"team": "vision"},
        "inputs": [],
    },
    "delta": {
        "user": "bob",
        "status": "FINISHED",
        "start_time": 4000,
        "end_time": 5000,
        "metrics": {"acc": 0.95, "val loss": 0.1},
        "params": {"model": "lr"},
        "tags": {"my tag": "x y", "note": "[draft] *wip*"},
        "inputs": [("sales", "d3", "")],
    },
    "epsilon": {
        "user": "alice",
        "status": "FINISHED",
        "start_time": 4000,
        "end_time": 4500,
        "metrics": {"rmse": 0.3},
        "params": {"model": "rf_2"},
        "tags": {"note": "50% off"},
        "inputs": [],
    },
}


def run_id(name: str) -> str:
    return name.ljust(32, "0")


def build_runs() -> dict[str, Run]:
    """The five runs of the table in one experiment, plus `stranger` (matching almost every
    filter) in another; returns them by name."""
    users = {name: User.objects.create(username=name) for name in ("alice", "bob")}
    experiment = Experiment.objects.create(name="searched", creation_time=0, last_update_time=0)
    runs = {name: _run(experiment, users, name, spec) for name, spec in RUNS.items()}
    elsewhere = Experiment.objects.create(name="elsewhere", creation_time=0, last_update_time=0)
    runs["stranger"] = _run(elsewhere, users, "stranger", {**RUNS["alpha"], "start_time": 9000})
    return runs


def _run(experiment: Experiment, users: dict[str, User], name: str, spec: dict) -> Run:
    run = Run.objects.create(
        run_uuid=run_id(name),
        experiment=experiment,
        name=name,
        user=users[spec["user"]],
        status=spec["status"],
        start_time=spec["start_time"],
        end_time=spec["end_time"],
        artifact_uri=spec.get("artifact_uri", f"file:///artifacts/{name}"),
    )
    LatestMetric.objects.bulk_create(
        LatestMetric(
            run=run,
            experiment_id=run.experiment_id,
            key=key,
            value=None if math.isnan(value) else value,
            is_nan=math.isnan(value),
            timestamp=0,
        )
        for key, value in spec["metrics"].items()
    )
    Param.objects.bulk_create(Param(run=run, key=key, value=value) for key, value in spec["params"].items())
    tags = {**spec["tags"], "mlflow.runName": name}
    RunTag.objects.bulk_create(RunTag(run=run, key=key, value=value) for key, value in tags.items())
    RunInput.objects.bulk_create(
        RunInput(run=run, name=dataset, digest=digest, source_type="local", source="/data", context=context)
        for dataset, digest, context in spec["inputs"]
    )
    return run


EXPERIMENTS: dict[str, dict] = {
    "alpha-exp": {"creation_time": 100, "last_update_time": 500, "tags": {"team": "vision"}},
    "beta-exp": {"creation_time": 200, "last_update_time": 300, "tags": {"team": "nlp", "x": "1"}},
    "gamma": {"creation_time": 200, "last_update_time": 100, "tags": {}},
}


def build_experiments() -> dict[str, Experiment]:
    """The experiments of EXPERIMENTS, created in that order (so ids ascend), by name."""
    experiments = {}
    for name, spec in EXPERIMENTS.items():
        experiment = Experiment.objects.create(
            name=name, creation_time=spec["creation_time"], last_update_time=spec["last_update_time"]
        )
        ExperimentTag.objects.bulk_create(
            ExperimentTag(experiment=experiment, key=key, value=value) for key, value in spec["tags"].items()
        )
        experiments[name] = experiment
    return experiments


def mlflow_runs() -> list:
    """The five runs of the table as MLflow entities, for MLflow's own in-memory search
    (`mlflow.utils.search_utils.SearchUtils`), the reference the grammar is checked against."""
    from mlflow.entities import Dataset, DatasetInput, InputTag, Metric, RunData, RunInfo, RunInputs
    from mlflow.entities import Param as MlflowParam
    from mlflow.entities import Run as MlflowRun
    from mlflow.entities import RunTag as MlflowRunTag

    runs = []
    for name, spec in RUNS.items():
        info = RunInfo(
            run_id=run_id(name),
            experiment_id="1",
            user_id=spec["user"],
            status=spec["status"],
            start_time=spec["start_time"],
            end_time=spec["end_time"],
            lifecycle_stage="active",
            artifact_uri=spec.get("artifact_uri", f"file:///artifacts/{name}"),
            run_name=name,
        )
        data = RunData(
            metrics=[Metric(key, value, 0, 0) for key, value in spec["metrics"].items()],
            params=[MlflowParam(key, value) for key, value in spec["params"].items()],
            tags=[MlflowRunTag(key, value) for key, value in {**spec["tags"], "mlflow.runName": name}.items()],
        )
        inputs = RunInputs(
            dataset_inputs=[
                DatasetInput(
                    Dataset(name=dataset, digest=digest, source_type="local", source="/data"),
                    tags=[InputTag("mlflow.data.context", context)] if context else [],
                )
                for dataset, digest, context in spec["inputs"]
            ]
        )
        runs.append(MlflowRun(info, data, inputs))
    return runs
