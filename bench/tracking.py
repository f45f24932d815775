"""MLflow tracking: the same client workload against a stock `mlflow server` and Causeway.

    .venv/bin/python bench/tracking.py [--runs 200] [--log-metric-calls 500] [--rounds 2] [--big]

Installs the stock server once into var/bench/mlflow-venv (`pip install mlflow==<client's
version>`) and runs it on 127.0.0.1 with a SQLite backend store and its own artifact serving,
twice: with its default workers (uvicorn, 4 processes) and with `--workers 1`. Causeway runs
as production does (gunicorn with platform/gunicorn.conf.py, CAUSEWAY_ENV=production) on a
throwaway CAUSEWAY_VAR_DIR with SQLite, a Data scientist and a personal token. Each phase runs
in a fresh child process with the stock `mlflow.MlflowClient`, alternating between the servers
round by round; the table shows the median over the rounds and the ratio of Causeway to the
best stock figure. A cell says "error: …" when a server fails a phase.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import ctypes
import glob
import http.client
import json
import os
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "var" / "bench"
MLFLOW_VENV = BENCH / "mlflow-venv"
PYTHON = sys.executable
sys.path.insert(0, str(Path(__file__).resolve().parent))

SEARCH_FILTER = "metrics.m0 > 0.5 and params.p0 = 'v1'"
SEARCH_ORDER = ["metrics.m0 DESC"]
USERNAME = "bench"
# Both clients: fail fast instead of MLflow's retries with backoff, no telemetry.
CLIENT_ENV = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "300",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "true",
}


# --- The workload (child processes) -----------------------------------------------------------


def _client():
    import mlflow

    return mlflow.MlflowClient()


def _experiment_id(client, name: str) -> str:
    experiment = client.get_experiment_by_name(name)
    return experiment.experiment_id if experiment else client.create_experiment(name)


def _percentiles(times: list[float]) -> dict:
    times = sorted(times)
    return {"p50": statistics.median(times), "p95": times[max(0, int(len(times) * 0.95) - 1)], "n": len(times)}


def phase_ingest(runs: int) -> dict:
    """create_run + log_batch (20 params, 10 metrics × 10 steps, 10 tags) + set_terminated."""
    from mlflow.entities import Metric, Param, RunTag

    client = _client()
    experiment_id = _experiment_id(client, "bench-ingest")
    now = int(time.time() * 1000)

    def one(i: int) -> None:
        run = client.create_run(experiment_id, run_name=f"ingest-{i}")
        client.log_batch(
            run.info.run_id,
            metrics=[Metric(f"m{k}", (k + step) / 100, now + step, step) for k in range(10) for step in range(10)],
            params=[Param(f"p{k}", f"value-{k}-{i}") for k in range(20)],
            tags=[RunTag(f"t{k}", f"tag-{k}") for k in range(10)],
        )
        client.set_terminated(run.info.run_id)

    one(-1)  # warm: connection, experiment lookup
    started = time.perf_counter()
    for i in range(runs):
        one(i)
    seconds = time.perf_counter() - started
    return {"runs_per_s": runs / seconds, "ms_per_run": seconds * 1000 / runs}


def phase_log_metric(calls: int) -> dict:
    client = _client()
    run = client.create_run(_experiment_id(client, "bench-log-metric"))
    run_id = run.info.run_id
    for step in range(5):
        client.log_metric(run_id, "warm", step / 10, step=step)
    times = []
    started = time.perf_counter()
    for step in range(calls):
        t0 = time.perf_counter()
        client.log_metric(run_id, "loss", 1 / (step + 1), step=step)
        times.append((time.perf_counter() - t0) * 1000)
    seconds = time.perf_counter() - started
    client.set_terminated(run_id)
    return {"points_per_s": calls / seconds, "mean_ms": statistics.fmean(times), **_percentiles(times)}


def phase_search(experiment: str, repeat: int, budget: float = 60) -> dict:
    """`repeat` timed searches after a warm one, or fewer (at least 3) once `budget` seconds
    are spent: the stock server takes seconds per search at scale."""
    client = _client()
    experiment_id = client.get_experiment_by_name(experiment).experiment_id

    def search():
        return client.search_runs([experiment_id], filter_string=SEARCH_FILTER, order_by=SEARCH_ORDER, max_results=100)

    t0 = time.perf_counter()
    runs = search()
    print(f"SAMPLE {(time.perf_counter() - t0) * 1000:.3f} warm", flush=True)
    times: list[float] = []
    started = time.perf_counter()
    while len(times) < repeat and (len(times) < 3 or time.perf_counter() - started < budget):
        t0 = time.perf_counter()
        search()
        times.append((time.perf_counter() - t0) * 1000)
        print(f"SAMPLE {times[-1]:.3f}", flush=True)
    http_times, body = _raw_search_times(experiment_id, len(times))
    first = runs[0].data if runs else None
    return {
        **_percentiles(times),
        # The same request without the client's protobuf parsing: what the server costs.
        "http_p50": _percentiles(http_times)["p50"] if http_times else None,
        # The client's parsing of that answer alone, no server: the floor any server adds to.
        "parse_p50": _percentiles(_client_parse_times(body, len(times)))["p50"] if body else None,
        "returned": len(runs),
        # the same data in both stores: the best run's m0 must agree
        "top_m0": first.metrics.get("m0") if first else None,
        "params_per_run": len(first.params) if first else 0,
    }


def _raw_search_times(experiment_id: str, repeat: int) -> tuple[list[float], dict]:
    """The search as a plain HTTP POST on one keep-alive session, body read and JSON-decoded;
    also the last answer."""
    import requests

    session = requests.Session()
    token = os.environ.get("MLFLOW_TRACKING_TOKEN")
    if token:
        session.headers["Authorization"] = f"Bearer {token}"
    url = os.environ["MLFLOW_TRACKING_URI"].rstrip("/") + "/api/2.0/mlflow/runs/search"
    body = {"experiment_ids": [experiment_id], "filter": SEARCH_FILTER, "order_by": SEARCH_ORDER, "max_results": 100}
    answer = session.post(url, json=body).json()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        answer = session.post(url, json=body).json()
        times.append((time.perf_counter() - t0) * 1000)
    return times, answer


def _client_parse_times(answer: dict, repeat: int) -> list[float]:
    """What `MlflowClient.search_runs` does with a decoded answer (RestStore.search_runs): the
    JSON into the SearchRuns protobuf, then each run into an mlflow Run entity."""
    from mlflow.entities import Run
    from mlflow.protos.service_pb2 import SearchRuns
    from mlflow.utils.proto_json_utils import parse_dict

    times = []
    for _ in range(max(repeat, 3)):
        t0 = time.perf_counter()
        message = SearchRuns.Response()
        parse_dict(answer, message)
        [Run.from_proto(run) for run in message.runs]
        times.append((time.perf_counter() - t0) * 1000)
    return times


def phase_history(points: int, repeat: int) -> dict:
    from mlflow.entities import Metric

    client = _client()
    run = client.create_run(_experiment_id(client, "bench-history"))
    run_id = run.info.run_id
    now = int(time.time() * 1000)
    for start in range(0, points, 1000):  # log_batch takes at most 1000 metrics
        client.log_batch(
            run_id,
            metrics=[
                Metric("curve", step / points, now + step, step) for step in range(start, min(start + 1000, points))
            ],
        )
    client.set_terminated(run_id)
    history = client.get_metric_history(run_id, "curve")
    if len(history) != points:
        raise RuntimeError(f"get_metric_history returned {len(history)} points, expected {points}")
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        client.get_metric_history(run_id, "curve")
        times.append((time.perf_counter() - t0) * 1000)
    return _percentiles(times)


def phase_artifacts(path: str) -> dict:
    client = _client()
    run = client.create_run(_experiment_id(client, "bench-artifacts"))
    run_id = run.info.run_id
    size = os.path.getsize(path)
    t0 = time.perf_counter()
    client.log_artifact(run_id, path)
    upload = time.perf_counter() - t0
    with tempfile.TemporaryDirectory(dir=BENCH) as target:
        t0 = time.perf_counter()
        local = client.download_artifacts(run_id, os.path.basename(path), target)
        download = time.perf_counter() - t0
        got = os.path.getsize(local)
    client.set_terminated(run_id)
    if got != size:
        raise RuntimeError(f"downloaded {got} bytes, uploaded {size}")
    return {"upload_MB_s": size / 1e6 / upload, "download_MB_s": size / 1e6 / download}


PHASES = {
    "ingest": phase_ingest,
    "log_metric": phase_log_metric,
    "search": phase_search,
    "history": phase_history,
    "artifacts": phase_artifacts,
}


def child(spec: str) -> None:
    request = json.loads(spec)
    result = PHASES[request["phase"]](**request["kwargs"])
    print("RESULT " + json.dumps(result))


# --- Servers ------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    label: str
    cmd: list[str]
    env: dict[str, str]
    port: int
    log: Path
    health: str
    token: str = ""
    proc: subprocess.Popen | None = None
    notes: dict = field(default_factory=dict)

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 180) -> None:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(  # noqa: S603
                self.cmd, env=self.env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        RUNNING.append(self)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.label} exited with {self.proc.returncode}: {tail(self.log)}")
            try:
                with urllib.request.urlopen(self.uri + self.health, timeout=5) as response:  # noqa: S310
                    if response.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.5)
        raise RuntimeError(f"{self.label} did not answer {self.health} within {timeout:.0f}s: {tail(self.log)}")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=5)

    def client_env(self) -> dict[str, str]:
        env = {**os.environ, **CLIENT_ENV, "MLFLOW_TRACKING_URI": self.uri}
        env.pop("MLFLOW_TRACKING_TOKEN", None)
        if self.token:
            env["MLFLOW_TRACKING_TOKEN"] = self.token
        return env

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}


RUNNING: list[Server] = []


def stop_all() -> None:
    while RUNNING:
        RUNNING.pop().stop()


def tail(path: Path, lines: int = 8) -> str:
    try:
        return " | ".join(path.read_text(errors="replace").strip().splitlines()[-lines:])
    except OSError:
        return ""


def ensure_mlflow_venv(version: str) -> Path:
    """var/bench/mlflow-venv with mlflow==version (created once, then reused)."""
    python = MLFLOW_VENV / "bin" / "python"
    check = [str(python), "-c", "import mlflow; print(mlflow.__version__)"]
    if python.exists():
        found = subprocess.run(check, capture_output=True, text=True, check=False).stdout.strip()  # noqa: S603
        if found == version:
            return MLFLOW_VENV
        print(f"var/bench/mlflow-venv has mlflow {found or '?'}: installing {version}", flush=True)
    else:
        print(f"creating var/bench/mlflow-venv with mlflow=={version} (a few minutes, once)", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(MLFLOW_VENV)], check=True)  # noqa: S603
    subprocess.run(  # noqa: S603
        [str(MLFLOW_VENV / "bin" / "pip"), "install", "--quiet", f"mlflow=={version}"], check=True
    )
    return MLFLOW_VENV


def stock_server(label: str, workdir: Path, workers: int | None) -> Server:
    port = free_port()
    cmd = [
        str(MLFLOW_VENV / "bin" / "mlflow"),
        "server",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--backend-store-uri",
        f"sqlite:///{workdir / 'mlflow.db'}",
        "--serve-artifacts",
        "--artifacts-destination",
        str(workdir / "mlflow-artifacts"),
    ]
    if workers:
        cmd += ["--workers", str(workers)]
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"}
    return Server(label, cmd, env, port, workdir / f"{label.split()[0]}-{workers or 'default'}.log", "/health")


def causeway_env(var_dir: Path) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if key
        not in {"DATABASE_URL", "REDIS_URL", "SQLITE_PATH", "ARTIFACTS_S3_BUCKET", "ARTIFACTS_ROOT", "MEDIA_ROOT"}
        and not key.startswith(("MLFLOW_", "WEB_", "DJANGO_"))
    }
    env.update(
        {
            "CAUSEWAY_ENV": "production",
            "CAUSEWAY_VAR_DIR": str(var_dir),
            "SECRET_KEY": secrets.token_urlsafe(50),
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "USE_TLS": "0",
            "DEBUG": "0",
        }
    )
    return env


def last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:300] if lines else "(no output)"


def manage(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(  # noqa: S603
        [PYTHON, "manage.py", *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=600, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"manage.py {args[0]}: {last_line(done.stderr)}")
    return done.stdout


def seed_helper(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(  # noqa: S603
        [PYTHON, str(ROOT / "bench" / "tracking_seed.py"), *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=3600,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"tracking_seed.py {args[0]}: {last_line(done.stderr)}")
    return done.stdout.strip()


def causeway_server(workdir: Path) -> Server:
    var_dir = workdir / "causeway-var"
    var_dir.mkdir(parents=True, exist_ok=True)
    env = causeway_env(var_dir)
    port = free_port()
    env["PORT"] = str(port)
    cmd = [
        str(Path(PYTHON).parent / "gunicorn"),
        "-c",
        "platform/gunicorn.conf.py",
        "--bind",  # the command line wins over the config file's 0.0.0.0
        f"127.0.0.1:{port}",
        "config.wsgi",
    ]
    return Server("Causeway", cmd, env, port, workdir / "causeway.log", "/healthz")


# --- TCP_NODELAY --------------------------------------------------------------------------------


def _process_tree(pid: int) -> list[int]:
    pids = [pid]
    for children in glob.glob(f"/proc/{pid}/task/*/children"):
        with contextlib.suppress(OSError):
            for child_pid in Path(children).read_text().split():
                pids += _process_tree(int(child_pid))
    return pids


def _server_socket_nodelay(server: Server, client_port: int) -> str:
    """TCP_NODELAY of the server's end of our connection: find its inode in /proc/net/tcp, the
    server process holding it, and read the option on a copy of that descriptor (pidfd_getfd;
    we are the server's ancestor, which ptrace rules require)."""
    inode = None
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].split(":")[1], 16) == server.port and int(fields[2].split(":")[1], 16) == client_port:
            inode = fields[9]
    if inode is None:
        return "unknown (connection not in /proc/net/tcp)"
    libc = ctypes.CDLL(None, use_errno=True)
    for pid in _process_tree(server.proc.pid):
        for fd_path in glob.glob(f"/proc/{pid}/fd/*"):
            try:
                if os.readlink(fd_path) != f"socket:[{inode}]":
                    continue
            except OSError:
                continue
            pidfd = os.pidfd_open(pid)
            try:
                copy = libc.syscall(438, pidfd, int(fd_path.rsplit("/", 1)[1]), 0)  # SYS_pidfd_getfd
                if copy < 0:
                    return f"unknown (pidfd_getfd errno {ctypes.get_errno()})"
                sock = socket.socket(fileno=copy)
                try:
                    value = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
                finally:
                    sock.close()  # closes only our copy
                return f"{'on' if value else 'OFF'} (pid {pid})"
            finally:
                os.close(pidfd)
    return "unknown (socket not found in the server's processes)"


