"""Streaming profiles of dataset files (CSV, Parquet, JSON lines) with DuckDB.

DuckDB reads the file in parallel chunks and aggregates as it goes, so memory stays bounded
(`memory_limit`, spilling to a temporary folder) whatever the file size. A profile takes
three scans: statistics for every column at once (counts, approximate distinct counts, min/max,
mean/std, approximate quantiles, approximate top values), then exact counts for those top values
and equal-width histograms for numbers, then the first rows as a sample.

No Django here: the catalog's job calls `profile_file` and stores `DatasetProfile.to_dict()`.
"""

from __future__ import annotations

import datetime as dt
import decimal
import hashlib
import math
import re
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import duckdb

SUPPORTED_FORMATS = ("csv", "parquet", "jsonl")
_EXTENSIONS = {
    ".csv": "csv",
    ".tsv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
}
QUANTILES = {"p5": 0.05, "p25": 0.25, "p50": 0.5, "p75": 0.75, "p95": 0.95}
HISTOGRAM_BINS = 20
TOP_VALUES = 10
MEMORY_LIMIT = "512MB"
THREADS = 2

Progress = Callable[[int, str], None]


class ProfileError(Exception):
    """A file that cannot be profiled, with the line and column when the reader knows them."""

    def __init__(self, reason: str, line: int | None = None, column: str | None = None):
        self.reason, self.line, self.column = reason, line, column
        where = ", ".join(
            part for part in (f"line {line}" if line else "", f"column {column!r}" if column else "") if part
        )
        super().__init__(f"{where}: {reason}" if where else reason)


@dataclass
class ColumnProfile:
    name: str
    type: str
    physical_type: str
    nullable: bool
    null_count: int
    null_fraction: float
    distinct_count: int
    approx_distinct: bool = True
    min: Any = None
    max: Any = None
    mean: float | None = None
    std: float | None = None
    quantiles: dict[str, float] | None = None
    top_values: list[dict] = field(default_factory=list)
    histogram: dict | None = None

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class DatasetProfile:
    format: str
    row_count: int
    columns: list[ColumnProfile]
    sample_rows: list[dict]

    def to_dict(self) -> dict:
        return {
            "format": self.format,
            "row_count": self.row_count,
            "columns": [c.to_dict() for c in self.columns],
            "sample_rows": self.sample_rows,
        }


def detect_format(filename: str) -> str:
    """The format of a file from its extension, or ProfileError for anything else."""
    suffix = Path(filename).suffix.lower()
    if suffix not in _EXTENSIONS:
        raise ProfileError(f"unsupported file type {suffix or '(none)'!r}: use CSV, Parquet or JSON lines")
    return _EXTENSIONS[suffix]


def sha256_file(path: str | Path, chunk_size: int = 1 << 20, progress: Progress | None = None) -> tuple[str, int]:
    """(hex SHA-256, size in bytes), read in chunks."""
    digest, size = hashlib.sha256(), 0
    total = Path(path).stat().st_size or 1
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
            size += len(chunk)
            if progress and size % (64 * chunk_size) < chunk_size:
                progress(int(100 * size / total), "hashing")
    return digest.hexdigest(), size


def profile_file(
    path: str | Path, fmt: str | None = None, *, sample_size: int = 20, progress: Progress | None = None
) -> DatasetProfile:
    """Profile a CSV, Parquet or JSON-lines file in bounded memory."""
    path = Path(path)
    fmt = fmt or detect_format(path.name)
    if fmt not in SUPPORTED_FORMATS:
        raise ProfileError(f"unsupported format {fmt!r}")
    if not path.is_file():
        raise ProfileError("the file does not exist")
    if path.stat().st_size == 0:
        raise ProfileError("the file is empty")
    report = progress or (lambda percent, message: None)
    with tempfile.TemporaryDirectory(prefix="causeway-profile-") as spill, _connect(spill) as con:
        try:
            source = _source(fmt, path)
            report(5, "reading the schema")
            schema = con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()  # noqa: S608
            if not schema:
                raise ProfileError("the file has no columns")
            columns = [(row[0], str(row[1])) for row in schema]
            report(15, f"computing statistics of {len(columns)} columns")
            stats, row_count = _statistics(con, source, columns)
            report(60, "counting top values and histograms")
            _top_counts_and_histograms(con, source, columns, stats)
            report(90, "taking sample rows")
            sample = _sample(con, source, columns, sample_size)
        except duckdb.Error as exc:
            error = _as_profile_error(exc, fmt)
            if fmt == "csv" and error.line is None:
                error = _locate_csv_problem(path) or error
            elif fmt == "jsonl":
                error = _locate_json_problem(path) or error
            raise error from exc
    report(100, "profile complete")
    return DatasetProfile(
        format=fmt, row_count=row_count, columns=[stats[name] for name, _ in columns], sample_rows=sample
    )


# --- the scans ---------------------------------------------------------------------------------


