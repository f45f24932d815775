"""Streaming profiles of dataset files (CSV, Parquet, JSON lines) with DuckDB.

DuckDB reads the file in parallel chunks and aggregates as it goes, so memory stays bounded
(`MEMORY_LIMIT`, fixed-size sketches) whatever the file size. A profile reads the file twice:

1. statistics of every column in one query: counts, approximate distinct counts (HyperLogLog),
   min/max, mean/std, approximate quantiles (t-digest), candidate top values (space-saving);
2. exact counts of those top values and equal-width histograms of the numbers (both need the
   first pass: the candidates and the min/max), reading only the columns they need.

The first rows are read separately for the sample (a `LIMIT` stops after the first chunk).

No Django here: the catalog's job calls `profile_file` and stores `DatasetProfile.to_dict()`.
"""

from __future__ import annotations

import datetime as dt
import decimal
import hashlib
import json
import math
import re
import tempfile
import threading
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
_PROGRESS_POLL_SECONDS = 0.5
_CSV_DELIMITERS = (",", "\t", ";", "|")
_KEY_STRIDE = 64  # above any bin number: HISTOGRAM_BINS and TOP_VALUES

Progress = Callable[[int, str], None]


class ProfileError(Exception):
    """A file that cannot be read.

    `reason` says what is wrong, `line` (1-based, counting the header) and `column` where it is
    when the reader knows; `str()` is one line such as "line 3: expected 4 columns, found 5".
    """

    def __init__(self, reason: str, line: int | None = None, column: str | None = None):
        self.reason, self.line, self.column = reason, line, column
        where = [f"line {line}"] if line else []
        if column:
            where.append(f"column {column!r}")
        super().__init__(f"{', '.join(where)}: {reason}" if where else reason)


@dataclass
class ColumnProfile:
    """Statistics of one column; every value is JSON-safe (see the module docstring)."""

    name: str
    type: str  # integer, float, boolean, string, date, timestamp or other
    physical_type: str  # the engine's type, e.g. BIGINT, DECIMAL(10,2), STRUCT(...)
    nullable: bool  # whether the file has a null in this column
    null_count: int
    null_fraction: float
    distinct_count: int
    approx_distinct: bool = True
    min: Any = None
    max: Any = None
    mean: float | None = None
    std: float | None = None
    quantiles: dict[str, float] | None = None
    top_values: list[dict[str, Any]] = field(default_factory=list)
    histogram: dict[str, list] | None = None

    def to_dict(self) -> dict[str, Any]:
        """A plain dict, ready for json.dumps."""
        return asdict(self)


@dataclass
class DatasetProfile:
    """A file's profile: its row count, one ColumnProfile per column and the first rows."""

    format: str
    row_count: int
    columns: list[ColumnProfile]
    sample_rows: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        """A plain dict, ready for json.dumps."""
        return {
            "format": self.format,
            "row_count": self.row_count,
            "columns": [column.to_dict() for column in self.columns],
            "sample_rows": self.sample_rows,
        }


def detect_format(filename: str) -> str:
    """The format ("csv", "parquet" or "jsonl") of a file from its extension."""
    suffix = Path(filename).suffix.lower()
    if suffix not in _EXTENSIONS:
        raise ProfileError(
            f"unsupported file type {suffix or '(no extension)'!r}: use CSV (.csv, .tsv), "
            "Parquet (.parquet, .pq) or JSON lines (.jsonl, .ndjson, .json)"
        )
    return _EXTENSIONS[suffix]


def sha256_file(path: str | Path, chunk_size: int = 1 << 20, progress: Progress | None = None) -> tuple[str, int]:
    """(hex SHA-256 digest, size in bytes) of a file, read in chunks of `chunk_size`."""
    digest, size = hashlib.sha256(), 0
    total = Path(path).stat().st_size or 1
    reported = -1
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
            size += len(chunk)
            percent = 100 * size // total
            if progress and percent // 10 > reported // 10:  # every 10 %, not every chunk
                reported = percent
                progress(min(percent, 100), "hashing")
    return digest.hexdigest(), size


