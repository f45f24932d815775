"""The profiler on real small files of each format, and on malformed ones."""

import hashlib
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from apps.catalog.profiling import ProfileError, detect_format, profile_file, sha256_file

ROWS = [
    {"id": 1, "region": "north", "amount": 10.0, "day": "2024-01-01"},
    {"id": 2, "region": "south", "amount": None, "day": "2024-01-02"},
    {"id": 3, "region": "north", "amount": 30.0, "day": "2024-01-03"},
    {"id": 4, "region": None, "amount": 20.0, "day": "2024-01-04"},
]


def write_csv(path):
    lines = ["id,region,amount,day"] + [
        ",".join("" if r[k] is None else str(r[k]) for k in ("id", "region", "amount", "day")) for r in ROWS
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(params=["csv", "parquet", "jsonl"])
def sample_file(request, tmp_path):
    if request.param == "csv":
        return write_csv(tmp_path / "data.csv")
    if request.param == "parquet":
        path = tmp_path / "data.parquet"
        pq.write_table(pa.Table.from_pylist(ROWS), path)
        return path
    path = tmp_path / "data.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in ROWS) + "\n")
    return path


def test_each_format_is_profiled(sample_file):
    profile = profile_file(sample_file)
    assert profile.row_count == 4
    columns = {c.name: c for c in profile.columns}
    assert list(columns) == ["id", "region", "amount", "day"]
    assert columns["id"].type == "integer" and columns["id"].min == 1 and columns["id"].max == 4
    amount = columns["amount"]
    assert amount.type == "float" and amount.null_count == 1 and amount.nullable
    assert amount.mean == pytest.approx(20.0) and amount.min == 10.0 and amount.max == 30.0
    assert amount.quantiles["p5"] <= amount.quantiles["p50"] <= amount.quantiles["p95"]
    assert sum(amount.histogram["counts"]) == 3 and len(amount.histogram["edges"]) == 21
    region = columns["region"]
    assert region.type == "string" and region.null_count == 1
    assert region.top_values[0] == {"value": "north", "count": 2}
    assert len(profile.sample_rows) == 4 and profile.sample_rows[0]["region"] == "north"
    json.dumps(profile.to_dict())  # JSON-safe all the way down


def test_sha256_matches_hashlib(tmp_path):
    path = write_csv(tmp_path / "data.csv")
    digest, size = sha256_file(path, chunk_size=7)
    assert digest == hashlib.sha256(path.read_bytes()).hexdigest() and size == path.stat().st_size


@pytest.mark.parametrize(
    ("name", "fmt"), [("a.csv", "csv"), ("a.TSV", "csv"), ("a.parquet", "parquet"), ("a.ndjson", "jsonl")]
)
def test_formats_are_detected_from_the_extension(name, fmt):
    assert detect_format(name) == fmt


@pytest.mark.parametrize("name", ["a.xlsx", "a", "a.exe"])
def test_unsupported_types_are_refused(name):
    with pytest.raises(ProfileError, match="unsupported"):
        detect_format(name)


def test_an_empty_file_is_refused(tmp_path):
    path = tmp_path / "empty.csv"
    path.write_bytes(b"")
    with pytest.raises(ProfileError, match="empty"):
        profile_file(path)


def test_a_ragged_csv_names_the_line(tmp_path):
    path = tmp_path / "ragged.csv"
    path.write_text("a,b,c\n1,2,3\n4,5,6,7\n")
    with pytest.raises(ProfileError) as error:
        profile_file(path)
    assert error.value.line == 3 and "expected 3 columns, found 4" in str(error.value)


def test_a_ragged_row_far_down_a_csv_names_its_line(tmp_path):
    path = tmp_path / "late.csv"
    lines = ["a,b"] + [f"{i},{i}" for i in range(30000)] + ["1,2,3"]
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ProfileError) as error:
        profile_file(path)
    assert error.value.line == 30002


def test_mixed_encodings_are_reported(tmp_path):
    path = tmp_path / "latin.csv"
    path.write_bytes("a,b\n1,ok\n2,caf\u00e9\n".encode("latin-1"))
    with pytest.raises(ProfileError, match="UTF-8"):
        profile_file(path)


def test_a_truncated_parquet_file_is_reported(tmp_path):
    good = tmp_path / "good.parquet"
    pq.write_table(pa.Table.from_pylist(ROWS), good)
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(ProfileError, match="Parquet") as error:
        profile_file(broken)
    assert str(tmp_path) not in str(error.value), "server paths stay out of user-facing messages"


def test_malformed_json_lines_name_the_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"a": 1}\n{"a": 2}\n{"a": \n')
    with pytest.raises(ProfileError) as error:
        profile_file(path)
    assert error.value.line == 3 and "JSON" in str(error.value)