def _connect(spill_dir: str) -> duckdb.DuckDBPyConnection:
    connection = duckdb.connect(
        ":memory:",
        config={
            "memory_limit": MEMORY_LIMIT,
            "threads": THREADS,
            "temp_directory": spill_dir,
            "preserve_insertion_order": False,
            "enable_external_access": True,
        },
    )
    connection.execute("SET enable_progress_bar = false")  # it prints to stdout (worker logs) on long scans
    return connection


def _source(fmt: str, path: Path) -> str:
    literal = _quote_literal(str(path))
    if fmt == "csv":
        delimiter = "'\\t'" if path.suffix.lower() == ".tsv" else "','"
        # strict_mode and no null padding: a ragged row is an error, not silently padded.
        # The dialect is fixed (and skip = 0) so the sniffer cannot "recover" from a bad row by
        # skipping lines or the header, which DuckDB otherwise does silently.
        return (
            f"read_csv({literal}, header = true, skip = 0, delim = {delimiter}, quote = '\"', escape = '\"', "
            "strict_mode = true, null_padding = false, ignore_errors = false, sample_size = 20480)"
        )
    if fmt == "parquet":
        return f"read_parquet({literal})"
    return f"read_json({literal}, format = 'newline_delimited', ignore_errors = false)"


def _statistics(
    con: duckdb.DuckDBPyConnection, source: str, columns: list[tuple[str, str]]
) -> tuple[dict[str, ColumnProfile], int]:
    parts = ["count(*)"]
    for name, physical in columns:
        col, kind = _quote_ident(name), _kind(physical)
        parts += [f"count({col})", f"approx_count_distinct({col})"]
        if kind in ("integer", "float"):
            parts += [
                f"min({col})",
                f"max({col})",
                f"avg({col}::DOUBLE)",
                f"stddev_samp({col}::DOUBLE)",
                f"approx_quantile({col}::DOUBLE, {list(QUANTILES.values())})",
            ]
        elif kind in ("date", "timestamp", "string", "boolean"):
            comparable = f"{col}::VARCHAR" if kind == "boolean" else col
            parts += [f"min({comparable})", f"max({comparable})"]
        if kind in ("string", "boolean"):
            parts.append(f"approx_top_k({col}::VARCHAR, {TOP_VALUES})")
    row = con.execute(f"SELECT {', '.join(parts)} FROM {source}").fetchone()  # noqa: S608
    values = iter(row)
    row_count = int(next(values))
    stats = {}
    for name, physical in columns:
        kind = _kind(physical)
        non_null, distinct = int(next(values)), int(next(values) or 0)
        nulls = row_count - non_null
        profile = ColumnProfile(
            name=name,
            type=kind,
            physical_type=physical,
            nullable=nulls > 0,
            null_count=nulls,
            null_fraction=round(nulls / row_count, 6) if row_count else 0.0,
            distinct_count=min(distinct, non_null),
        )
        if kind in ("integer", "float"):
            profile.min, profile.max = _json_safe(next(values)), _json_safe(next(values))
            profile.mean, profile.std = _json_safe(next(values)), _json_safe(next(values))
            quantiles = next(values)
            if quantiles:
                profile.quantiles = {key: _json_safe(v) for key, v in zip(QUANTILES, quantiles, strict=False)}
        elif kind in ("date", "timestamp", "string", "boolean"):
            profile.min, profile.max = _json_safe(next(values)), _json_safe(next(values))
        if kind in ("string", "boolean"):
            profile.top_values = [{"value": v, "count": 0} for v in (next(values) or []) if v is not None]
        stats[name] = profile
    return stats, row_count


def _top_counts_and_histograms(
    con: duckdb.DuckDBPyConnection, source: str, columns: list[tuple[str, str]], stats: dict[str, ColumnProfile]
) -> None:
    parts, readers = [], []
    params: list[Any] = []
    for name, _ in columns:
        profile, col = stats[name], _quote_ident(name)
        for item in profile.top_values:
            parts.append(f"count(*) FILTER (WHERE {col}::VARCHAR = ?)")
            params.append(item["value"])
            readers.append(("top", item))
        if profile.type in ("integer", "float") and profile.min is not None and profile.max is not None:
            low, high = float(profile.min), float(profile.max)
            width = (high - low) / HISTOGRAM_BINS or 1.0
            # least() skips NULLs in DuckDB, so missing values are filtered out explicitly.
            parts.append(
                f"histogram(least(floor(({col}::DOUBLE - {low!r}) / {width!r}), {HISTOGRAM_BINS - 1})::INTEGER) "
                f"FILTER (WHERE {col} IS NOT NULL)"
            )
            readers.append(("histogram", (profile, low, width)))
    if not parts:
        return
    row = con.execute(f"SELECT {', '.join(parts)} FROM {source}", params).fetchone()  # noqa: S608
    for (kind, target), value in zip(readers, row, strict=True):
        if kind == "top":
            target["count"] = int(value)
        else:
            profile, low, width = target
            bins = dict(value or {})
            profile.histogram = {
                "edges": [round(low + i * width, 10) for i in range(HISTOGRAM_BINS + 1)],
                "counts": [int(bins.get(i, 0)) for i in range(HISTOGRAM_BINS)],
            }
    for profile in stats.values():
        profile.top_values.sort(key=lambda item: (-item["count"], item["value"]))


