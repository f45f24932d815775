"""Seeding for bench/tracking.py: the same synthetic runs written straight into each store.

Ingesting 100,000 runs through the MLflow client takes hours, so the search benchmark's runs
are written directly: into Causeway with the Django ORM (bulk_create), into the stock MLflow
server's SQLite file with sqlite3 and MLflow's own tables. Both get the runs of `synthetic_runs`,
identical in both stores, in one of two payloads (`PAYLOADS`): "heavy", 20 params, 10 tags and 10
metrics, and "light", 3 params, 4 system tags and 2 metrics, like a quick-start training script.
Every metric has one point (so `metrics` and `latest_metrics` hold the same values).

    # Causeway (run by bench/tracking.py with CAUSEWAY_VAR_DIR etc. set):
    .venv/bin/python bench/tracking_seed.py causeway-user USERNAME
    .venv/bin/python bench/tracking_seed.py causeway USERNAME EXPERIMENT_NAME RUNS [SEED [PAYLOAD]]

The MLflow side is `seed_mlflow(db_path, experiment_id, artifact_location, runs)`, imported by
bench/tracking.py (no Django there).
"""

from __future__ import annotations

import os
import random
import sqlite3
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# payload: (params, metrics, extra user tags beyond the 4 system tags, git commit tag)
PAYLOADS = {"heavy": (20, 10, 5, True), "light": (3, 2, 0, False)}
P0_VALUES = ["v0", "v1", "v2", "v3", "v4"]  # `params.p0 = 'v1'` keeps one run in five
BATCH = 5000
BASE_TIME_MS = 1_760_000_000_000


@dataclass(frozen=True)
class SyntheticRun:
    run_uuid: str
    name: str
    start_time: int
    end_time: int
    params: list[tuple[str, str]]
    metrics: list[tuple[str, float, int, int]]  # key, value, timestamp, step
    tags: list[tuple[str, str]]


def synthetic_runs(n: int, *, seed: int, user: str, payload: str = "heavy") -> Iterator[SyntheticRun]:
    """Deterministic runs: the same `seed` gives the same runs, uuids included."""
    n_params, n_metrics, n_user_tags, git_commit = PAYLOADS[payload]
    rng = random.Random(seed)  # noqa: S311 — benchmark data
    for i in range(n):
        run_uuid = f"{rng.getrandbits(128):032x}"
        start = BASE_TIME_MS + i * 1000
        end = start + rng.randint(1000, 600_000)
        name = f"bench-{seed}-{i}"
        params = [("p0", rng.choice(P0_VALUES))] + [(f"p{k}", f"{rng.random():.6f}") for k in range(1, n_params)]
        metrics = [(f"m{k}", rng.random(), end, 9) for k in range(n_metrics)]
        tags = [
            ("mlflow.runName", name),
            ("mlflow.user", user),
            ("mlflow.source.type", "LOCAL"),
            ("mlflow.source.name", "train.py"),
        ]
        if git_commit:
            tags.append(("mlflow.source.git.commit", f"{rng.getrandbits(160):040x}"))
        tags += [(f"t{k}", f"tag-{rng.randint(0, 99)}") for k in range(n_user_tags)]
        yield SyntheticRun(run_uuid, name, start, end, params, metrics, tags)


def _batches(n: int, *, seed: int, user: str, payload: str) -> Iterator[list[SyntheticRun]]:
    batch: list[SyntheticRun] = []
    for run in synthetic_runs(n, seed=seed, user=user, payload=payload):
        batch.append(run)
        if len(batch) == BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


# --- Stock MLflow server (its SQLAlchemy schema, mlflow/store/tracking/dbmodels/models.py) ----


