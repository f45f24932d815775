"""Serving telemetry: what it adds to a served request, and how fast it aggregates.

    .venv/bin/python bench/monitoring_telemetry.py [--requests 3000] [--rounds 4] [--aggregate 20000]

Builds a fresh database under var/bench/monitoring/ (production settings, SQLite), a small
scikit-learn pipeline (four numbers and a one-hot region) served on a live endpoint, and a
training profile of its data as the endpoint's drift reference (so inputs are binned on the
profile's edges, as in use). Then:

1. latency: `/serve/<endpoint>/invocations` through Django's full middleware stack (in-process
   test client, one row per request), alternating rounds with the monitoring observer
   registered and unregistered; prints p50/p99 of each and the p50 difference. The telemetry
   flush thread runs meanwhile (every second), as in a serving process.
2. the request thread's own cost: building the Invocation and notifying the observer (a deque
   append), averaged over 100,000 calls; a direct figure, unlike the p50 difference, which on a
   busy 2-core machine is within the noise.
3. aggregation: N recorded invocations (1-row frames, like the requests above) summarised and
   written by `Recorder.flush()`; prints invocations per second.

Target: under 1 ms added at p50; at least 1,000 requests/s aggregated.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "var" / "bench" / "monitoring"


def settings_env() -> dict[str, str]:
    return {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "CAUSEWAY_ENV": "production",
        "SECRET_KEY": "bench-monitoring-not-a-secret-" + "x" * 40,
        "USE_TLS": "0",
        "ALLOWED_HOSTS": "testserver,127.0.0.1",
        "CAUSEWAY_VAR_DIR": str(WORK),
        "SQLITE_PATH": str(WORK / "causeway.sqlite3"),
        "ARTIFACTS_ROOT": str(WORK / "artifacts"),
        "DATABASE_URL": "",
        "REDIS_URL": "",
        "MONITORING_FLUSH_SECONDS": "1",
        "LOG_LEVEL": "WARNING",
        "PYTHONPATH": str(ROOT),
    }


def prepare():
    from bench_setup import fresh_django

    fresh_django(WORK, settings_env())
    from bench_setup import ROWS as n
    from bench_setup import live_churn_endpoint

    from apps.catalog.models import Dataset, DatasetVersion
    from apps.catalog.profiling import profile_file
    from apps.monitoring.models import EndpointMonitoring

    token, endpoint, frame = live_churn_endpoint(WORK / "model", superuser=True)
    csv = WORK / "training.csv"
    frame.to_csv(csv, index=False)
    dataset = Dataset.objects.create(name="bench training", slug="bench-training", owner=endpoint.owner)
    reference = DatasetVersion.objects.create(
        dataset=dataset, number=1, status="ready", profile=profile_file(csv).to_dict(), row_count=n
    )
    EndpointMonitoring.objects.create(endpoint=endpoint, reference_version=reference)
    return token, endpoint, frame


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def serve_latencies(client, bodies: list[str], url: str) -> list[float]:
    times = []
    for body in bodies:
        started = time.perf_counter()
        response = client.post(url, data=body, content_type="application/json")
        times.append((time.perf_counter() - started) * 1000)
        if response.status_code != 200:
            raise SystemExit(f"unexpected {response.status_code}: {response.content[:200]!r}")
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=3000, help="requests per round")
    parser.add_argument("--rounds", type=int, default=4, help="rounds with and without telemetry, alternating")
    parser.add_argument("--aggregate", type=int, default=20000, help="invocations for the aggregation figure")
    args = parser.parse_args()
    token, endpoint, frame = prepare()

    from django.test import Client

    from apps.deployments.serving import observers
    from apps.monitoring.models import TrafficMinute
    from apps.monitoring.telemetry import recorder

    client = Client(HTTP_AUTHORIZATION=f"Bearer {token}")
    url = f"/serve/{endpoint.name}/invocations"
    rows = frame.drop(columns=[]).sample(500, random_state=3)
    bodies = [
        json.dumps({"dataframe_split": {"columns": list(rows.columns), "data": [row]}}) for row in rows.values.tolist()
    ]
    bodies = (bodies * (args.requests // len(bodies) + 1))[: args.requests]
    serve_latencies(client, bodies[:300], url)  # warm-up: model load, caches

    with_telemetry: list[float] = []
    without: list[float] = []
    for _ in range(args.rounds):
        observers.unregister_invocation_observer(recorder.observe)
        without += serve_latencies(client, bodies, url)
        observers.register_invocation_observer(recorder.observe)
        with_telemetry += serve_latencies(client, bodies, url)
    time.sleep(1.5)
    recorder.flush()
    recorded = sum(TrafficMinute.objects.values_list("requests", flat=True))
    p50_with, p50_without = statistics.median(with_telemetry), statistics.median(without)
    print(
        f"served requests={len(with_telemetry)}+{len(without)} "
        f"p50_without_ms={p50_without:.3f} p50_with_ms={p50_with:.3f} added_p50_ms={p50_with - p50_without:.3f} "
        f"p99_without_ms={percentile(without, 0.99):.3f} p99_with_ms={percentile(with_telemetry, 0.99):.3f} "
        f"recorded={recorded}"
    )

    # What the request thread itself pays: building the Invocation and the observer's append.
    recorder.drain()
    loops = 100_000
    started = time.perf_counter()
    for _ in range(loops):
        observers.notify(
            observers.Invocation(
                endpoint_id=endpoint.pk,
                endpoint_name=endpoint.name,
                model_version_id=endpoint.current_version_id,
                request_id="r",
                at=time.time(),
                latency_ms=1000 * (time.perf_counter() - started),
                status=200,
                error_kind="",
            )
        )
    per_call_us = (time.perf_counter() - started) / loops * 1e6
    recorder.drain()
    print(f"request_path observer_call_us={per_call_us:.2f}")

    # Aggregation: invocations as the serving view hands them over (parsed 1-row frames).
    from apps.deployments.serving import protocol
    from apps.deployments.serving.loader import models as model_cache

    predictor = model_cache.get_or_load(endpoint.current_version_id, allow_pickle=False)
    frames = [protocol.parse_request(body.encode(), "application/json", predictor.signature) for body in bodies[:500]]
    predictions = [predictor.predict(f) for f in frames]
    now = time.time()
    recorder.drain()
    for i in range(args.aggregate):
        recorder.observe(
            observers.Invocation(
                endpoint_id=endpoint.pk,
                endpoint_name=endpoint.name,
                model_version_id=endpoint.current_version_id,
                request_id=uuid.uuid4().hex,
                at=now - (i % 120),  # two minutes of traffic
                latency_ms=2.0 + (i % 7),
                status=200,
                error_kind="",
                inputs=frames[i % len(frames)],
                predictions=predictions[i % len(frames)],
            )
        )
    started = time.perf_counter()
    written = recorder.flush()
    seconds = time.perf_counter() - started
    print(f"aggregated invocations={written} seconds={seconds:.2f} per_second={written / seconds:,.0f}")


if __name__ == "__main__":
    main()
