"""Dataset profiling at scale: `profile_file` on a large CSV, in a child process.

    .venv/bin/python bench/profile_csv.py [--size-mb 1024] [--repeat 1] [--threads 2] [--memory-limit 512MB]

Generates the CSV once (cached as var/bench/profile-<size>mb.csv; about 84 bytes a row, so
1 GB is about 12.8 million rows of int, float, string, date, timestamp, boolean and nullable
columns), then profiles it in a fresh child process per run and prints the file size, rows,
seconds, MB/s and the child's peak RSS. Targets: peak RSS < 1 GB and >= 100 MB/s.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH_DIR = ROOT / "var" / "bench"
BYTES_PER_ROW = 84  # measured on the generated columns below

# Deterministic pseudo-random values from hash(row, salt): the same file on every machine, and
# DuckDB writes it in parallel, streaming, without holding the rows in memory.
GENERATE = """
COPY (
  SELECT
    i AS id,
    CASE WHEN hash(i, 1) % 10 = 0 THEN NULL ELSE round((hash(i, 2) % 1000000) / 100.0 - 2000, 2) END AS amount,
    ['north', 'south', 'east', 'west', 'central', 'overseas'][(1 + hash(i, 3) % 6)::BIGINT] AS region,
    'customer-' || (hash(i, 4) % 5000000)::VARCHAR AS customer,
    DATE '2020-01-01' + (hash(i, 5) % 1800)::INTEGER AS event_date,
    TIMESTAMP '2020-01-01' + to_seconds((hash(i, 6) % 150000000)::BIGINT) AS created_at,
    hash(i, 7) % 2 = 0 AS active,
    CASE WHEN hash(i, 8) % 4 = 0 THEN NULL ELSE (hash(i, 9) % 100)::INTEGER END AS score,
    CASE WHEN hash(i, 10) % 3 = 0 THEN NULL ELSE 'note, ' || (hash(i, 11) % 1000)::VARCHAR END AS note
  FROM range({rows}) AS t(i)
) TO '{path}' (HEADER, DELIMITER ',')
"""


def dataset(size_mb: int) -> Path:
    """The cached CSV of about `size_mb` MiB, generated on first use."""
    import duckdb

    path = BENCH_DIR / f"profile-{size_mb}mb.csv"
    if path.exists():
        return path
    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    rows = size_mb * 1024 * 1024 // BYTES_PER_ROW
    print(f"generating {path.relative_to(ROOT)} ({rows:,} rows)...", flush=True)
    started = time.perf_counter()
    with duckdb.connect(config={"threads": 2, "memory_limit": "512MB"}) as con:
        con.execute(GENERATE.format(rows=rows, path=str(partial).replace("'", "''")))
    partial.rename(path)  # only a complete file is ever cached
    print(f"generated in {time.perf_counter() - started:.1f}s", flush=True)
    return path


def child(path: str, threads: int, memory_limit: str, verbose: bool) -> None:
    """Profile `path` and print one JSON line: the figures measured inside this process."""
    sys.path.insert(0, str(ROOT))
    from apps.catalog import profiling

    profiling.THREADS, profiling.MEMORY_LIMIT = threads, memory_limit
    started = time.perf_counter()

    def progress(percent: int, message: str) -> None:
        if verbose:
            print(f"  {time.perf_counter() - started:6.2f}s {percent:3d}% {message}", file=sys.stderr, flush=True)

    profile = profiling.profile_file(path, progress=progress)
    seconds = time.perf_counter() - started
    json.dumps(profile.to_dict(), allow_nan=False)  # part of the job's work: the profile must serialise
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kilobytes on Linux
    print(
        json.dumps({"rows": profile.row_count, "columns": len(profile.columns), "seconds": seconds, "rss_kb": peak_kb})
    )


def run_once(path: Path, args: argparse.Namespace) -> dict:
    command = [sys.executable, __file__, "--child", str(path), "--threads", str(args.threads)]
    command += ["--memory-limit", args.memory_limit] + (["--verbose"] if args.verbose else [])
    done = subprocess.run(command, check=True, capture_output=True, text=True)  # noqa: S603 - our own script
    if args.verbose:
        print(done.stderr, end="")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mb", type=int, default=1024, help="size of the generated CSV in MiB (default 1024)")
    parser.add_argument("--repeat", type=int, default=1, help="profiles to run, each in a new process")
    parser.add_argument("--threads", type=int, default=2, help="DuckDB threads (the library's default is 2)")
    parser.add_argument("--memory-limit", default="512MB", help="DuckDB memory_limit (the library's default)")
    parser.add_argument("--verbose", action="store_true", help="print the progress callbacks with timings")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.threads, args.memory_limit, args.verbose)
        return
    path = dataset(args.size_mb)
    size_mb = path.stat().st_size / 1e6
    print(
        f"file: {path.relative_to(ROOT)}, {size_mb:,.0f} MB; threads={args.threads}, memory_limit={args.memory_limit}"
    )
    for _ in range(args.repeat):
        result = run_once(path, args)
        print(
            f"rows={result['rows']:,} columns={result['columns']} seconds={result['seconds']:.2f} "
            f"MB/s={size_mb / result['seconds']:.0f} peak_rss_MB={result['rss_kb'] / 1024:.0f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
