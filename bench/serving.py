"""Serving overhead: Causeway's /serve/<endpoint>/invocations against `mlflow models serve`,
same model, same load, same number of worker processes, side by side.

    .venv/bin/python bench/serving.py [--seconds 15] [--threads 4] [--workers 2] [--rows 1 100]

Builds a fresh database and artifact store under var/bench/serving/ (CAUSEWAY_ENV=production
settings, SQLite), trains a small scikit-learn model (scaler + logistic regression on four
numeric columns and a one-hot region), saves it with mlflow.sklearn.save_model (skops),
registers it, puts it live on an endpoint and starts both servers on 127.0.0.1:

- causeway: gunicorn with platform/gunicorn.conf.py and sync workers, as the Procfile's `serve`
  (--workers processes), token auth and the per-request log line included;
- mlflow: `mlflow models serve -m <the same model folder> --env-manager local -w <workers>`.

For each payload size a load generator (threads, each with a keep-alive requests.Session,
127.0.0.1 only) sends the same `dataframe_split` body for a bounded time to one server, then the
other (two rounds, alternating), after a warm-up; it prints requests/s, p50 and p99 latency per
server and the ratios. The client shares the machine with the servers, so absolute figures
depend on what else runs; the ratios are the point.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "var" / "bench" / "serving"
HOST = "127.0.0.1"
CAUSEWAY_PORT = 18701
MLFLOW_PORT = 18702
MAX_REQUESTS_PER_RUN = 500_000  # a bound on top of the time bound


# Both servers alike: one BLAS/OpenMP thread per process, as the serve process is configured
# (per-request predictions are small; thread pools per process only oversubscribe the cores).
SERVER_THREAD_ENV = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def settings_env() -> dict[str, str]:
    return {
        **os.environ,
        **SERVER_THREAD_ENV,
        "CAUSEWAY_ENV": "production",
        "SECRET_KEY": "bench-serving-not-a-secret-" + "x" * 40,
        "USE_TLS": "0",
        "ALLOWED_HOSTS": HOST,
        "CAUSEWAY_VAR_DIR": str(WORK),
        "SQLITE_PATH": str(WORK / "causeway.sqlite3"),
        "ARTIFACTS_ROOT": str(WORK / "artifacts"),
        "DATABASE_URL": "",
        "REDIS_URL": "",
        "PYTHONPATH": str(ROOT),
    }


def prepare() -> tuple[str, Path, list[dict]]:
    """A fresh database with one live endpoint; returns (token, model folder, sample rows)."""
    from bench_setup import fresh_django

    fresh_django(WORK, settings_env())
    from bench_setup import live_churn_endpoint

    folder = WORK / "model"
    token, _, frame = live_churn_endpoint(folder)
    samples = frame.sample(200, random_state=1).to_dict(orient="records")
    return token, folder, samples


def start(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    handle = open(log, "wb")  # noqa: SIM115 - closed with the process
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True)  # noqa: S603


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def wait_ready(url: str, headers: dict[str, str], process: subprocess.Popen, timeout: float = 120) -> None:
    import requests

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server exited while starting: {url}")
        try:
            if requests.get(url, headers=headers, timeout=5).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.5)
    raise SystemExit(f"server not ready within {timeout}s: {url}")


def load(url: str, headers: dict[str, str], body: bytes, *, seconds: float, threads: int) -> dict:
    """Send `body` from `threads` keep-alive sessions for `seconds`; latencies in ms."""
    import requests

    assert url.startswith(f"http://{HOST}:"), "load goes to 127.0.0.1 only"  # noqa: S101
    latencies: list[list[float]] = [[] for _ in range(threads)]
    errors = [0] * threads
    stop_at = time.perf_counter() + seconds
    budget = MAX_REQUESTS_PER_RUN // threads

    def worker(index: int) -> None:
        session = requests.Session()
        mine = latencies[index]
        for _ in range(budget):
            started = time.perf_counter()
            if started >= stop_at:
                break
            try:
                response = session.post(url, data=body, headers=headers, timeout=30)
                ok = response.status_code == 200
            except requests.RequestException:
                ok = False
            mine.append((time.perf_counter() - started) * 1000)
            errors[index] += not ok
        session.close()

    began = time.perf_counter()
    pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    elapsed = time.perf_counter() - began
    merged = sorted(v for part in latencies for v in part)
    return {"latencies": merged, "elapsed": elapsed, "errors": sum(errors)}


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    return values[min(len(values) - 1, int(round(q / 100 * (len(values) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=15.0, help="measured seconds per server, payload and round")
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--threads", type=int, default=4, help="client threads (concurrent requests)")
    parser.add_argument("--workers", type=int, default=2, help="server processes, both servers")
    parser.add_argument("--worker-class", default="sync", choices=["sync", "gthread"], help="as the Procfile's serve")
    parser.add_argument("--server-threads", type=int, default=1, help="gunicorn threads per process (gthread)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--rows", type=int, nargs="+", default=[1, 100], help="rows per request")
    args = parser.parse_args()

    print(f"machine: {os.cpu_count()} cores; load average {os.getloadavg()[0]:.2f} (shared: other work runs here)")
    token, folder, samples = prepare()
    env = settings_env()
    causeway = start(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "-c",
            "platform/gunicorn.conf.py",
            "config.wsgi",
            "--bind",
            f"{HOST}:{CAUSEWAY_PORT}",
            "--workers",
            str(args.workers),
            "--worker-class",
            args.worker_class,
            "--threads",
            str(args.server_threads),
            "--max-requests",
            "0",
        ],
        env,
        WORK / "causeway.log",
    )
    mlflow_bin = str(Path(sys.executable).with_name("mlflow"))
    mlflow = start(
        [mlflow_bin, "models", "serve", "-m", str(folder), "--env-manager", "local", "-h", HOST]
        + ["-p", str(MLFLOW_PORT), "-w", str(args.workers)],
        # mlflow starts `uvicorn` by name: the virtualenv's bin must be on PATH.
        {
            **os.environ,
            "PYTHONPATH": "",
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        },
        WORK / "mlflow.log",
    )
    auth = {"Authorization": f"Bearer {token}"}
    targets = {
        "causeway": (f"http://{HOST}:{CAUSEWAY_PORT}/serve/bench-churn", auth),
        "mlflow": (f"http://{HOST}:{MLFLOW_PORT}", {}),
    }
    try:
        wait_ready(targets["causeway"][0] + "/ping", auth, causeway)
        wait_ready(targets["mlflow"][0] + "/ping", {}, mlflow)
        rows_table = []
        for rows in args.rows:
            chosen = (samples * (rows // len(samples) + 1))[:rows]
            columns = list(chosen[0])
            body = json.dumps(
                {"dataframe_split": {"columns": columns, "data": [[r[c] for c in columns] for r in chosen]}}
            ).encode()
            headers = {"Content-Type": "application/json"}
            answers = {}
            for name, (base, extra) in targets.items():
                import requests

                response = requests.post(base + "/invocations", data=body, headers={**headers, **extra}, timeout=30)
                answers[name] = response.json()
            assert answers["causeway"] == answers["mlflow"], answers  # noqa: S101 - same predictions
            results: dict[str, dict] = {name: {"latencies": [], "elapsed": 0.0, "errors": 0} for name in targets}
            for round_number in range(args.rounds):
                order = list(targets) if round_number % 2 == 0 else list(reversed(targets))
                for name in order:
                    base, extra = targets[name]
                    url = base + "/invocations"
                    load(url, {**headers, **extra}, body, seconds=args.warmup, threads=args.threads)
                    run = load(url, {**headers, **extra}, body, seconds=args.seconds, threads=args.threads)
                    results[name]["latencies"] += run["latencies"]
                    results[name]["elapsed"] += run["elapsed"]
                    results[name]["errors"] += run["errors"]
            rows_table.append((rows, results))
    finally:
        stop(causeway)
        stop(mlflow)

    print(
        f"\n{args.threads} client threads, {args.workers} server processes each "
        f"(causeway: gunicorn {args.worker_class} × {args.server_threads} thread(s); mlflow: uvicorn), "
        f"{args.rounds} × {args.seconds:.0f} s per server and payload\n"
    )
    names = ("rows", "server", "requests", "req/s", "p50 ms", "p99 ms", "mean ms", "errors")
    header = "{:>5} {:<9} {:>9} {:>8} {:>8} {:>8} {:>8} {:>6}".format(*names)
    print(header)
    print("-" * len(header))
    for rows, results in rows_table:
        figures = {}
        for name, result in results.items():
            values = sorted(result["latencies"])
            rate = len(values) / result["elapsed"] if result["elapsed"] else 0.0
            figures[name] = (rate, percentile(values, 50), percentile(values, 99))
            mean = statistics.fmean(values) if values else float("nan")
            print(
                f"{rows:>5} {name:<9} {len(values):>9} {rate:>8.0f} {figures[name][1]:>8.2f} "
                f"{figures[name][2]:>8.2f} {mean:>8.2f} {result['errors']:>6}"
            )
        c, m = figures["causeway"], figures["mlflow"]
        print(
            f"{rows:>5} {'ratio':<9} {'':>9} {c[0] / m[0]:>7.2f}x {c[1] / m[1]:>7.2f}x {c[2] / m[2]:>7.2f}x"
            "   (causeway / mlflow: throughput higher is better, latency lower is better)"
        )
    print(f"\nlogs: {WORK / 'causeway.log'}, {WORK / 'mlflow.log'}")


if __name__ == "__main__":
    main()