def check_nodelay(server: Server, requests: int = 30) -> dict:
    """Per-request latency of small keep-alive GETs over one connection, and the TCP_NODELAY
    option of the server's accepted socket. Without TCP_NODELAY a response written in two pieces
    waits for the client's delayed ACK: ~40 ms per request on a reused connection."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    times = []
    path = "/api/2.0/mlflow/experiments/get?experiment_id=0"
    try:
        for _ in range(requests):
            t0 = time.perf_counter()
            conn.request("GET", path, headers=server.headers())
            response = conn.getresponse()
            response.read()
            times.append((time.perf_counter() - t0) * 1000)
        nodelay = _server_socket_nodelay(server, conn.sock.getsockname()[1])
    except OSError as exc:
        return {"nodelay": f"error: {exc}", "p50": None}
    finally:
        conn.close()
    return {"nodelay": nodelay, "status": response.status, **_percentiles(times[3:])}


# --- Orchestration -------------------------------------------------------------------------------


def settle(limit: float = 90, busy: float = 0.15) -> None:
    """Wait (at most `limit` s) until the machine is nearly idle: freshly started servers import
    and migrate for a while, and the stock server's job runner starts several consumers."""

    def sample() -> tuple[int, int]:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        return sum(fields), fields[3] + fields[4]  # total, idle + iowait

    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        total0, idle0 = sample()
        time.sleep(1)
        total1, idle1 = sample()
        if total1 > total0 and 1 - (idle1 - idle0) / (total1 - total0) < busy:
            return


