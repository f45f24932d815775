"""A longer schemathesis run over every operation of /api/schema/, as a data scientist.

    .venv/bin/python bench/api_fuzz.py [--examples 300] [--only datasets]

Runs tests/core/test_api_fuzz.py (the CI test, 15 examples per operation) with many more
examples per operation, on a SQLite database of its own under var/bench/, and prints one line
per operation (passed or the first line of its failure) and the totals. Exits non-zero when
any operation failed: a 5xx, or a response that does not match the schema.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--examples", type=int, default=300, help="examples per operation (CI: 15)")
    parser.add_argument("--only", default="", help="pytest -k expression, e.g. 'datasets and GET'")
    args = parser.parse_args()
    (ROOT / "var" / "bench").mkdir(parents=True, exist_ok=True)
    for name in ("DATABASE_URL", "REDIS_URL"):
        os.environ.pop(name, None)
    # Before pytest loads Django: the settings read these once.
    os.environ.update(
        CAUSEWAY_ENV="test",
        CAUSEWAY_FUZZ_EXAMPLES=str(args.examples),
        SQLITE_TEST_PATH=str(ROOT / "var" / "bench" / "api-fuzz.sqlite3"),
    )
    os.chdir(ROOT)
    sys.path.insert(0, str(ROOT))
    import pytest

    results = Results()
    arguments = ["tests/core/test_api_fuzz.py", "-q", "--no-header", "--tb=no", "-p", "no:cacheprovider"]
    if args.only:
        arguments += ["-k", args.only]
    started = time.monotonic()
    with contextlib.redirect_stdout(io.StringIO()):
        pytest.main(arguments, plugins=[results])
    seconds = time.monotonic() - started
    failed = 0
    for label, outcome, reason in results.rows:
        if outcome == "passed":
            print(f"ok    {label}")
        else:
            failed += 1
            print(f"FAIL  {label}: {reason}")
    passed = len(results.rows) - failed
    print(f"{passed} passed, {failed} failed ({args.examples} examples per operation, {seconds:.0f} s)")
    return 1 if failed or not results.rows else 0


class Results:
    """A pytest plugin that keeps one row per test: the operation ("GET /api/v1/datasets/")."""

    def __init__(self):
        self.rows: list[tuple[str, str, str]] = []

    def pytest_runtest_logreport(self, report):
        if report.when == "call" or report.outcome != "passed":
            label = report.head_line.partition("[")[2].rstrip("]") or report.head_line
            reason = ""
            if report.outcome != "passed":
                text = str(report.longrepr)
                reason = next((line.strip() for line in text.splitlines() if line.strip()), "")[:300]
            self.rows.append((label, report.outcome, reason))


if __name__ == "__main__":
    sys.exit(main())