def profile_file(
    path: str | Path,
    fmt: str | None = None,
    *,
    sample_size: int = 20,
    progress: Progress | None = None,
) -> DatasetProfile:
    """Profile a CSV, Parquet or JSON-lines file in bounded memory.

    `fmt` defaults to the format of the extension. `progress(percent, message)` is called from
    this thread as the work advances. Raises ProfileError for any file that cannot be read.
    """
    path = Path(path)
    fmt = fmt or detect_format(path.name)
    if fmt not in SUPPORTED_FORMATS:
        raise ProfileError(f"unsupported format {fmt!r}: use one of {', '.join(SUPPORTED_FORMATS)}")
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise ProfileError("the file does not exist")
    if not path.is_file():
        raise ProfileError("not a regular file")
    if size == 0:
        raise ProfileError("the file is empty")
    report = progress or _no_progress
    try:
        reader = _Reader.for_file(path, fmt)
    except OSError as exc:
        raise ProfileError(f"the file cannot be read ({exc.strerror or exc})")
    # A column whose type was guessed from the first rows and is contradicted further on is
    # read again as text: each retry fixes one column, so this ends.
    while True:
        try:
            return _profile(reader, sample_size, report, track_progress=progress is not None)
        except duckdb.Error as exc:
            if not reader.relax(str(exc)):
                raise _as_profile_error(exc, reader) from exc


def _no_progress(percent: int, message: str) -> None:
    return None


# --- reading -----------------------------------------------------------------------------------


@dataclass
class _Reader:
    """How DuckDB reads the file: the table function and the overrides learnt from failures."""

    path: Path
    fmt: str
    delimiter: str = ","
    json_format: str = "newline_delimited"
    text_columns: list[str] = field(default_factory=list)
    full_type_scan: bool = False

    @classmethod
    def for_file(cls, path: Path, fmt: str) -> _Reader:
        reader = cls(path=path, fmt=fmt)
        head = _head(path)
        if fmt == "csv":
            reader.delimiter = _guess_delimiter(head, tsv=path.suffix.lower() == ".tsv")
        elif fmt == "jsonl" and head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"["):
            reader.json_format = "array"  # a .json file holding one array of records
        return reader

    def source(self) -> str:
        literal = _quote_literal(str(self.path))
        if self.fmt == "parquet":
            return f"read_parquet({literal})"
        if self.fmt == "jsonl":
            sample = ", sample_size = -1" if self.full_type_scan else ""
            return f"read_json({literal}, format = '{self.json_format}'{sample})"
        # The delimiter is set, not sniffed: in strict mode DuckDB's sniffer may otherwise settle
        # on a delimiter under which a ragged file looks regular (e.g. one column per line).
        # strict_mode, no null padding and no ignored errors: a ragged row is an error. No skipped
        # lines nor comments either: else the sniffer may skip the rows before a ragged one and take
        # that one for the header, or drop lines that start with '#'.
        types = ""
        if self.text_columns:
            types = ", types = {" + ", ".join(f"{_quote_literal(c)}: 'VARCHAR'" for c in self.text_columns) + "}"
        return (
            f"read_csv({literal}, header = true, delim = {_quote_literal(self.delimiter)}, strict_mode = true, "
            f"null_padding = false, ignore_errors = false, skip = 0, comment = ''{types})"
        )

    def relax(self, message: str) -> bool:
        """Loosen the reading after a type-guess failure; False when the error is the file's."""
        if self.fmt == "csv" and message.startswith("Conversion Error"):
            column = re.search(r'Error when converting column "(.*?)"', message)
            if column and column.group(1) not in self.text_columns:
                self.text_columns.append(column.group(1))
                return True
        if self.fmt == "jsonl" and "JSON transform error" in message and not self.full_type_scan:
            self.full_type_scan = True  # guess the types from every record instead of the first ones
            return True
        return False


