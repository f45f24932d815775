"""search_runs at scale: the filter + order_by grammar of apps.tracking.search on an experiment
of 2,000 runs and one of 100,000 runs (5 metrics, 5 params, 5 tags and a dataset input each).

    CAUSEWAY_ENV=test .venv/bin/python bench/tracking_search.py [--repeat 40] [--explain-only]
    CAUSEWAY_ENV=test DATABASE_URL=postgres://... .venv/bin/python bench/tracking_search.py

Each size gets its own throwaway database, built once (SQLite files var/bench/tracking-<size>
.sqlite3, or PostgreSQL databases named after DATABASE_URL's with the suffix _bench_tracking_
<size>). The 100,000-run database also holds a 2,000-run neighbour experiment: searching that
one shows what the planner does for a small experiment beside a large one. Prints the plan of
the headline search and, per search, p50/p95/max in ms of fetching one page and the query count.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("CAUSEWAY_ENV", "test")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
BENCH_DIR = ROOT / "var" / "bench"
# corpus → experiments (name, runs) it holds. The 100,000-run corpus also holds a 2,000-run
# neighbour: searching it shows the plan a small experiment gets beside a large one.
CORPORA = {
    "2000": [("bench-2000", 2_000)],
    "100000": [("bench-100000", 100_000), ("neighbour-2000", 2_000)],
}
# Each corpus runs in a child process where it is the default database (the project's data
# migrations write to the default database whatever `migrate --database` says).
CORPUS = sys.argv[sys.argv.index("--corpus") + 1] if "--corpus" in sys.argv else None
if CORPUS and os.environ.get("DATABASE_URL"):
    os.environ["DATABASE_URL"] = os.environ["DATABASE_URL"].rstrip("/") + f"_bench_tracking_{CORPUS}"
elif CORPUS:
    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    os.environ["SQLITE_PATH"] = str(BENCH_DIR / f"tracking-{CORPUS}.sqlite3")

MODELS = ["rf", "xgb", "lr", "svm", "knn"]
TEAMS = ["vision", "nlp", "risk", "pricing", "growth"]
HEADLINE = ("metrics.rmse < 0.5 and params.model = 'rf'", ["metrics.rmse ASC"])
SEARCHES = [
    # label, filter, order_by, page size
    ("rmse<0.5 & model=rf by rmse", *HEADLINE, 100),
    ("rmse<0.5 & model=rf by rmse 1000", *HEADLINE, 1000),
    ("model=rf by rmse DESC", "params.model = 'rf'", ["metrics.rmse DESC"], 100),
    ("no filter by rmse ASC", "", ["metrics.rmse ASC"], 100),
    ("no filter, default order", "", [], 100),
    ("team tag & FINISHED by param", "tags.team = 'vision' and status = 'FINISHED'", ["params.max_depth DESC"], 100),
    ("r2>=0.9 & dataset by start", "metrics.r2 >= 0.9 and datasets.name = 'sales-2025'", ["start_time DESC"], 100),
    ("runName LIKE by run_name", "attributes.run_name LIKE 'run-1%'", ["run_name"], 100),
    ("tag ILIKE & rmse!=", "tags.team ILIKE 'VIS%' and metrics.rmse != 0.5", ["metrics.mae"], 100),
]


def build(experiment_name: str, n_runs: int) -> None:
    from django.db import transaction

    from apps.accounts.models import User
    from apps.tracking.models import Experiment, LatestMetric, Metric, Param, Run, RunInput, RunTag

    user, _ = User.objects.get_or_create(username="bench-tracker")
    experiment, _ = Experiment.objects.get_or_create(
        name=experiment_name, defaults={"owner": user, "creation_time": 0, "last_update_time": 0}
    )
    done = Run.objects.filter(experiment=experiment).count()
    rng = random.Random(f"{experiment_name}-{done}")  # noqa: S311 — benchmark data
    started = time.perf_counter()
    for start in range(done, n_runs, 5000):
        with transaction.atomic():
            runs = Run.objects.bulk_create(
                [_run(rng, experiment, user, i) for i in range(start, min(start + 5000, n_runs))]
            )
            latest = [metric for run in runs for metric in _metrics(rng, run)]
            LatestMetric.objects.bulk_create(latest, batch_size=5000)
            history = [
                Metric(run=m.run, key=m.key, value=m.value, is_nan=m.is_nan, timestamp=m.timestamp) for m in latest
            ]
            Metric.objects.bulk_create(history, batch_size=5000)
            Param.objects.bulk_create([p for run in runs for p in _params(rng, run)], batch_size=5000)
            RunTag.objects.bulk_create([t for run in runs for t in _tags(rng, run, user)], batch_size=5000)
            RunInput.objects.bulk_create([_input(rng, run) for run in runs], batch_size=5000)
        print(
            f"  {experiment_name}: {min(start + 5000, n_runs)} runs ({time.perf_counter() - started:.0f}s)", flush=True
        )


def _run(rng: random.Random, experiment, user, i: int):
    from apps.tracking.models import Run

    start = 1_700_000_000_000 + i * 1000 + rng.randrange(1000)
    return Run(
        experiment=experiment,
        name=f"run-{i}",
        user=user,
        status=rng.choice(["FINISHED", "FINISHED", "FINISHED", "FAILED", "RUNNING"]),
        start_time=start,
        end_time=None if rng.random() < 0.1 else start + 5000,
    )


def _input(rng: random.Random, run):
    from apps.tracking.models import RunInput

    return RunInput(
        run=run,
        name=rng.choice(["sales-2024", "sales-2025", "churn", "images"]),
        digest=f"{rng.getrandbits(32):08x}",
        source_type="local",
        source="/data",
        context=rng.choice(["training", "eval"]),
    )


def _metrics(rng: random.Random, run) -> list:
    from apps.tracking.models import LatestMetric

    rows = []
    for key in ("rmse", "mae", "r2", "accuracy", "loss"):
        draw = rng.random()
        if key == "rmse" and draw < 0.03:
            continue  # some runs never logged rmse: they sort last
        nan = key == "rmse" and draw < 0.04
        value = None if nan else rng.random()
        rows.append(
            LatestMetric(
                run=run,
                experiment_id=run.experiment_id,
                key=key,
                value=value,
                is_nan=nan,
                timestamp=run.start_time + 100,
                step=rng.randrange(50),
            )
        )
    return rows


def _params(rng: random.Random, run) -> list:
    from apps.tracking.models import Param

    values = {
        "model": rng.choice(MODELS),
        "max_depth": str(rng.randrange(2, 20)),
        "learning_rate": f"{rng.random():.3f}",
        "n_estimators": str(rng.choice([50, 100, 200, 500])),
        "seed": str(rng.randrange(10_000)),
    }
    return [Param(run=run, key=key, value=value) for key, value in values.items()]


def _tags(rng: random.Random, run, user) -> list:
    from apps.tracking.models import RunTag

    values = {
        "mlflow.runName": run.name,
        "mlflow.user": user.username,
        "team": rng.choice(TEAMS),
        "stage": rng.choice(["dev", "staging", "prod"]),
        "note": f"note {rng.randrange(1000)}",
    }
    return [RunTag(run=run, key=key, value=value) for key, value in values.items()]


def measure(label: str, fetch: Callable[[], list], repeat: int) -> None:
    from django.db import connection

    fetch()  # warm
    executed: list[str] = []

    def count(execute, sql, params, many, context):
        executed.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(count):
        rows = fetch()
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fetch()
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    p95 = times[max(0, int(len(times) * 0.95) - 1)]
    print(
        f"  {label:<34} p50 {statistics.median(times):7.1f} ms   p95 {p95:7.1f} ms   max {times[-1]:7.1f} ms"
        f"   rows {len(rows):>4}   queries {len(executed)}"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=40)
    parser.add_argument("--explain-only", action="store_true", help="print the plans, skip the timings")
    parser.add_argument("--corpus", choices=list(CORPORA), help="one corpus (default: each, in a child process)")
    parser.add_argument(
        "--serial", action="store_true", help="PostgreSQL: max_parallel_workers_per_gather = 0 for the session"
    )
    args = parser.parse_args()
    if args.corpus is None:
        for corpus in CORPORA:
            subprocess.run([sys.executable, __file__, *sys.argv[1:], "--corpus", corpus], check=True)  # noqa: S603
        return

    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    if connection.vendor == "postgresql":
        _ensure_pg_database()
    call_command("migrate", verbosity=0)
    for name, n_runs in CORPORA[args.corpus]:
        build(name, n_runs)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")  # what beat's core.refresh_planner_statistics does hourly
        if args.serial and connection.vendor == "postgresql":
            # Worker start-up dwarfs a LIMIT 100 search on a small machine (70 ms against 5 ms).
            cursor.execute("SET max_parallel_workers_per_gather = 0")
    for name, _ in CORPORA[args.corpus]:
        search_experiment(name, args)


def search_experiment(experiment_name: str, args: argparse.Namespace) -> None:
    from django.db import connection

    from apps.tracking import search
    from apps.tracking.models import Experiment, Lifecycle, Run

    experiment = Experiment.objects.get(name=experiment_name)
    runs = Run.objects.filter(experiment=experiment, lifecycle_stage=Lifecycle.ACTIVE)

    def page(filter_string: str, order_by: list[str], limit: int) -> list:
        return list(search.order_runs(search.filter_runs(runs, filter_string), order_by)[:limit])

    serial = ", no parallel workers" if args.serial and connection.vendor == "postgresql" else ""
    print(
        f"\n{connection.vendor}{serial}: {experiment_name}, {runs.count()} runs ({Run.objects.count()} in the database)"
    )
    headline = search.order_runs(search.filter_runs(runs, HEADLINE[0]), HEADLINE[1])[:100]
    print(f"  plan of {HEADLINE[0]!r} by {HEADLINE[1]}, limit 100:")
    plan = headline.explain(**({"analyze": True} if connection.vendor == "postgresql" else {}))
    print("    " + plan.replace("\n", "\n    "))
    if args.explain_only:
        return
    for label, filter_string, order_by, limit in SEARCHES:
        measure(label, lambda f=filter_string, o=order_by, n=limit: page(f, o, n), args.repeat)


def _ensure_pg_database() -> None:
    import psycopg
    from django.conf import settings

    db = settings.DATABASES["default"]
    with psycopg.connect(
        host=db["HOST"], port=db["PORT"], user=db["USER"], password=db["PASSWORD"], dbname="postgres", autocommit=True
    ) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [db["NAME"]]).fetchone():
            conn.execute(f'CREATE DATABASE "{db["NAME"]}"')


if __name__ == "__main__":
    main()