def _sample(con: duckdb.DuckDBPyConnection, source: str, columns: list[tuple[str, str]], size: int) -> list[dict]:
    rows = con.execute(f"SELECT * FROM {source} LIMIT {int(size)}").fetchall()  # noqa: S608
    names = [name for name, _ in columns]
    return [{name: _json_safe(value) for name, value in zip(names, row, strict=False)} for row in rows]


# --- helpers -----------------------------------------------------------------------------------


def _kind(physical: str) -> str:
    upper = physical.upper()
    if upper in {
        "TINYINT",
        "SMALLINT",
        "INTEGER",
        "BIGINT",
        "HUGEINT",
        "UTINYINT",
        "USMALLINT",
        "UINTEGER",
        "UBIGINT",
        "UHUGEINT",
    }:
        return "integer"
    if upper in {"FLOAT", "DOUBLE", "REAL"} or upper.startswith("DECIMAL"):
        return "float"
    if upper == "BOOLEAN":
        return "boolean"
    if upper == "VARCHAR":
        return "string"
    if upper == "DATE":
        return "date"
    if upper.startswith("TIMESTAMP"):
        return "timestamp"
    return "other"


def _json_safe(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, decimal.Decimal):
        return _json_safe(float(value))
    if isinstance(value, (dt.date, dt.datetime, dt.time)):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray)):
        return value.hex()
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    return str(value)


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _quote_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


_LINE = re.compile(r"line[:\s]+(\d+)", re.IGNORECASE)
_COLUMN = re.compile(r'column[:\s]+"?([^"\n,]+)"?', re.IGNORECASE)


def _as_profile_error(exc: duckdb.Error, fmt: str) -> ProfileError:
    """A readable reason from DuckDB's message, with the line (and column) when it has them."""
    message = str(exc)
    line_match = _LINE.search(message)
    line = int(line_match.group(1)) if line_match else None
    lowered = message.split("\n", 1)[0].lower()
    if "error when sniffing" in lowered:
        return ProfileError("the rows do not follow one CSV layout")  # located by _locate_csv_problem
    if "expected number of columns" in message.lower():
        lowered = "expected number of columns"
    if "expected number of columns" in lowered or "too many columns" in lowered:
        found = re.search(r"Expected Number of Columns:\s*(\d+)\s*Found:\s*(\d+)", message)
        reason = (
            f"expected {found.group(1)} columns, found {found.group(2)}"
            if found
            else "a row has the wrong number of columns"
        )
        return ProfileError(reason, line=line)
    if "invalid unicode" in message.lower() or "utf-8" in lowered or "unicode" in lowered:
        return ProfileError("the file is not valid UTF-8 (mixed or unknown encoding)", line=line)
    if fmt == "parquet":
        return ProfileError(f"not a readable Parquet file ({_first_line(message)})")
    if fmt == "jsonl":
        return ProfileError(f"malformed JSON ({_first_line(message)})", line=line)
    if "could not convert" in lowered or "conversion error" in lowered:
        column = _COLUMN.search(message)
        return ProfileError(_first_line(message), line=line, column=column.group(1).strip() if column else None)
    return ProfileError(_first_line(message), line=line)


def _locate_csv_problem(path: Path) -> ProfileError | None:
    """Find the first ragged or undecodable row with a plain streaming read (only used after
    DuckDB refused the file without saying where)."""
    import csv

    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.reader(handle, delimiter=delimiter)
            header = next(reader, None)
            if header is None:
                return ProfileError("the file has no header row", line=1)
            for row in reader:
                if row and len(row) != len(header):
                    return ProfileError(f"expected {len(header)} columns, found {len(row)}", line=reader.line_num)
    except UnicodeDecodeError:
        return ProfileError("the file is not valid UTF-8 (mixed or unknown encoding)")
    except csv.Error as exc:
        return ProfileError(str(exc))
    return None


def _locate_json_problem(path: Path) -> ProfileError | None:
    """The first line that is not a JSON object, read line by line (after DuckDB refused the
    file: its line numbers point past a record cut short)."""
    import json

    try:
        with path.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    value = json.loads(line)
                except json.JSONDecodeError as exc:
                    return ProfileError(f"malformed JSON ({exc.msg})", line=number)
                if not isinstance(value, dict):
                    return ProfileError("each line must be a JSON object", line=number)
    except UnicodeDecodeError:
        return ProfileError("the file is not valid UTF-8 (mixed or unknown encoding)")
    return None


def _first_line(message: str) -> str:
    text = re.sub(r"""(file )?['"]?/[^'"\s]+['"]?""", "the file", message.split("\n", 1)[0])  # no server paths
    return text.split(": ", 1)[1] if text.startswith(("Invalid Input Error", "IO Error", "Conversion Error")) else text