def run_phase(server: Server, phase: str, timeout: float, **kwargs) -> dict:
    spec = json.dumps({"phase": phase, "kwargs": kwargs})
    try:
        done = subprocess.run(  # noqa: S603
            [PYTHON, __file__, "--child", spec],
            env=server.client_env(),
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        return timed_out(exc, timeout)
    for line in reversed(done.stdout.splitlines()):
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT ") :])
    return {"error": last_line(done.stderr) if done.stderr.strip() else f"exit {done.returncode}"}


def timed_out(exc: subprocess.TimeoutExpired, timeout: float) -> dict:
    """What a child printed before it was stopped: the searches that did finish (SAMPLE lines)
    still give a (flattering) figure; none at all says one search takes longer than the limit."""
    output = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else exc.stdout or ""
    samples = [line.split() for line in output.splitlines() if line.startswith("SAMPLE ")]
    timed = [float(parts[1]) for parts in samples if len(parts) == 2]
    warm = [float(parts[1]) for parts in samples if len(parts) == 3]
    if timed or warm:
        return {**_percentiles(timed or warm), "partial": f"{len(timed)} timed search(es) in {timeout:.0f}s"}
    return {"error": f"> {timeout:.0f} s: not one search finished"}


def mlflow_experiment(server: Server, name: str) -> tuple[int, str]:
    """Create `name` through the REST API; returns its id and artifact location."""

    def call(method: str, path: str, body: dict | None = None) -> dict:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(  # noqa: S310
            server.uri + path, data=data, method=method, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            return json.loads(response.read())

    experiment_id = call("POST", "/api/2.0/mlflow/experiments/create", {"name": name})["experiment_id"]
    experiment = call("GET", f"/api/2.0/mlflow/experiments/get?experiment_id={experiment_id}")["experiment"]
    return int(experiment_id), experiment["artifact_location"]


def artifact_file(megabytes: int) -> Path:
    path = BENCH / f"tracking-{megabytes}mb.bin"
    if not path.exists() or path.stat().st_size != megabytes * 1_000_000:
        with open(path, "wb") as out:
            for _ in range(megabytes):
                out.write(os.urandom(1_000_000))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=200, help="runs logged by the ingest phase")
    parser.add_argument("--log-metric-calls", type=int, default=500)
    parser.add_argument("--search-repeat", type=int, default=20)
    parser.add_argument("--history-points", type=int, default=1000)
    parser.add_argument("--history-repeat", type=int, default=30)
    parser.add_argument("--artifact-mb", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=2, help="rounds of each phase per server")
    parser.add_argument("--big", action="store_true", help="also search 100,000 seeded runs (seeding takes minutes)")
    parser.add_argument("--big-runs", type=int, default=100_000)
    parser.add_argument("--small-runs", type=int, default=2_000)
    parser.add_argument(
        "--search-payloads",
        default="heavy,light",
        help="run payloads searched: heavy (20 params, 10 metrics, 10 tags) and/or light (3 params, 2 metrics, 4 tags)",
    )
    parser.add_argument("--only", choices=["stock", "causeway"], help="one side only")
    parser.add_argument("--phases", default="ingest,log_metric,search,history,artifacts")
    parser.add_argument("--search-timeout", type=float, default=600, help="seconds per search child")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (stores, logs)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return

    import mlflow

    BENCH.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="tracking-", dir=BENCH))
    atexit.register(stop_all)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        servers = setup(args, workdir, mlflow.__version__)
        results = benchmark(args, servers, workdir)
        report(args, servers, results)
    finally:
        stop_all()
        if args.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def searched(args) -> list[tuple[int, str]]:
    """(runs, payload) of each seeded search experiment."""
    sizes = [args.small_runs] + ([args.big_runs] if args.big else [])
    payloads = [p.strip() for p in args.search_payloads.split(",") if p.strip()]
    return [(n, payload) for payload in payloads for n in sizes]


