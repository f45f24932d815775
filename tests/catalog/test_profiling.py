"""The streaming profiler on small files of every format built here, and on every kind of
malformed file: each must end in a ProfileError with a readable reason (and line, when known)."""

import csv
import datetime as dt
import decimal
import hashlib
import json
import math

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from apps.catalog.profiling import (
    SUPPORTED_FORMATS,
    ColumnProfile,
    DatasetProfile,
    ProfileError,
    detect_format,
    profile_file,
    sha256_file,
)

REGIONS = ["north", "south", "east", "north", "north", "west", "south"]  # north 3, south 2, east 1, west 1
ROWS = 140  # 20 rounds of REGIONS


def _amount(i):
    return None if i % 10 == 0 else round(i * 1.5, 2)


def write_csv(path, rows=ROWS, delimiter=","):
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, delimiter=delimiter)
        writer.writerow(["id", "amount", "region", "day", "active", "seen_at", "note"])
        for i in range(rows):
            writer.writerow(
                [
                    i,
                    "" if _amount(i) is None else _amount(i),
                    REGIONS[i % len(REGIONS)],
                    (dt.date(2024, 1, 1) + dt.timedelta(days=i)).isoformat(),
                    "true" if i % 4 else "false",
                    f"2024-01-01 {i % 24:02d}:30:00",
                    "" if i % 3 else f"note, {i}",  # a delimiter inside a quoted field
                ]
            )
    return path


def non_null_amounts(rows=ROWS):
    return [a for a in (_amount(i) for i in range(rows)) if a is not None]


def column(profile, name) -> ColumnProfile:
    return next(c for c in profile.columns if c.name == name)


def assert_json_safe(profile: DatasetProfile):
    # allow_nan=False fails on NaN/inf; default=None fails on Decimal, datetime, numpy...
    json.dumps(profile.to_dict(), allow_nan=False)


def assert_histogram_and_quantiles(col: ColumnProfile, non_null: int):
    assert sum(col.histogram["counts"]) == non_null
    assert len(col.histogram["edges"]) == len(col.histogram["counts"]) + 1
    assert col.histogram["edges"][0] == col.min and col.histogram["edges"][-1] == pytest.approx(col.max)
    q = col.quantiles
    assert list(q) == ["p5", "p25", "p50", "p75", "p95"]
    assert col.min <= q["p5"] <= q["p25"] <= q["p50"] <= q["p75"] <= q["p95"] <= col.max


# --- formats and hashing ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, fmt",
    [
        ("a.csv", "csv"),
        ("A.TSV", "csv"),
        ("a.parquet", "parquet"),
        ("a.pq", "parquet"),
        ("a.jsonl", "jsonl"),
        ("a.ndjson", "jsonl"),
        ("a.json", "jsonl"),
    ],
)
def test_the_format_comes_from_the_extension(name, fmt):
    assert detect_format(name) == fmt
    assert fmt in SUPPORTED_FORMATS


@pytest.mark.parametrize("name", ["a.xlsx", "a", "a.csv.gz"])
def test_other_extensions_are_unsupported(name):
    with pytest.raises(ProfileError, match="unsupported file type"):
        detect_format(name)


def test_sha256_streams_and_matches_hashlib(tmp_path):
    path = tmp_path / "blob.bin"
    data = bytes(range(256)) * 5000  # 1.28 MB, more than one chunk
    path.write_bytes(data)
    seen = []
    digest, size = sha256_file(path, chunk_size=64 * 1024, progress=lambda pct, msg: seen.append(pct))
    assert (digest, size) == (hashlib.sha256(data).hexdigest(), len(data))
    assert seen and seen[-1] == 100 and seen == sorted(seen)


# --- CSV ----------------------------------------------------------------------------------------