def _head(path: Path, size: int = 1 << 16) -> bytes:
    with open(path, "rb") as handle:
        return handle.read(size)


def _guess_delimiter(head: bytes, tsv: bool) -> str:
    """The delimiter most used in the header line, quoted names left out."""
    first_line = head.split(b"\n", 1)[0].decode("utf-8", errors="replace").lstrip("\ufeff")
    unquoted = re.sub(r'"[^"]*"', "", first_line)
    counts = {delimiter: unquoted.count(delimiter) for delimiter in _CSV_DELIMITERS}
    if tsv and counts["\t"]:
        return "\t"
    best = max(_CSV_DELIMITERS, key=lambda d: counts[d])  # ties: the first in the tuple wins
    return best if counts[best] else ("\t" if tsv else ",")


def _connect(spill_dir: str, track_progress: bool = False) -> duckdb.DuckDBPyConnection:
    """A fresh in-memory engine per profile, capped in memory and threads."""
    con = duckdb.connect(
        ":memory:",
        config={
            "memory_limit": MEMORY_LIMIT,
            "threads": THREADS,
            "temp_directory": spill_dir,
            # Never fetch an extension from the network in a job.
            "autoinstall_known_extensions": False,
        },
    )
    con.execute("SET TimeZone = 'UTC'")  # timestamps with a time zone print in UTC
    # Progress is tracked only to be polled (see _Runner): DuckDB's own bar, on by default, would
    # print to stdout, i.e. the worker's logs, on any scan longer than two seconds.
    con.execute(f"SET enable_progress_bar = {str(track_progress).lower()}; SET enable_progress_bar_print = false")
    return con


# --- the profile -------------------------------------------------------------------------------


@dataclass
class _Column:
    name: str
    physical: str
    kind: str

    @property
    def sql(self) -> str:
        return _quote_ident(self.name)


def _profile(reader: _Reader, sample_size: int, report: Progress, track_progress: bool) -> DatasetProfile:
    with tempfile.TemporaryDirectory(prefix="causeway-profile-") as spill, _connect(spill, track_progress) as con:
        source = reader.source()
        report(5, "reading the schema")
        columns = _schema(con, source)
        report(10, "reading sample rows")
        sample = _sample(con, source, columns, sample_size)
        run = _Runner(con, report if track_progress else None)
        profiles, row_count = _statistics(run, source, columns)
        _exact_counts_and_histograms(run, source, columns, profiles)
    report(100, "profile complete")
    return DatasetProfile(format=reader.fmt, row_count=row_count, columns=profiles, sample_rows=sample)


def _schema(con: duckdb.DuckDBPyConnection, source: str) -> list[_Column]:
    rows = con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()  # noqa: S608 - quoted literal
    if not rows:
        raise ProfileError("the file has no columns")
    return [_Column(name=row[0], physical=str(row[1]), kind=_kind(str(row[1]))) for row in rows]


def _sample(con: duckdb.DuckDBPyConnection, source: str, columns: list[_Column], size: int) -> list[dict]:
    """The first rows, in file order; dates, times and nested values as text."""
    if size <= 0:
        return []
    select = ", ".join(_as_display(c) for c in columns)
    rows = con.execute(f"SELECT {select} FROM {source} LIMIT {int(size)}").fetchall()  # noqa: S608
    return [{c.name: _cell(c, value) for c, value in zip(columns, row, strict=True)} for row in rows]