def search_experiment(n: int, payload: str) -> str:
    return f"bench-search-{n}" if payload == "heavy" else f"bench-search-{payload}-{n}"


def search_seed(n: int, payload: str) -> int:
    """Each experiment's own runs (their uuids come from the seed)."""
    return n if payload == "heavy" else n + 1_000_000


def search_phase(n: int, payload: str) -> str:
    return f"search_{n}" if payload == "heavy" else f"search_{payload}_{n}"


def setup(args, workdir: Path, version: str) -> list[Server]:
    servers: list[Server] = []
    if args.only != "causeway":
        ensure_mlflow_venv(version)
        default = stock_server("stock (default workers)", workdir, None)
        single = stock_server("stock (--workers 1)", workdir, 1)
        print(f"starting {default.label} on port {default.port}", flush=True)
        default.start()
        for n, payload in searched(args):  # both stock servers share this store
            experiment_id, location = mlflow_experiment(default, search_experiment(n, payload))
            from tracking_seed import seed_mlflow

            seconds = seed_mlflow(
                workdir / "mlflow.db", experiment_id, location, n, seed=search_seed(n, payload), payload=payload
            )
            print(f"  seeded {n:,} {payload} runs into the stock store in {seconds:.0f}s", flush=True)
        print(f"starting {single.label} on port {single.port}", flush=True)
        single.start()
        servers += [default, single]
    if args.only != "stock":
        causeway = causeway_server(workdir)
        servers.append(causeway)
        try:
            print(f"migrating Causeway in {causeway.env['CAUSEWAY_VAR_DIR']}", flush=True)
            manage(causeway.env, "migrate", "--no-input", "-v", "0")
            seed_helper(causeway.env, "causeway-user", USERNAME)
            token = manage(causeway.env, "create_token", USERNAME, "--name", "bench").strip().splitlines()[-1]
            causeway.token = token
            for n, payload in searched(args):
                seconds = float(
                    seed_helper(
                        causeway.env,
                        "causeway",
                        USERNAME,
                        search_experiment(n, payload),
                        str(n),
                        str(search_seed(n, payload)),
                        payload,
                    )
                )
                print(f"  seeded {n:,} {payload} runs into Causeway in {seconds:.0f}s", flush=True)
            print(f"starting Causeway (gunicorn, platform/gunicorn.conf.py) on port {causeway.port}", flush=True)
            causeway.start()
        except (RuntimeError, OSError, ValueError, subprocess.SubprocessError) as exc:
            # The API is being built alongside: report the failure in every Causeway cell.
            causeway.notes["error"] = f"setup: {exc}"
            print(f"Causeway not benchmarked: {exc}", flush=True)
    return servers


