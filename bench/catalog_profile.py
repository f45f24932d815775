"""Profiling throughput and memory on a large CSV (default 10 million rows, about 1 GB).

    .venv/bin/python bench/catalog_profile.py [--rows 10000000]

Generates the file once under var/bench/ (with DuckDB, so generation is quick), then profiles
it in a child process and prints MB/s and the child's peak RSS. Targets: ≥ 100 MB/s, < 1 GB RSS.
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

CHILD = """
import json, sys, time
sys.path.insert(0, {root!r})
from apps.catalog.profiling import profile_file, sha256_file
started = time.perf_counter()
digest, size = sha256_file({path!r})
hashed = time.perf_counter()
profile = profile_file({path!r})
done = time.perf_counter()
print(json.dumps({{"rows": profile.row_count, "columns": len(profile.columns), "hash_s": hashed - started,
                  "profile_s": done - hashed}}))
"""


def generate(path: Path, rows: int) -> None:
    import duckdb

    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    duckdb.sql(f"""
        COPY (
            SELECT i AS id,
                   ['north', 'south', 'east', 'west', 'central'][1 + (i % 5)] AS region,
                   round(random() * 10000, 2) AS amount,
                   CASE WHEN i % 17 = 0 THEN NULL ELSE (random() * 850)::INTEGER END AS score,
                   DATE '2020-01-01' + (i % 1500)::INTEGER AS event_date,
                   'customer-' || (i % 250000)::VARCHAR AS customer,
                   (i % 3 = 0) AS flag,
                   md5(i::VARCHAR) AS token,
                   round(random(), 6) AS ratio
            FROM range({rows}) t(i)
        ) TO '{path}' (HEADER, DELIMITER ',')
    """)  # noqa: S608
    print(f"generated {path.stat().st_size / 1e6:.0f} MB in {time.perf_counter() - started:.1f}s")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=10_000_000)
    args = parser.parse_args()
    path = ROOT / "var" / "bench" / f"profile-{args.rows}.csv"
    generate(path, args.rows)
    size_mb = path.stat().st_size / 1e6
    child = subprocess.run(  # noqa: S603
        [sys.executable, "-c", CHILD.format(root=str(ROOT), path=str(path))], capture_output=True, text=True, check=True
    )
    result = json.loads(child.stdout.strip().splitlines()[-1])
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    total = result["hash_s"] + result["profile_s"]
    print(f"file {size_mb:.0f} MB, {result['rows']:,} rows, {result['columns']} columns")
    print(f"sha256   {result['hash_s']:6.1f} s  {size_mb / result['hash_s']:7.0f} MB/s")
    print(f"profile  {result['profile_s']:6.1f} s  {size_mb / result['profile_s']:7.0f} MB/s")
    print(f"total    {total:6.1f} s  {size_mb / total:7.0f} MB/s   peak RSS {peak_mb:.0f} MB")


if __name__ == "__main__":
    main()