class _Runner:
    """Runs one query; with a progress callback, polls DuckDB's progress from this thread while
    the query runs on another (the callback may write to a database, so it stays here)."""

    def __init__(self, con: duckdb.DuckDBPyConnection, report: Progress | None):
        self.con, self.report = con, report

    def all(self, sql: str, params: list[Any], low: int, high: int, message: str) -> list[tuple]:
        if self.report is None:
            return self.con.execute(sql, params).fetchall()
        self.report(low, message)
        outcome: dict[str, Any] = {}

        def work() -> None:
            try:
                outcome["rows"] = self.con.execute(sql, params).fetchall()
            except BaseException as exc:  # re-raised in the calling thread below
                outcome["error"] = exc

        worker = threading.Thread(target=work, name="causeway-profile", daemon=True)
        worker.start()
        try:
            last = low
            while worker.is_alive():
                worker.join(_PROGRESS_POLL_SECONDS)
                done = self.con.query_progress()
                percent = low + int((high - low) * max(0.0, min(done, 100.0)) / 100)
                if worker.is_alive() and percent > last:
                    last = percent
                    self.report(percent, message)
        finally:
            if worker.is_alive():  # the callback raised (e.g. the job was cancelled): stop the query
                self.con.interrupt()
                worker.join()
        if "error" in outcome:
            raise outcome["error"]
        return outcome["rows"]


def _statistics(run: _Runner, source: str, columns: list[_Column]) -> tuple[list[ColumnProfile], int]:
    parts, readers = ["count(*)"], []
    for column in columns:
        column_parts, reader = _statistics_sql(column)
        parts += column_parts
        readers.append((column, len(column_parts), reader))
    sql = f"SELECT {', '.join(parts)} FROM {source}"  # noqa: S608 - identifiers and path quoted
    row = run.all(sql, [], 15, 65, "computing column statistics")[0]
    row_count, position, profiles = int(row[0]), 1, []
    for column, width, reader in readers:
        profiles.append(reader(column, row_count, row[position : position + width]))
        position += width
    return profiles, row_count


def _statistics_sql(column: _Column) -> tuple[list[str], Callable[..., ColumnProfile]]:
    """The aggregates for one column, and the function that reads their values back."""
    col, kind = column.sql, column.kind
    parts = [f"count({col})", f"approx_count_distinct({col})"]
    if kind in ("integer", "float"):
        finite = f" FILTER (WHERE isfinite({col}))" if _is_binary_float(column.physical) else ""
        parts += [
            f"min({col})",
            f"max({col})",
            f"avg({col})",
            f"stddev_samp({col})",
            f"approx_quantile({col}::DOUBLE, {list(QUANTILES.values())})",
            # Histogram bounds: NaN and infinities would stretch the bins to nothing.
            f"min({col}){finite}",
            f"max({col}){finite}",
        ]
    elif kind == "boolean":
        parts += [f"count_if({col})"]  # the exact counts of true and false: no second pass
    elif kind == "string":
        parts += [f"min({col})", f"max({col})", f"approx_top_k({col}, {TOP_VALUES})"]
    elif kind in ("date", "timestamp"):
        parts += [f"min({col})::VARCHAR", f"max({col})::VARCHAR"]
    return parts, _read_statistics


def _read_statistics(column: _Column, row_count: int, values: tuple) -> ColumnProfile:
    non_null, distinct, *rest = values
    nulls = row_count - int(non_null)
    profile = ColumnProfile(
        name=column.name,
        type=column.kind,
        physical_type=column.physical,
        nullable=nulls > 0,
        null_count=nulls,
        null_fraction=round(nulls / row_count, 6) if row_count else 0.0,
        distinct_count=min(int(distinct or 0), int(non_null)),
    )
    if column.kind in ("integer", "float"):
        low, high, mean, std, quantiles, finite_low, finite_high = rest
        profile.min, profile.max = _json_safe(low), _json_safe(high)
        profile.mean, profile.std = _json_safe(_float(mean)), _json_safe(_float(std))
        if quantiles:
            profile.quantiles = {key: _json_safe(float(v)) for key, v in zip(QUANTILES, quantiles, strict=True)}
        # Kept aside until the histogram pass uses them.
        profile.histogram = {"_bounds": [_json_safe(finite_low), _json_safe(finite_high)]}
    elif column.kind == "boolean":
        trues = int(rest[0] or 0)
        counts = [{"value": "true", "count": trues}, {"value": "false", "count": int(non_null) - trues}]
        profile.top_values = sorted((c for c in counts if c["count"]), key=lambda c: -c["count"])
        if non_null:
            profile.min, profile.max = trues == int(non_null), trues > 0  # False < True
    elif column.kind == "string":
        low, high, candidates = rest
        profile.min, profile.max = low, high
        profile.top_values = [{"value": v, "count": 0} for v in candidates or [] if v is not None]
    elif column.kind in ("date", "timestamp"):
        profile.min, profile.max = (_iso(v, column.kind) for v in rest)
    return profile