def seed_mlflow(
    db_path: Path, experiment_id: int, artifact_location: str, n: int, *, seed: int, payload: str = "heavy"
) -> float:
    """Insert `n` finished runs into experiment `experiment_id` of a stock MLflow SQLite store
    (the server may be running: it is idle while this writes). Returns the seconds taken."""
    started = time.perf_counter()
    conn = sqlite3.connect(db_path, timeout=60)
    try:
        for batch in _batches(n, seed=seed, user="bench", payload=payload):
            with conn:
                conn.executemany(
                    "INSERT INTO runs (run_uuid, name, source_type, source_name, entry_point_name, user_id,"
                    " status, start_time, end_time, source_version, lifecycle_stage, artifact_uri,"
                    " experiment_id, deleted_time) VALUES (?, ?, 'LOCAL', '', '', 'bench', 'FINISHED', ?, ?, '',"
                    " 'active', ?, ?, NULL)",
                    [
                        (
                            r.run_uuid,
                            r.name,
                            r.start_time,
                            r.end_time,
                            f"{artifact_location}/{r.run_uuid}/artifacts",
                            experiment_id,
                        )
                        for r in batch
                    ],
                )
                conn.executemany(
                    "INSERT INTO params (key, value, run_uuid) VALUES (?, ?, ?)",
                    [(k, v, r.run_uuid) for r in batch for k, v in r.params],
                )
                conn.executemany(
                    "INSERT INTO tags (key, value, run_uuid) VALUES (?, ?, ?)",
                    [(k, v, r.run_uuid) for r in batch for k, v in r.tags],
                )
                points = [(k, v, ts, r.run_uuid, step) for r in batch for k, v, ts, step in r.metrics]
                conn.executemany(
                    "INSERT INTO metrics (key, value, timestamp, run_uuid, step, is_nan) VALUES (?, ?, ?, ?, ?, 0)",
                    points,
                )
                conn.executemany(
                    "INSERT INTO latest_metrics (key, value, timestamp, run_uuid, step, is_nan)"
                    " VALUES (?, ?, ?, ?, ?, 0)",
                    points,
                )
    finally:
        conn.close()
    return time.perf_counter() - started


# --- Causeway (Django ORM) --------------------------------------------------------------------


def _django() -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()


def causeway_user(username: str) -> None:
    """A Data scientist called `username` (idempotent)."""
    _django()
    from django.contrib.auth.models import Group

    from apps.accounts.models import User
    from apps.accounts.roles import SCIENTIST, sync_role_permissions

    sync_role_permissions()
    user, _ = User.objects.get_or_create(username=username, defaults={"email": f"{username}@example.com"})
    user.groups.add(Group.objects.get(name=SCIENTIST))


def seed_causeway(username: str, experiment_name: str, n: int, *, seed: int, payload: str = "heavy") -> float:
    """Create `experiment_name` owned by `username` with `n` finished runs, then ANALYZE (what
    beat's hourly core.refresh_planner_statistics does). Returns the seconds taken."""
    _django()
    from django.db import connection, transaction

    from apps.accounts.models import User
    from apps.tracking import artifacts, services
    from apps.tracking.models import Experiment, LatestMetric, Metric, Param, Run, RunTag

    started = time.perf_counter()
    user = User.objects.get(username=username)
    experiment = Experiment.objects.filter(name=experiment_name).first()
    if experiment is None:
        experiment = services.create_experiment(by=user, name=experiment_name)
    for batch in _batches(n, seed=seed, user=username, payload=payload):
        with transaction.atomic():
            runs = Run.objects.bulk_create(
                [
                    Run(
                        run_uuid=r.run_uuid,
                        experiment=experiment,
                        name=r.name,
                        user=user,
                        status=Run.Status.FINISHED,
                        start_time=r.start_time,
                        end_time=r.end_time,
                        artifact_uri=artifacts.run_artifact_uri(experiment.pk, r.run_uuid),
                    )
                    for r in batch
                ]
            )
            if runs and runs[0].pk is None:
                by_uuid = dict(
                    Run.objects.filter(run_uuid__in=[r.run_uuid for r in batch]).values_list("run_uuid", "pk")
                )
                for run in runs:
                    run.pk = by_uuid[run.run_uuid]
            pairs = list(zip(runs, batch, strict=True))
            Param.objects.bulk_create(
                [Param(run_id=run.pk, key=k, value=v) for run, r in pairs for k, v in r.params], batch_size=BATCH
            )
            RunTag.objects.bulk_create(
                [RunTag(run_id=run.pk, key=k, value=v) for run, r in pairs for k, v in r.tags], batch_size=BATCH
            )
            Metric.objects.bulk_create(
                [
                    Metric(run_id=run.pk, key=k, value=v, timestamp=ts, step=step)
                    for run, r in pairs
                    for k, v, ts, step in r.metrics
                ],
                batch_size=BATCH,
            )
            LatestMetric.objects.bulk_create(
                [
                    LatestMetric(
                        run_id=run.pk, experiment_id=run.experiment_id, key=k, value=v, timestamp=ts, step=step
                    )
                    for run, r in pairs
                    for k, v, ts, step in r.metrics
                ],
                batch_size=BATCH,
            )
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    return time.perf_counter() - started


def main() -> None:
    command, *args = sys.argv[1:]
    if command == "causeway-user":
        causeway_user(args[0])
    elif command == "causeway":
        username, name, runs = args[0], args[1], int(args[2])
        seed = int(args[3]) if len(args) > 3 else runs
        payload = args[4] if len(args) > 4 else "heavy"
        print(f"{seed_causeway(username, name, runs, seed=seed, payload=payload):.1f}")
    else:
        sys.exit(f"unknown command {command!r}")


if __name__ == "__main__":
    main()