def test_a_csv_profile(tmp_path):
    progress = []
    profile = profile_file(write_csv(tmp_path / "d.csv"), progress=lambda pct, msg: progress.append((pct, msg)))
    assert profile.format == "csv" and profile.row_count == ROWS
    assert [c.name for c in profile.columns] == ["id", "amount", "region", "day", "active", "seen_at", "note"]
    assert {c.name: c.type for c in profile.columns} == {
        "id": "integer",
        "amount": "float",
        "region": "string",
        "day": "date",
        "active": "boolean",
        "seen_at": "timestamp",
        "note": "string",
    }

    amount, amounts = column(profile, "amount"), non_null_amounts()
    assert amount.physical_type == "DOUBLE"
    assert (amount.null_count, amount.nullable) == (ROWS // 10, True)
    assert amount.null_fraction == pytest.approx(0.1)
    assert (amount.min, amount.max) == (min(amounts), max(amounts))
    assert amount.mean == pytest.approx(sum(amounts) / len(amounts))
    assert amount.std > 0 and amount.approx_distinct
    assert amount.distinct_count == pytest.approx(len(amounts), rel=0.1)
    assert_histogram_and_quantiles(amount, len(amounts))
    assert len(amount.histogram["counts"]) == 20 and amount.top_values == []

    region = column(profile, "region")
    assert region.top_values == [
        {"value": "north", "count": 60},
        {"value": "south", "count": 40},
        {"value": "east", "count": 20},
        {"value": "west", "count": 20},
    ]
    assert (region.min, region.max, region.mean, region.quantiles, region.histogram) == (
        "east",
        "west",
        None,
        None,
        None,
    )

    day = column(profile, "day")
    assert (day.min, day.max) == ("2024-01-01", (dt.date(2024, 1, 1) + dt.timedelta(days=ROWS - 1)).isoformat())
    assert column(profile, "seen_at").min == "2024-01-01T00:30:00"
    active = column(profile, "active")
    assert active.top_values == [{"value": "true", "count": 105}, {"value": "false", "count": 35}]
    assert (active.min, active.max) == (False, True)
    assert column(profile, "note").null_count == ROWS - ROWS // 3 - 1

    assert progress[-1] == (100, "profile complete")
    assert [pct for pct, _ in progress] == sorted(pct for pct, _ in progress)
    assert_json_safe(profile)


def test_sample_rows_are_the_first_rows_in_json_types(tmp_path):
    path = write_csv(tmp_path / "d.csv")
    profile = profile_file(path)
    assert len(profile.sample_rows) == 20
    assert profile.sample_rows[0] == {
        "id": 0,
        "amount": None,
        "region": "north",
        "day": "2024-01-01",
        "active": False,
        "seen_at": "2024-01-01T00:30:00",
        "note": "note, 0",
    }
    assert [row["id"] for row in profile.sample_rows] == list(range(20))
    assert [row["id"] for row in profile_file(path, sample_size=3).sample_rows] == [0, 1, 2]


def test_tab_separated_files_even_named_csv(tmp_path):
    for name in ("d.tsv", "tabs.csv"):
        profile = profile_file(write_csv(tmp_path / name, rows=14, delimiter="\t"), "csv")
        assert profile.row_count == 14 and len(profile.columns) == 7
        assert column(profile, "region").top_values[0] == {"value": "north", "count": 6}


def test_the_job_fixture_csv(tmp_path):
    path = tmp_path / "balances.csv"
    path.write_bytes(b"customer_id,region,balance\n1,north,10.5\n2,south,\n3,north,30.25\n4,east,12\n")
    profile = profile_file(path)
    assert profile.row_count == 4
    assert column(profile, "balance").null_count == 1
    assert column(profile, "region").top_values[0] == {"value": "north", "count": 2}


def test_a_header_only_csv_has_columns_and_no_rows(tmp_path):
    path = tmp_path / "h.csv"
    path.write_text("a,b\n")
    profile = profile_file(path)
    assert profile.row_count == 0 and [c.name for c in profile.columns] == ["a", "b"]
    assert profile.sample_rows == [] and column(profile, "a").null_fraction == 0.0
    assert_json_safe(profile)


def test_a_type_contradicted_after_the_sniffed_rows_becomes_text(tmp_path):
    path = tmp_path / "late.csv"
    lines = ["code,n"] + [f"{i},{i}" for i in range(25_000)] + ["X-1,5"]
    path.write_text("\n".join(lines) + "\n")
    profile = profile_file(path)
    assert profile.row_count == 25_001
    assert column(profile, "code").type == "string" and column(profile, "n").type == "integer"


def test_lines_starting_with_a_hash_are_data(tmp_path):
    path = tmp_path / "hash.csv"
    path.write_text("tag,n\n#a,1\n#b,2\nc,3\n")
    assert profile_file(path).row_count == 3


def test_histograms_of_constant_and_small_integer_columns(tmp_path):
    path = tmp_path / "small.csv"
    path.write_text("k,score\n" + "".join(f"7,{i % 5}\n" for i in range(50)))
    profile = profile_file(path)
    assert column(profile, "k").histogram == {"edges": [7.0, 7.0], "counts": [50]}
    assert column(profile, "score").histogram == {"edges": [0.0, 1.0, 2.0, 3.0, 4.0, 5.0], "counts": [10] * 5}


# --- Parquet ------------------------------------------------------------------------------------


def write_parquet(path, rows=ROWS):
    amounts = [_amount(i) for i in range(rows)]
    table = pa.table(
        {
            "id": pa.array(range(rows), pa.int32()),
            "amount": pa.array(amounts, pa.float64()),
            "price": pa.array([decimal.Decimal(f"{i}.25") for i in range(rows)], pa.decimal128(10, 2)),
            "region": pa.array([REGIONS[i % len(REGIONS)] for i in range(rows)]),
            "at": pa.array(
                [dt.datetime(2024, 1, 1, tzinfo=dt.UTC) + dt.timedelta(hours=i) for i in range(rows)],
                pa.timestamp("us", tz="UTC"),
            ),
            "tags": pa.array([["a", "b"][: i % 3] for i in range(rows)], pa.list_(pa.string())),
        }
    )
    pq.write_table(table, path, row_group_size=50)
    return path


def test_a_parquet_profile(tmp_path):
    profile = profile_file(write_parquet(tmp_path / "d.parquet"))
    assert profile.format == "parquet" and profile.row_count == ROWS
    types = {c.name: (c.type, c.physical_type) for c in profile.columns}
    assert types["id"] == ("integer", "INTEGER")
    assert types["price"] == ("float", "DECIMAL(10,2)")
    assert types["at"][0] == "timestamp" and types["tags"][0] == "other"

    amount, amounts = column(profile, "amount"), non_null_amounts()
    assert (amount.null_count, amount.min, amount.max) == (ROWS // 10, min(amounts), max(amounts))
    assert amount.mean == pytest.approx(sum(amounts) / len(amounts))
    assert_histogram_and_quantiles(amount, len(amounts))

    price = column(profile, "price")
    assert (price.min, price.max) == (0.25, ROWS - 1 + 0.25)
    assert isinstance(price.mean, float)
    assert column(profile, "region").top_values[0] == {"value": "north", "count": 60}
    assert column(profile, "at").min == "2024-01-01T00:00:00+00"
    assert profile.sample_rows[2] == {
        "id": 2,
        "amount": 3.0,
        "price": 2.25,
        "region": "east",
        "at": "2024-01-01T02:00:00+00",
        "tags": '["a","b"]',
    }
    assert_json_safe(profile)


def test_nan_and_infinity_become_none(tmp_path):
    path = tmp_path / "f.parquet"
    pq.write_table(pa.table({"x": [1.0, 2.0, math.nan, math.inf, None, 3.0]}), path)
    x = profile_file(path).columns[0]
    assert x.max is None and x.mean is None and x.min == 1.0
    assert x.null_count == 1 and sum(x.histogram["counts"]) == 3  # the finite values only
    assert profile_file(path).sample_rows[2] == {"x": None}
    assert_json_safe(profile_file(path))


# --- JSON lines ---------------------------------------------------------------------------------


def test_a_json_lines_profile(tmp_path):
    path = tmp_path / "d.jsonl"
    with open(path, "w") as handle:
        for i in range(ROWS):
            record = {"id": i, "amount": _amount(i), "region": REGIONS[i % len(REGIONS)], "ok": i % 4 != 0}
            record["meta"] = {"n": i}
            handle.write(json.dumps(record) + "\n")
    profile = profile_file(path)
    assert profile.format == "jsonl" and profile.row_count == ROWS
    amount, amounts = column(profile, "amount"), non_null_amounts()
    assert (amount.null_count, amount.min, amount.max) == (ROWS // 10, min(amounts), max(amounts))
    assert amount.mean == pytest.approx(sum(amounts) / len(amounts))
    assert_histogram_and_quantiles(amount, len(amounts))
    assert column(profile, "region").top_values[:2] == [
        {"value": "north", "count": 60},
        {"value": "south", "count": 40},
    ]
    assert column(profile, "ok").top_values == [{"value": "true", "count": 105}, {"value": "false", "count": 35}]
    assert column(profile, "meta").type == "other"
    assert profile.sample_rows[1] == {"id": 1, "amount": 1.5, "region": "south", "ok": True, "meta": '{"n":1}'}
    assert_json_safe(profile)


def test_a_json_file_holding_an_array(tmp_path):
    path = tmp_path / "d.json"
    path.write_text(json.dumps([{"a": 1, "b": "x"}, {"a": 2, "b": None}]))
    profile = profile_file(path)
    assert profile.row_count == 2 and column(profile, "b").null_count == 1


# --- malformed files ----------------------------------------------------------------------------


def profile_error(path, **kwargs) -> ProfileError:
    with pytest.raises(ProfileError) as caught:
        profile_file(path, **kwargs)
    return caught.value


def test_an_empty_file(tmp_path):
    path = tmp_path / "e.csv"
    path.write_bytes(b"")
    assert str(profile_error(path)) == "the file is empty"


def test_a_missing_file_and_an_unsupported_one(tmp_path):
    assert str(profile_error(tmp_path / "nope.csv")) == "the file does not exist"
    other = tmp_path / "d.xlsx"
    other.write_bytes(b"PK")
    assert "unsupported file type '.xlsx'" in str(profile_error(other))


@pytest.mark.parametrize(
    "content, message",
    [
        ("a,b,c\n1,x,2\n2,y,3,4\n3,z,5\n", "line 3: expected 3 columns, found 4"),
        ("a,b,c\n1,x,2\n2,y\n3,z,5\n", "line 3: expected 3 columns, found 2"),
        ("customer_id,region,balance\n1,north,10.5\n2,south,3,extra\n", "line 3: expected 3 columns, found 4"),
    ],
)
def test_a_ragged_csv_names_the_line(tmp_path, content, message):
    path = tmp_path / "r.csv"
    path.write_text(content)
    error = profile_error(path)
    assert str(error) == message and error.line == 3 and error.reason == message.split(": ", 1)[1]


def test_a_ragged_row_after_the_sniffed_rows(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("a,b\n" + "1,x\n" * 25_000 + "2,y,z\n")
    assert str(profile_error(path)) == "line 25002: expected 2 columns, found 3"


@pytest.mark.parametrize(
    "content, line",
    [
        (b"a,b\n1,caf\xe9\n2,ok\n", 2),  # Latin-1
        (b"a,b\n1,ok\n2,caf\xc3\xa9\n3,caf\xe9\n", 4),  # UTF-8, then a Latin-1 line
    ],
)
def test_a_csv_that_is_not_utf8(tmp_path, content, line):
    path = tmp_path / "enc.csv"
    path.write_bytes(content)
    error = profile_error(path)
    assert error.line == line and "UTF-8" in error.reason
    assert str(error).startswith(f"line {line}: invalid UTF-8")


def parquet_bytes(tmp_path):
    path = write_parquet(tmp_path / "ok.parquet", rows=2000)
    return path.read_bytes()


def test_a_truncated_parquet_file(tmp_path):
    path = tmp_path / "t.parquet"
    data = parquet_bytes(tmp_path)
    path.write_bytes(data[: len(data) // 2])
    message = "not a readable Parquet file (corrupt or truncated): No magic bytes found at end of file"
    assert str(profile_error(path)) == message


def test_a_corrupt_parquet_file(tmp_path):
    data = bytearray(parquet_bytes(tmp_path))
    footer = int.from_bytes(data[-8:-4], "little")
    start, end = 4, len(data) - 8 - footer  # the column chunks, between the magic and the footer
    data[start + (end - start) // 4 : start + 3 * (end - start) // 4] = b"\x55" * ((end - start) // 2)
    path = tmp_path / "c.parquet"
    path.write_bytes(bytes(data))
    error = profile_error(path)
    assert str(error).startswith("not a readable Parquet file (corrupt or truncated): ")
    assert str(tmp_path) not in str(error)


def test_a_file_that_is_not_parquet(tmp_path):
    path = tmp_path / "n.parquet"
    path.write_text("id,name\n1,a\n")
    assert str(profile_error(path)).startswith("not a readable Parquet file")


@pytest.mark.parametrize(
    "content, message",
    [
        (b'{"a": 1}\n{"a": 2\n{"a": 3}\n', "line 2: malformed JSON"),
        (b'{"a": 1}\nnot json\n{"a": 3}\n', "line 2: malformed JSON"),
        (b'{"a": "x"}\n{"a": "caf\xe9"}\n', "line 2: malformed JSON (invalid UTF-8"),
        (b'{"a": 1}\n' * 30 + b'{"a": 1, "b": \n', "line 31: malformed JSON"),
    ],
)
def test_malformed_json_lines_name_the_line(tmp_path, content, message):
    path = tmp_path / "bad.jsonl"
    path.write_bytes(content)
    assert str(profile_error(path)).startswith(message)


def test_engine_errors_never_escape(tmp_path):
    import duckdb

    path = tmp_path / "bad.jsonl"
    path.write_bytes(b"[1, 2")
    error = profile_error(path)
    assert not isinstance(error, duckdb.Error) and isinstance(error.__cause__, duckdb.Error)
    assert str(tmp_path) not in str(error)


def test_a_wide_file_stays_within_the_memory_limit(tmp_path):
    # One histogram() state per column once took megabytes: 150 columns ran out of memory.
    path = tmp_path / "wide.csv"
    header = [f"n{i}" for i in range(150)] + [f"s{i}" for i in range(50)]
    rows = [[r * i for i in range(150)] + [f"v{(r + i) % 4}" for i in range(50)] for r in range(60)]
    with open(path, "w", newline="") as handle:
        csv.writer(handle).writerows([header, *rows])
    profile = profile_file(path)
    assert len(profile.columns) == 200 and profile.row_count == 60
    assert all(sum(c.histogram["counts"]) == 60 for c in profile.columns[:150])
    assert all(sum(t["count"] for t in c.top_values) == 60 for c in profile.columns[150:])


def test_an_error_raised_by_the_progress_callback_propagates(tmp_path):
    def cancel(percent, message):
        if percent >= 15:
            raise RuntimeError("cancelled")

    with pytest.raises(RuntimeError, match="cancelled"):
        profile_file(write_csv(tmp_path / "d.csv"), progress=cancel)


def test_a_json_type_contradicted_after_the_sniffed_records(tmp_path):
    path = tmp_path / "late.jsonl"
    path.write_text('{"a": 1, "b": "x"}\n' * 25_000 + '{"a": "text", "b": "y"}\n')
    profile = profile_file(path)
    assert profile.row_count == 25_001 and column(profile, "b").top_values[0] == {"value": "x", "count": 25_000}