def benchmark(args, servers: list[Server], workdir: Path) -> dict[str, dict[str, list]]:
    results: dict[str, dict[str, list]] = {server.label: {} for server in servers}
    settle()
    for server in servers:
        if "error" in server.notes:
            continue
        server.notes["nodelay"] = check_nodelay(server)
        probe = server.notes["nodelay"]
        print(f"{server.label}: TCP_NODELAY {probe['nodelay']}, keep-alive GET p50 {fmt(probe.get('p50'))} ms")
    phases = [p.strip() for p in args.phases.split(",") if p.strip()]
    plan: list[tuple[str, str, dict, float]] = []
    for phase in phases:
        if phase == "ingest":
            plan.append(("ingest", "ingest", {"runs": args.runs}, 60 + args.runs * 2))
        elif phase == "log_metric":
            plan.append(("log_metric", "log_metric", {"calls": args.log_metric_calls}, 60 + args.log_metric_calls))
        elif phase == "search":
            for n, payload in searched(args):
                kwargs = {"experiment": search_experiment(n, payload), "repeat": args.search_repeat}
                plan.append((search_phase(n, payload), "search", kwargs, args.search_timeout))
        elif phase == "history":
            kwargs = {"points": args.history_points, "repeat": args.history_repeat}
            plan.append(("history", "history", kwargs, 300))
        elif phase == "artifacts":
            path = str(artifact_file(args.artifact_mb))
            plan.append(("artifacts", "artifacts", {"path": path}, 120 + args.artifact_mb * 4))
        else:
            raise SystemExit(f"unknown phase {phase!r}")
    for name, phase, kwargs, timeout in plan:
        for round_ in range(args.rounds):
            order = servers if round_ % 2 == 0 else list(reversed(servers))
            for server in order:
                t0 = time.perf_counter()
                if "error" in server.notes:
                    results[server.label].setdefault(name, []).append({"error": server.notes["error"]})
                    continue
                result = run_phase(server, phase, timeout, **kwargs)
                results[server.label].setdefault(name, []).append(result)
                brief = result.get("error") or ", ".join(
                    f"{key}={fmt(value)}" for key, value in result.items() if isinstance(value, int | float)
                )
                print(
                    f"  {name:<14} round {round_ + 1} {server.label:<26} {brief}  ({time.perf_counter() - t0:.0f}s)",
                    flush=True,
                )
    return results


def fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.1f}" if abs(value) >= 10 else f"{value:.2f}"
    return str(value)


# (label, phase result name, field, higher is better)
ROWS = [
    ("ingest runs/s", "ingest", "runs_per_s", True),
    ("log_metric points/s", "log_metric", "points_per_s", True),
    ("log_metric mean ms/call", "log_metric", "mean_ms", False),
    ("search {small} heavy runs p50 ms", "search_{small}", "p50", False),
    ("search {small} heavy runs p95 ms", "search_{small}", "p95", False),
    ("search {small} heavy runs, HTTP only, p50 ms", "search_{small}", "http_p50", False),
    ("search {small} heavy runs, client parsing alone, p50 ms", "search_{small}", "parse_p50", False),
    ("search {big} heavy runs p50 ms", "search_{big}", "p50", False),
    ("search {big} heavy runs p95 ms", "search_{big}", "p95", False),
    ("search {big} heavy runs, HTTP only, p50 ms", "search_{big}", "http_p50", False),
    ("search {big} heavy runs, client parsing alone, p50 ms", "search_{big}", "parse_p50", False),
    ("search {small} light runs p50 ms", "search_light_{small}", "p50", False),
    ("search {small} light runs p95 ms", "search_light_{small}", "p95", False),
    ("search {small} light runs, HTTP only, p50 ms", "search_light_{small}", "http_p50", False),
    ("search {small} light runs, client parsing alone, p50 ms", "search_light_{small}", "parse_p50", False),
    ("search {big} light runs p50 ms", "search_light_{big}", "p50", False),
    ("search {big} light runs p95 ms", "search_light_{big}", "p95", False),
    ("search {big} light runs, HTTP only, p50 ms", "search_light_{big}", "http_p50", False),
    ("search {big} light runs, client parsing alone, p50 ms", "search_light_{big}", "parse_p50", False),
    ("get_metric_history 1k p50 ms", "history", "p50", False),
    ("artifact upload MB/s", "artifacts", "upload_MB_s", True),
    ("artifact download MB/s", "artifacts", "download_MB_s", True),
    ("keep-alive GET p50 ms", "_nodelay", "p50", False),
]


