"""Load test: the main pages and APIs under N concurrent users, against gunicorn on loopback.

    .venv/bin/python bench/load/run.py prepare [--factor 100]     # once: own database, demo ×100
    .venv/bin/python bench/load/run.py run [--users 20 --duration 60]

`prepare` builds a database of its own under var/bench/load/ (migrate, load_demo, then
`scale_demo --factor N`), so nothing else's data is touched. `run` starts gunicorn with
platform/gunicorn.conf.py on 127.0.0.1 against that database, signs in `--users` virtual users
(the demo scientist: permission filtering is exercised, unlike as an admin), each with a session
for the pages and a personal access token for the APIs, and runs a closed loop for `--duration`
seconds: each user picks a weighted random request, waits for the answer, then thinks for a
random `--think` interval (locust's `between(a, b)`; `--think 0` for a flat-out stress run).
It prints per endpoint: requests, errors (status >= 400, timeouts, connection errors), p50, p95,
p99 and max in milliseconds, then stops the server. Requests and time are bounded; only
127.0.0.1 is ever contacted. The request budgets (API_RATE_LIMIT, MLFLOW_API_RATE_LIMIT) are
turned off for the server: all virtual users share one account.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import signal
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VAR = Path(os.environ.get("LOAD_VAR_DIR") or ROOT / "var" / "bench" / "load")  # its own database and files
PYTHON = str(ROOT / ".venv" / "bin" / "python")
PASSWORD = "causeway-demo"


def server_env(port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "PYTEST_XDIST_WORKER"}}
    env.update(
        CAUSEWAY_ENV="dev",  # no TLS redirect or secure cookies on plain-HTTP loopback
        DEBUG="0",
        CAUSEWAY_VAR_DIR=str(VAR),
        SQLITE_PATH=str(VAR / "causeway.sqlite3"),
        PORT=str(port),
        API_RATE_LIMIT="0",
        MLFLOW_API_RATE_LIMIT="0",
        LOG_LEVEL="WARNING",
        CATALOG_FACET_CACHE_SECONDS="60",
    )
    return env


def prepare(args) -> None:
    VAR.mkdir(parents=True, exist_ok=True)
    env = server_env(0)
    for command in (
        ["migrate", "--noinput", "-v", "0"],
        ["load_demo", "-v", "0"],
        ["scale_demo", "--factor", str(args.factor)],
    ):
        started = time.monotonic()
        subprocess.run([PYTHON, "manage.py", *command], cwd=ROOT, env=env, check=True)  # noqa: S603
        print(f"{' '.join(command)}: {time.monotonic() - started:.0f} s")


# --- the load -----------------------------------------------------------------------------------


class Stats:
    def __init__(self):
        self.latencies: dict[str, list[float]] = defaultdict(list)
        self.errors: dict[str, int] = defaultdict(int)
        self.error_samples: dict[str, str] = {}

    def report(self, seconds: float) -> str:
        lines = [f"{'endpoint':<28}{'reqs':>7}{'errors':>8}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'max ms':>9}"]
        total = 0
        for name in sorted(self.latencies, key=lambda n: (not n.startswith("page"), n)):
            values = sorted(self.latencies[name])
            total += len(values)
            q = statistics.quantiles(values, n=100, method="inclusive") if len(values) > 1 else values * 99
            lines.append(
                f"{name:<28}{len(values):>7}{self.errors[name]:>8}{q[49]:>9.0f}{q[94]:>9.0f}{q[98]:>9.0f}{values[-1]:>9.0f}"
            )
        lines.append(f"total {total} requests in {seconds:.0f} s = {total / seconds:.1f} req/s")
        for name, sample in self.error_samples.items():
            lines.append(f"  first error of {name}: {sample}")
        return "\n".join(lines)


async def sign_in(session, base: str) -> None:
    async with session.get(f"{base}/login/") as response:
        page = await response.text()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    data = {"username": "scientist", "password": PASSWORD, "csrfmiddlewaretoken": token}
    async with session.post(f"{base}/login/", data=data, headers={"Referer": f"{base}/login/"}) as response:
        if "/login/" in str(response.url):
            raise SystemExit("Sign-in failed: is the database prepared (bench/load/run.py prepare)?")


async def discover(session, base: str, token: str) -> dict:
    """Real object names to request, from what the scientist may see."""
    auth = {"Authorization": f"Bearer {token}"}
    async with session.get(f"{base}/api/v1/datasets/?page_size=200", headers=auth) as response:
        datasets = [d["slug"] for d in (await response.json())["results"]]
    async with session.get(f"{base}/api/2.0/mlflow/experiments/search?max_results=200", headers=auth) as response:
        experiments = [
            e["experiment_id"] for e in (await response.json()).get("experiments", []) if e["name"] != "Default"
        ]
    body = {"max_results": 200}
    async with session.post(f"{base}/api/2.0/mlflow/registered-models/search", json=body, headers=auth) as response:
        models = [m["name"] for m in (await response.json()).get("registered_models", [])]
    if not (datasets and experiments and models):
        raise SystemExit(
            f"Nothing to load: datasets={len(datasets)} experiments={len(experiments)} models={len(models)}"
        )
    return {"datasets": datasets, "experiments": experiments, "models": models}


def requests_for(objects: dict) -> list[tuple[str, int, callable]]:
    """(name, weight, make) where make() gives (method, path, json body, uses token)."""
    pick = random.choice
    return [
        ("page home", 3, lambda: ("GET", "/", None, False)),
        ("page catalog list", 3, lambda: ("GET", "/catalog/", None, False)),
        (
            "page catalog search",
            3,
            lambda: ("GET", f"/catalog/?q={pick(['customer', 'churn', 'loan', 'pay'])}", None, False),
        ),
        ("page dataset", 3, lambda: ("GET", f"/catalog/datasets/{pick(objects['datasets'])}/", None, False)),
        ("page experiment runs", 3, lambda: ("GET", f"/experiments/{pick(objects['experiments'])}/", None, False)),
        ("page model", 3, lambda: ("GET", f"/models/{pick(objects['models'])}/", None, False)),
        ("page deployments list", 2, lambda: ("GET", "/deployments/requests/", None, False)),
        ("api datasets list", 2, lambda: ("GET", "/api/v1/datasets/", None, True)),
        ("api jobs list", 1, lambda: ("GET", "/api/v1/jobs/", None, True)),
        ("api access-requests list", 1, lambda: ("GET", "/api/v1/access-requests/", None, True)),
        (
            "mlflow runs/search",
            3,
            lambda: (
                "POST",
                "/api/2.0/mlflow/runs/search",
                {"experiment_ids": [pick(objects["experiments"])], "max_results": 50},
                True,
            ),
        ),
        (
            "mlflow experiments/search",
            1,
            lambda: ("GET", "/api/2.0/mlflow/experiments/search?max_results=50", None, True),
        ),
        (
            "mlflow models/search",
            1,
            lambda: ("GET", "/api/2.0/mlflow/registered-models/search?max_results=50", None, True),
        ),
    ]


async def user_loop(aiohttp, base, token, objects, stats: Stats, deadline: float, think: tuple[float, float]):
    jar = aiohttp.CookieJar(unsafe=True)  # cookies for 127.0.0.1 (an IP address)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(cookie_jar=jar, timeout=timeout) as session:
        await sign_in(session, base)
        catalogue = requests_for(objects)
        names, weights = [c[0] for c in catalogue], [c[1] for c in catalogue]
        makers = {c[0]: c[2] for c in catalogue}
        while time.monotonic() < deadline:
            name = random.choices(names, weights)[0]  # noqa: S311 — load mix, not security
            method, path, body, with_token = makers[name]()
            headers = {"Authorization": f"Bearer {token}"} if with_token else {}
            started = time.perf_counter()
            try:
                async with session.request(method, base + path, json=body, headers=headers, allow_redirects=False) as r:
                    await r.read()
                    status = r.status
            except (TimeoutError, aiohttp.ClientError) as exc:
                status, error = None, repr(exc)
            elapsed = (time.perf_counter() - started) * 1000
            stats.latencies[name].append(elapsed)
            if status is None or status >= 400:
                stats.errors[name] += 1
                stats.error_samples.setdefault(name, f"{method} {path}: {status or error}")
            if think[1] > 0:
                await asyncio.sleep(random.uniform(*think))  # noqa: S311


async def load(args, base: str, token: str) -> None:
    import aiohttp

    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(cookie_jar=jar) as session:
        objects = await discover(session, base, token)
    print(
        f"{args.users} users, {args.duration} s, think {args.think[0]}–{args.think[1]} s; "
        f"{len(objects['datasets'])} datasets, {len(objects['experiments'])} experiments, "
        f"{len(objects['models'])} models visible to the scientist (first page)"
    )
    stats = Stats()
    # Warm-up: each worker process opens its connection and fills its caches; not counted.
    warm = Stats()
    deadline = time.monotonic() + args.warmup
    await asyncio.gather(*(user_loop(aiohttp, base, token, objects, warm, deadline, (0, 0)) for _ in range(4)))
    started = time.monotonic()
    deadline = started + args.duration
    await asyncio.gather(
        *(user_loop(aiohttp, base, token, objects, stats, deadline, tuple(args.think)) for _ in range(args.users))
    )
    print(stats.report(time.monotonic() - started))


def run(args) -> None:
    if not (VAR / "causeway.sqlite3").exists():
        raise SystemExit("No load-test database: run `bench/load/run.py prepare` first.")
    env = server_env(args.port)
    base = f"http://127.0.0.1:{args.port}"
    # The code may have moved on since `prepare`: bring the schema up to date (quick when it is).
    subprocess.run([PYTHON, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)  # noqa: S603
    token = subprocess.run(  # noqa: S603 — fixed arguments
        [PYTHON, "manage.py", "create_token", "scientist", "--name", "load test", "--expires-days", "1"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    command = [
        str(ROOT / ".venv" / "bin" / "gunicorn"),
        "-c",
        "platform/gunicorn.conf.py",
        "--bind",
        f"127.0.0.1:{args.port}",
        "--access-logfile",
        "/dev/null",
        "config.wsgi",
    ]
    if args.workers:
        env["WEB_CONCURRENCY"] = str(args.workers)
    server = subprocess.Popen(command, cwd=ROOT, env=env, start_new_session=True)  # noqa: S603
    try:
        _wait_for(base + "/healthz", timeout=60)
        asyncio.run(load(args, base, token))
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=40)


def _wait_for(url: str, timeout: float) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 — loopback only
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise SystemExit(f"The server did not answer {url} within {timeout} s.")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("prepare", help="build var/bench/load/: migrate, demo data, scale it")
    p.add_argument("--factor", type=int, default=100)
    r = sub.add_parser("run", help="start gunicorn on loopback and run the load")
    r.add_argument("--users", type=int, default=20)
    r.add_argument("--duration", type=int, default=60, help="seconds measured (after --warmup)")
    r.add_argument("--warmup", type=int, default=10)
    r.add_argument("--think", type=float, nargs=2, default=[0.5, 1.5], metavar=("MIN", "MAX"))
    r.add_argument("--port", type=int, default=8765)
    r.add_argument("--workers", type=int, default=0, help="gunicorn processes (default: its config)")
    args = parser.parse_args()
    if args.command == "run" and not 1 <= args.users <= 200:
        parser.error("--users must be between 1 and 200")
    if args.command == "run" and not 1 <= args.duration <= 1800:
        parser.error("--duration must be between 1 and 1800 seconds")
    {"prepare": prepare, "run": run}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
