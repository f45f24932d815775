"""Drift computation: 50 features over 1M recent rows.

    .venv/bin/python bench/monitoring_drift.py [--rows 1000000] [--features 50] [--minutes 1440]

Builds a fresh database under var/bench/monitoring-drift/ (production settings, SQLite) with one
endpoint whose drift reference is a catalog-style profile (20-bin histograms for the numbers,
top values for the categories) of a reference sample. Then:

1. ingest: `--rows` served rows spread over `--minutes` minutes (40 numeric features, a third
   of them shifted by 0.6 standard deviations, and 10 categorical ones) are summarised on the profile's bins as the
   telemetry flusher does (telemetry.summarise_inputs) and written as per-minute rows;
2. drift: `drift.compute_report` merges the window's minutes and scores every feature (PSI, KS,
   Jensen–Shannon) — the periodic job's work for one endpoint.

Prints the seconds of each. Target: drift for 50 features over 1M rows under 30 s.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "var" / "bench" / "monitoring-drift"


def settings_env() -> dict[str, str]:
    return {
        **os.environ,
        "CAUSEWAY_ENV": "production",
        "SECRET_KEY": "bench-drift-not-a-secret-" + "x" * 40,
        "USE_TLS": "0",
        "CAUSEWAY_VAR_DIR": str(WORK),
        "SQLITE_PATH": str(WORK / "causeway.sqlite3"),
        "DATABASE_URL": "",
        "REDIS_URL": "",
        "LOG_LEVEL": "WARNING",
        "PYTHONPATH": str(ROOT),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--features", type=int, default=50)
    parser.add_argument("--minutes", type=int, default=1440)
    args = parser.parse_args()
    from bench_setup import fresh_django

    fresh_django(WORK, settings_env())
    import numpy as np
    import pandas as pd
    from django.utils import timezone

    from apps.accounts.models import User
    from apps.catalog.models import Dataset, DatasetVersion
    from apps.deployments.models import Endpoint, Environment
    from apps.monitoring import drift, reference, services
    from apps.monitoring.models import EndpointMonitoring
    from apps.monitoring.telemetry import summarise_inputs

    rng = np.random.default_rng(11)
    n_categorical = min(10, args.features // 5)
    numeric = [f"x{i:02d}" for i in range(args.features - n_categorical)]
    categorical = [f"c{i:02d}" for i in range(n_categorical)]
    levels = np.array([f"level-{k}" for k in range(12)])

    # The reference profile, shaped as the catalog's (apps/catalog/profiling.py).
    sample = 100_000
    columns = []
    for name in numeric:
        values = rng.normal(0, 1, sample)
        counts, edges = np.histogram(values, bins=20)
        columns.append(
            {
                "name": name,
                "type": "float",
                "null_count": 0,
                "histogram": {"edges": edges.tolist(), "counts": counts.tolist()},
                "top_values": [],
            }
        )
    for name in categorical:
        values, counts = np.unique(
            rng.choice(levels, sample, p=np.linspace(1, 2, 12) / np.linspace(1, 2, 12).sum()), return_counts=True
        )
        top = sorted(zip(values.tolist(), counts.tolist(), strict=True), key=lambda item: -item[1])[:10]
        columns.append(
            {
                "name": name,
                "type": "string",
                "null_count": 0,
                "top_values": [{"value": v, "count": c} for v, c in top],
            }
        )
    profile = {"format": "csv", "row_count": sample, "columns": columns}
    user = User.objects.create_user(username="bench", password="bench-password-long-enough")  # noqa: S106
    dataset = Dataset.objects.create(name="bench reference", slug="bench-reference", owner=user)
    version = DatasetVersion.objects.create(
        dataset=dataset, number=1, status="ready", profile=profile, row_count=sample
    )
    environment = Environment.objects.create(name="bench")
    endpoint = Endpoint.objects.create(name="bench-drift", environment=environment, owner=user)
    EndpointMonitoring.objects.create(
        endpoint=endpoint, reference_version=version, drift_window_hours=max(1, -(-args.minutes // 60))
    )
    spec = reference.spec_of(profile)

    now = timezone.now().replace(second=0, microsecond=0)
    per_minute = args.rows // args.minutes
    started = time.perf_counter()
    batches = []
    for minute in range(args.minutes):
        rows = per_minute + (1 if minute < args.rows % args.minutes else 0)
        data = {name: rng.normal(0.6 if i % 3 == 0 else 0.0, 1, rows) for i, name in enumerate(numeric)}
        data |= {name: rng.choice(levels, rows) for name in categorical}
        batch = services.MinuteBatch(
            endpoint_id=endpoint.pk, model_version_id=None, minute=now - dt.timedelta(minutes=minute + 1)
        )
        batch.requests, batch.rows = rows, rows
        batch.features = summarise_inputs([pd.DataFrame(data)], spec)
        batches.append(batch)
        if len(batches) == 200:
            services.merge_minutes(batches)
            batches = []
    services.merge_minutes(batches)
    ingest = time.perf_counter() - started

    started = time.perf_counter()
    report = drift.compute_report(endpoint, now=now)
    seconds = time.perf_counter() - started
    print(
        f"ingest rows={args.rows:,} features={args.features} minutes={args.minutes} seconds={ingest:.2f} "
        f"rows_per_second={args.rows / ingest:,.0f}"
    )
    print(
        f"drift rows={report.rows:,} features={len(report.features)} seconds={seconds:.2f} "
        f"verdict={report.verdict} score={report.overall_score:.3f} drifted={report.drifted_features}"
    )


if __name__ == "__main__":
    main()