def cell(server: Server, results: dict, name: str, key: str) -> tuple[str, float | None]:
    if name == "_nodelay":
        value = server.notes.get("nodelay", {}).get(key)
        return fmt(value), value
    runs = results.get(server.label, {}).get(name)
    if not runs:
        return "-", None
    values = [run[key] for run in runs if key in run and run[key] is not None]
    if not values:
        errors = [run["error"] for run in runs if "error" in run]
        return (f"error: {errors[0][:60]}" if errors else "-"), None
    value = statistics.median(values)
    partial = any("partial" in run for run in runs)  # stopped at --search-timeout: a lower bound
    return (f"≥ {fmt(value)} (timed out)" if partial else fmt(value)), value


def report(args, servers: list[Server], results: dict) -> None:
    stock = [s for s in servers if s.label.startswith("stock")]
    causeway = next((s for s in servers if s.label == "Causeway"), None)
    header = ["metric"] + [s.label for s in servers] + (["ratio vs best stock"] if stock and causeway else [])
    table = [header]
    for label, name, key, higher in ROWS:
        name = name.format(small=args.small_runs, big=args.big_runs)
        if name != "_nodelay" and not any(name in phases for phases in results.values()):
            continue  # a phase left out with --phases, or search at a size not seeded
        row = [label.format(small=f"{args.small_runs:,}", big=f"{args.big_runs:,}")]
        values = {}
        for server in servers:
            text, value = cell(server, results, name, key)
            row.append(text)
            values[server.label] = value
        if stock and causeway:
            best = [values[s.label] for s in stock if values[s.label]]
            mine = values[causeway.label]
            if best and mine:
                best_value = max(best) if higher else min(best)
                # > 1 means Causeway is better, whichever way the metric goes
                ratio = mine / best_value if higher else best_value / mine
                row.append(f"{ratio:.2f}× {'better' if ratio >= 1 else 'worse'}")
            else:
                row.append("-")
        table.append(row)
    table.append(["TCP_NODELAY on accepted socket"] + [s.notes.get("nodelay", {}).get("nodelay", "-") for s in servers])
    widths = [max(len(row[i]) if i < len(row) else 0 for row in table) for i in range(len(header))]
    print()
    for index, row in enumerate(table):
        print(" | ".join(text.ljust(width) for text, width in zip(row, widths, strict=False)).rstrip())
        if index == 0:
            print("-|-".join("-" * width for width in widths))
    print(
        f"\nmedian of {args.rounds} round(s); ingest = create_run + log_batch(20 params, 10 metrics × 10 steps,"
        f" 10 tags) + set_terminated; search filter {SEARCH_FILTER!r} order {SEARCH_ORDER[0]!r} max_results=100"
        f" over heavy runs (20 params, 10 metrics, 10 tags) and light runs (3 params, 2 metrics, 4 tags);"
        f" ratio > 1 means Causeway is better."
    )
    for server in servers:
        searches = {
            name: (runs[0].get("returned"), runs[0].get("top_m0"))
            for name, runs in results.get(server.label, {}).items()
            if name.startswith("search_") and runs and "returned" in runs[0]
        }
        if searches:
            print(f"  {server.label}: search (runs returned, best m0) {searches}")


if __name__ == "__main__":
    main()