def _exact_counts_and_histograms(
    run: _Runner, source: str, columns: list[_Column], profiles: list[ColumnProfile]
) -> None:
    """Second pass: exact counts of the candidate top values, and the numeric histograms.

    Each row gives one small integer key per column, `column slot * _KEY_STRIDE + bin` (a bin
    is a histogram bin, or a top value's position among the candidates), and one GROUP BY counts
    the keys. Unlike one `histogram()` per column, whose state takes megabytes, this stays
    within the memory limit however many columns the file has.
    """
    keys, params, readers = [], [], []
    for column, profile in zip(columns, profiles, strict=True):
        slot = len(readers) * _KEY_STRIDE
        if column.kind == "string" and profile.top_values:
            # The candidate's position (1-based, NULL when absent) in a bound list: far faster
            # than `IN (...)` or one filtered count per value when the column has many values.
            keys.append(f"{slot} + list_position(?::VARCHAR[], {column.sql})")
            params.append([item["value"] for item in profile.top_values])
            readers.append((profile, _read_top_counts))
        elif column.kind in ("integer", "float"):
            bins = _bins(column, *profile.histogram.pop("_bounds"))
            profile.histogram = None
            if bins is not None:
                keys.append(f"{slot} + {_bin_sql(column, bins)}")
                readers.append((profile, _histogram_reader(bins)))
    if not keys:
        return
    listed = ", ".join(f"({key})::BIGINT" for key in keys)
    sql = (
        f"SELECT k, count(*) FROM (SELECT unnest([{listed}]) AS k FROM {source}) "  # noqa: S608 - quoted, bound
        "WHERE k IS NOT NULL GROUP BY k"
    )
    counts: list[dict[int, int]] = [{} for _ in readers]
    for key, count in run.all(sql, params, 65, 95, "counting top values and histograms"):
        counts[key // _KEY_STRIDE][key % _KEY_STRIDE] = int(count)
    for (profile, read), found in zip(readers, counts, strict=True):
        read(profile, found)


def _read_top_counts(profile: ColumnProfile, counts: dict) -> None:
    # Keys are 1-based positions in the candidate list; values not in it map to NULL, not counted.
    items = [{"value": item["value"], "count": int(counts.get(i, 0))} for i, item in enumerate(profile.top_values, 1)]
    profile.top_values = sorted((i for i in items if i["count"]), key=lambda i: (-i["count"], i["value"]))


@dataclass
class _Bins:
    low: float
    width: float
    count: int

    @property
    def edges(self) -> list[float]:
        # 12 significant digits: 0.1 * 3 prints as 0.3, not 0.30000000000000004
        return [_json_safe(float(f"{self.low + i * self.width:.12g}")) for i in range(self.count + 1)]


def _bins(column: _Column, low: Any, high: Any) -> _Bins | None:
    """~HISTOGRAM_BINS equal-width bins from min to max; one bin per value for small integer ranges."""
    if low is None or high is None:
        return None  # no finite value
    low, high = float(low), float(high)
    if high == low:
        return _Bins(low=low, width=0.0, count=1)
    if column.kind == "integer" and high - low + 1 <= HISTOGRAM_BINS:
        return _Bins(low=low, width=1.0, count=int(high - low) + 1)
    width = (high - low) / HISTOGRAM_BINS
    if not math.isfinite(width) or width == 0:
        return None  # a range too wide (or too narrow) for doubles
    return _Bins(low=low, width=width, count=HISTOGRAM_BINS)


def _bin_sql(column: _Column, bins: _Bins) -> str:
    """The bin of a value, NULL for a null (and for NaN or an infinity)."""
    col = column.sql
    if bins.width == 0:
        index = "0"
    else:
        # The max falls on the last edge: counted in the last bin, like numpy.histogram.
        index = f"least(floor(({col}::DOUBLE - {bins.low!r}) / {bins.width!r}), {bins.count - 1})::INTEGER"
    finite = f"isfinite({col})" if _is_binary_float(column.physical) else f"{col} IS NOT NULL"
    return f"CASE WHEN {finite} THEN {index} END"


def _histogram_reader(bins: _Bins) -> Callable[[ColumnProfile, dict], None]:
    def read(profile: ColumnProfile, counts: dict) -> None:
        edges = bins.edges if bins.width else [_json_safe(bins.low), _json_safe(bins.low)]
        profile.histogram = {"edges": edges, "counts": [int(counts.get(i, 0)) for i in range(bins.count)]}

    return read


# --- values ------------------------------------------------------------------------------------

_INTEGER_TYPES = {
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
}


def _kind(physical: str) -> str:
    """The small type vocabulary of the catalog, from DuckDB's type name."""
    upper = physical.upper()
    if upper in _INTEGER_TYPES:
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


def _is_binary_float(physical: str) -> bool:
    return physical.upper() in {"FLOAT", "DOUBLE", "REAL"}


def _as_display(column: _Column) -> str:
    """The sample's select expression: anything Python could not hold (or hold in JSON) as text."""
    col = column.sql
    if column.kind in ("integer", "float", "boolean", "string"):
        return col
    if column.physical.upper().startswith(("STRUCT", "MAP", "JSON")) or column.physical.endswith("]"):
        return f"to_json({col})::VARCHAR"
    return f"{col}::VARCHAR"


def _cell(column: _Column, value: Any) -> Any:
    if column.kind in ("date", "timestamp"):
        return _iso(value, column.kind)
    return _json_safe(value)


def _iso(text: str | None, kind: str) -> str | None:
    """DuckDB prints timestamps as '2024-01-02 03:04:05'; ISO 8601 puts a 'T' in between."""
    if text is None or kind != "timestamp":
        return text
    return text.replace(" ", "T", 1)


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def _json_safe(value: Any) -> Any:
    """Numbers as int/float (NaN and infinities as None), dates as ISO text, the rest as text."""
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


# --- errors ------------------------------------------------------------------------------------

_CSV_LINE = re.compile(r"CSV Error on Line: (\d+)")
_JSON_LINE = re.compile(r"in line (\d+)")
_COLUMNS = re.compile(r"Expected Number of Columns: (\d+) Found: (\d+)")
_CONVERT = re.compile(r"""Error when converting column "(.*?)"\. Could not convert string "(.*?)" to '(.*?)'""")
_ENGINE_PREFIX = re.compile(r"^[A-Za-z ]*(Error|Exception): ")


def _as_profile_error(exc: duckdb.Error, reader: _Reader) -> ProfileError:
    """A readable ProfileError from DuckDB's message, with the line (and column) when known."""
    message = str(exc)
    if reader.fmt == "csv":
        return _csv_error(message, reader)
    if reader.fmt == "jsonl":
        return _json_error(message, reader.path)
    return ProfileError(f"not a readable Parquet file (corrupt or truncated): {_summary(message, reader.path)}")


def _csv_error(message: str, reader: _Reader) -> ProfileError:
    line = _int(_CSV_LINE.search(message))
    if columns := _COLUMNS.search(message):
        return ProfileError(f"expected {columns.group(1)} columns, found {columns.group(2)}", line=line)
    if "Invalid unicode" in message or "not utf-8 encoded" in message.lower():
        return ProfileError("invalid UTF-8: the file is not UTF-8 encoded, or mixes encodings", line=line)
    if converted := _CONVERT.search(message):
        column, value, target = converted.groups()
        return ProfileError(f"could not read {value!r} as {target}", line=line, column=column)
    if "Error when sniffing file" in message:
        located = _locate_csv_error(reader)
        return located or ProfileError("could not detect the CSV layout (delimiter, quoting and header)")
    return ProfileError(_summary(message, reader.path), line=line)


def _locate_csv_error(reader: _Reader) -> ProfileError | None:
    """DuckDB's sniffer gives up without a line number when a ragged row is among the first ones:
    read the file again with every column as text and no guessing, which stops at the bad line."""
    import csv

    head = _head(reader.path).split(b"\n", 1)[0].decode("utf-8", errors="replace").lstrip("\ufeff").rstrip("\r")
    names = next(csv.reader([head], delimiter=reader.delimiter), [])
    if not names:
        return None
    columns = ", ".join(f"{_quote_literal(f'c{i}')}: 'VARCHAR'" for i in range(len(names)))
    literal = _quote_literal(str(reader.path))
    sql = (
        f"SELECT count(*), {', '.join(f'count(c{i})' for i in range(len(names)))} FROM read_csv({literal}, "  # noqa: S608
        f"auto_detect = false, header = true, delim = {_quote_literal(reader.delimiter)}, quote = '\"', "
        f"escape = '\"', strict_mode = true, null_padding = false, ignore_errors = false, skip = 0, comment = '', "
        f"columns = {{{columns}}})"
    )
    with tempfile.TemporaryDirectory(prefix="causeway-profile-") as spill, _connect(spill) as con:
        try:
            con.execute(sql).fetchall()
        except duckdb.Error as exc:
            message = str(exc)
            if "Error when sniffing file" not in message:
                return _csv_error(message, reader)
    return None


def _json_error(message: str, path: Path) -> ProfileError:
    reported = _int(_JSON_LINE.search(message))
    detail = re.search(r"(?:in line \d+|at byte \d+[^:]*): (.*?)\s*$", message.split("\n", 1)[0])
    reason = (detail.group(1) if detail else _summary(message, path)).rstrip(". ")
    if "Malformed JSON" in message:
        line = _bad_json_line(path, reported) if reported else None
        return ProfileError(f"malformed JSON ({reason})", line=line)
    if "JSON transform error" in message:
        return ProfileError(f"inconsistent values ({reason})", line=reported)
    return ProfileError(_summary(message, path), line=reported)


def _bad_json_line(path: Path, reported: int) -> int:
    """The line that really fails to parse: DuckDB can report the one after it."""
    wanted = {reported - 1, reported} - {0}
    lines: dict[int, bytes] = {}
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if number in wanted:
                lines[number] = raw
            if number >= reported:
                break
    for number in sorted(lines):
        try:
            text = lines[number].decode("utf-8").strip()
            if text:
                json.loads(text)
        except (UnicodeDecodeError, ValueError):
            return number
    return reported


def _summary(message: str, path: Path) -> str:
    """DuckDB's first line without the error class and the server's path."""
    first = _ENGINE_PREFIX.sub("", message.split("\n", 1)[0]).strip()
    for quoted in (f"'{path}'", f'"{path}"', str(path)):
        first = first.replace(f" {quoted}", "").replace(quoted, "")
    return first.rstrip(". ") or "the file could not be read"


def _int(match: re.Match | None) -> int | None:
    return int(match.group(1)) if match else None
