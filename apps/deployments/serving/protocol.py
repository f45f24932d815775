"""MLflow's scoring protocol (what `mlflow models serve` answers on /invocations), parsed and
checked against the model's signature without MLflow's own schema machinery, which costs
milliseconds a request.

Bodies: JSON with exactly one of `dataframe_split` ({columns, data, index?}),
`dataframe_records` ([{column: value}]), `instances` (rows: dicts, lists or scalars) or `inputs`
(rows, or {column: [values]}), plus an optional `params`; or `text/csv` with a header row.
Answers: `{"predictions": [...]}`. Errors: MLflow's JSON shape
`{"error_code": "BAD_REQUEST", "message": ...}` with status 400, MLflow's messages where it has
one ("Model is missing inputs ['x']."), naming the field and the expected type otherwise.

Signature rules (as MLflow's pyfunc): missing required columns are refused, extra columns are
ignored, columns are passed in the signature's order; an integer column takes no fractions, a
floating column takes integers, booleans are not numbers, strings are not numbers. Rows given
without names (lists) are matched to the signature's columns by position when the counts agree.
"""

from __future__ import annotations

import io
import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

DF_SPLIT = "dataframe_split"
DF_RECORDS = "dataframe_records"
INSTANCES = "instances"
INPUTS = "inputs"
SUPPORTED_FORMATS = (DF_SPLIT, DF_RECORDS, INSTANCES, INPUTS)
REQUIRED_INPUT_FORMAT = (
    "The input must be a JSON dictionary with exactly one of the input fields "
    "{'dataframe_split', 'dataframe_records', 'instances', 'inputs'}"
)
CONTENT_TYPE_JSON = "application/json"
CONTENT_TYPE_CSV = "text/csv"

# MLflow column types → how a column is checked and converted.
_FLOATS = {"double": np.float64, "float": np.float32}
_INTS = {"long": np.int64, "integer": np.int32}
_TENSOR_DTYPES = {
    "float64": np.float64,
    "float32": np.float32,
    "float": np.float32,
    "double": np.float64,
    "int64": np.int64,
    "int32": np.int32,
    "int8": np.int8,
    "int16": np.int16,
    "uint8": np.uint8,
    "bool": np.bool_,
    "str": object,
    "object": object,
}


class ProtocolError(Exception):
    """A request the scoring protocol refuses; `as_json()` is MLflow's error body."""

    def __init__(self, message: str, *, status: int = 400, error_code: str = "BAD_REQUEST"):
        super().__init__(message)
        self.message = message
        self.status = status
        self.error_code = error_code

    def as_json(self) -> dict[str, str]:
        return {"error_code": self.error_code, "message": self.message}


def bad_input(message: str) -> ProtocolError:
    # MLflow's MlflowInvalidInputException prefixes its messages so.
    return ProtocolError(f"Invalid input. {message}")


# --- Signatures -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    name: str | None
    type: str  # MLflow's: double, float, long, integer, boolean, string, binary, datetime, …
    required: bool = True


@dataclass(frozen=True)
class Signature:
    columns: tuple[Column, ...] = ()
    tensor_dtype: Any = None  # a tensor signature: numpy dtype and shape
    tensor_shape: tuple[int, ...] | None = None

    @property
    def is_tensor(self) -> bool:
        return self.tensor_shape is not None

    @property
    def has_names(self) -> bool:
        return bool(self.columns) and all(column.name for column in self.columns)


def parse_signature(inputs: Any) -> Signature | None:
    """The input part of an MLflow signature (a list of column or tensor specs), or None."""
    if not isinstance(inputs, list) or not inputs or not all(isinstance(spec, dict) for spec in inputs):
        return None
    if inputs[0].get("type") == "tensor":
        spec = inputs[0].get("tensor-spec") or {}
        if len(inputs) != 1:
            return None  # several named tensors: not checked here, the model decides
        shape = spec.get("shape") or [-1]
        dtype = _TENSOR_DTYPES.get(str(spec.get("dtype")))
        return Signature(tensor_dtype=dtype, tensor_shape=tuple(int(size) for size in shape))
    columns = tuple(
        Column(
            name=str(spec["name"]) if spec.get("name") is not None else None,
            type=str(spec.get("type") if not isinstance(spec.get("type"), dict) else "object"),
            required=bool(spec.get("required", True)),
        )
        for spec in inputs
    )
    return Signature(columns=columns)


# --- Parsing a request ------------------------------------------------------------------------------


@dataclass
class Parsed:
    """Named columns ({name: values}) or unnamed rows, before the signature is applied."""

    columns: dict[str, Any] | None = None
    rows: list | None = None


def parse_request(body: bytes, content_type: str, signature: Signature | None) -> pd.DataFrame | np.ndarray:
    """The model input of a scoring request, checked against the signature."""
    mime, charset = _content_type(content_type)
    if charset != "utf-8":
        raise ProtocolError("The scoring server only supports UTF-8", status=415)
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise bad_input(f"Ensure that input is a valid UTF-8 encoded string. Error: '{exc!r}'")
    if mime == CONTENT_TYPE_JSON:
        parsed = parse_json(text)
    elif mime == CONTENT_TYPE_CSV:
        parsed = parse_csv(text, signature)
    else:
        raise ProtocolError(
            "This predictor only supports the following content types: "
            f"Types: ['{CONTENT_TYPE_CSV}', '{CONTENT_TYPE_JSON}']. Got '{content_type}'.",
            status=415,
        )
    return apply_signature(parsed, signature)


def _content_type(header: str) -> tuple[str, str]:
    parts = [part.strip() for part in (header or "").split(";")]
    mime = parts[0].lower() or CONTENT_TYPE_JSON
    charset = "utf-8"
    for part in parts[1:]:
        key, _, value = part.partition("=")
        if key.strip().lower() == "charset":
            charset = value.strip().strip('"').lower()
    return mime, charset


def parse_json(text: str) -> Parsed:
    try:
        payload = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise bad_input(f"Ensure that input is a valid JSON formatted string. Error: '{exc!r}'")
    if isinstance(payload, list):
        raise bad_input(f"{REQUIRED_INPUT_FORMAT}. Received a list.")
    if not isinstance(payload, dict):
        raise bad_input(f"{REQUIRED_INPUT_FORMAT}. Received unexpected input type '{type(payload).__name__}'.")
    keys = [key for key in payload if key in SUPPORTED_FORMATS]
    if len(keys) != 1:
        raise ProtocolError(f"{REQUIRED_INPUT_FORMAT}. Received dictionary with input fields: {list(payload)}.")
    key = keys[0]
    data = payload[key]
    if key == DF_SPLIT:
        return _split(data)
    if key == DF_RECORDS:
        return _records(data, key)
    if key == INPUTS and isinstance(data, dict):
        return _columnar(data)
    if not isinstance(data, list):
        raise bad_input(f"'{key}' must be a list{' or a dictionary of lists' if key == INPUTS else ''}.")
    if data and all(isinstance(row, dict) for row in data):
        return _records(data, key)
    if any(isinstance(row, dict) for row in data):
        raise bad_input(f"'{key}' mixes dictionaries and other values.")
    return Parsed(rows=data)


def _split(data: Any) -> Parsed:
    if not isinstance(data, dict):
        raise bad_input("'dataframe_split' must be a dictionary with 'columns' and 'data'.")
    rows = data.get("data", [])
    if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
        raise bad_input("'dataframe_split.data' must be a list of rows (lists).")
    columns = data.get("columns")
    if columns is None:
        return Parsed(rows=rows)
    if not isinstance(columns, list) or not all(isinstance(name, str) for name in columns):
        raise bad_input("'dataframe_split.columns' must be a list of column names.")
    if len(set(columns)) != len(columns):
        raise bad_input("'dataframe_split.columns' names a column twice.")
    width = len(columns)
    for number, row in enumerate(rows):
        if len(row) != width:
            raise bad_input(f"Row {number} of 'dataframe_split.data' has {len(row)} values for {width} columns.")
    # zip(*rows) transposes in C: rows → columns without a Python loop per value.
    values = list(zip(*rows, strict=True)) if rows else [() for _ in columns]
    return Parsed(columns={name: list(column) for name, column in zip(columns, values, strict=True)})


def _records(data: Any, key: str) -> Parsed:
    if not isinstance(data, list) or not all(isinstance(row, dict) for row in data):
        raise bad_input(f"'{key}' must be a list of dictionaries (one per row).")
    names: dict[str, None] = {}
    for row in data:
        for name in row:
            names.setdefault(name, None)
    return Parsed(columns={name: [row.get(name) for row in data] for name in names})


def _columnar(data: dict) -> Parsed:
    lengths = set()
    columns: dict[str, Any] = {}
    for name, values in data.items():
        if not isinstance(values, list):
            values = [values]  # TF serving: a scalar per input is one row
        lengths.add(len(values))
        columns[str(name)] = values
    if len(lengths) > 1:
        raise bad_input(f"The inputs of 'inputs' have different lengths: {sorted(lengths)}.")
    return Parsed(columns=columns)


def parse_csv(text: str, signature: Signature | None) -> Parsed:
    dtypes = None
    if signature is not None and signature.has_names:
        # Read string columns as strings ("007" stays "007"), as MLflow does with the schema.
        dtypes = {column.name: str for column in signature.columns if column.type == "string"}
    try:
        frame = pd.read_csv(io.StringIO(text), dtype=dtypes)
    except (ValueError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeError) as exc:
        raise ProtocolError(
            "Failed to parse input as a Pandas DataFrame. Ensure that the input is a valid "
            f"CSV-formatted Pandas DataFrame produced using the `pandas.DataFrame.to_csv()` method. Error: '{exc}'"
        )
    if frame.columns.duplicated().any():
        raise bad_input("The CSV header names a column twice.")
    return Parsed(columns={str(name): frame[name].to_numpy() for name in frame.columns})


# --- Applying the signature ---------------------------------------------------------------------------


def apply_signature(parsed: Parsed, signature: Signature | None) -> pd.DataFrame | np.ndarray:
    if signature is None:
        return _unchecked(parsed)
    if signature.is_tensor:
        return _tensor(parsed, signature)
    columns = parsed.columns
    if columns is None:
        columns = _rows_to_columns(parsed.rows or [], signature)
    if not signature.has_names:
        frame = pd.DataFrame(columns)
        if frame.shape[1] < len(signature.columns):
            raise ProtocolError(
                f"Model inference is missing inputs. The model signature declares {len(signature.columns)} inputs "
                f"but the provided value only has {frame.shape[1]} inputs."
            )
        return frame
    names = [column.name for column in signature.columns]
    missing = [column.name for column in signature.columns if column.required and column.name not in columns]
    if missing:
        extra = [name for name in columns if name not in names]
        message = f"Model is missing inputs {missing}."
        if extra:
            message += f" Note that there were extra inputs: {extra}."
        raise ProtocolError(message)
    n_rows = len(next(iter(columns.values()))) if columns else 0
    # Extra columns are ignored and the rest passed in the signature's order, as MLflow does.
    converted = {
        column.name: (
            coerce(column.name, columns[column.name], column.type)
            if column.name in columns
            else np.full(n_rows, None, dtype=object)
        )
        for column in signature.columns
    }
    return pd.DataFrame(converted, columns=names, copy=False)


def _rows_to_columns(rows: list, signature: Signature) -> dict[str, Any]:
    width = len(signature.columns)
    names = [column.name or str(i) for i, column in enumerate(signature.columns)]
    if width == 1 and all(not isinstance(row, list) for row in rows):
        return {names[0]: rows}
    if not all(isinstance(row, list) for row in rows):
        raise bad_input(f"Rows without column names must be lists of {width} values (the signature's columns).")
    for number, row in enumerate(rows):
        if len(row) != width:
            raise ProtocolError(
                f"Row {number} has {len(row)} values but the model signature has {width} columns "
                f"({', '.join(names)}); send named columns (dataframe_split or dataframe_records) "
                "or one value per column in the signature's order."
            )
    values = list(zip(*rows, strict=True)) if rows else [() for _ in names]
    return {name: list(column) for name, column in zip(names, values, strict=True)}


def _unchecked(parsed: Parsed) -> pd.DataFrame:
    if parsed.columns is not None:
        return pd.DataFrame(parsed.columns)
    try:
        return pd.DataFrame(parsed.rows)
    except ValueError as exc:
        raise bad_input(f"Could not make a table of the rows: {exc}")


def _tensor(parsed: Parsed, signature: Signature) -> np.ndarray:
    data = parsed.rows if parsed.columns is None else list(zip(*parsed.columns.values(), strict=True))
    try:
        array = np.asarray(data, dtype=signature.tensor_dtype)
    except (ValueError, TypeError) as exc:
        expected = np.dtype(signature.tensor_dtype).name if signature.tensor_dtype is not None else "numbers"
        raise bad_input(f"The input is not a tensor of {expected}: {exc}")
    shape = signature.tensor_shape or ()
    if array.ndim != len(shape) or any(
        want != -1 and want != got for want, got in zip(shape, array.shape, strict=False)
    ):
        raise ProtocolError(f"The input has shape {list(array.shape)}; the model signature expects {list(shape)}.")
    return array


def coerce(name: str, values: Any, kind: str) -> np.ndarray:
    """One column as the numpy array the signature's type asks for, or a ProtocolError that
    names the column and the expected type. JSON columns are Python lists, checked by the set
    of their values' types (one pass in C); CSV columns are numpy arrays, checked by dtype."""
    if isinstance(values, np.ndarray):
        return _coerce_array(name, values, kind)
    types = set(map(type, values))
    if kind in _FLOATS:
        try:
            if types <= _NUMBER_TYPES:
                return np.array(values, dtype=_FLOATS[kind])
            if types <= _NUMBER_TYPES | {type(None)}:
                return np.array([np.nan if v is None else v for v in values], dtype=_FLOATS[kind])
        except OverflowError:
            raise _wrong_type(name, kind, "a number out of range")
        raise _wrong_type(name, kind, _type_name(types - _NUMBER_TYPES - {type(None)}))
    if kind in _INTS:
        if types <= {int}:
            try:
                return np.array(values, dtype=_INTS[kind])
            except OverflowError:
                raise _wrong_type(name, kind, f"a value out of the {np.dtype(_INTS[kind]).name} range")
        hint = _MISSING_INT_HINT if type(None) in types else ""
        raise _wrong_type(name, kind, _type_name(types - {int}), hint)
    if kind == "boolean":
        if types <= {bool}:
            return np.array(values, dtype=bool)
        raise _wrong_type(name, kind, _type_name(types - {bool}))
    if kind == "string":
        if types <= {str, type(None)}:
            return _object_column(values)
        raise _wrong_type(name, kind, _type_name(types - {str, type(None)}))
    if kind == "datetime":
        if not types <= {str, int, type(None)}:
            raise _wrong_type(name, kind, _type_name(types - {str, int, type(None)}))
        return _datetimes(name, values)
    # binary, array, object, map, Any: passed to the model as they are.
    return _object_column(values)


def _coerce_array(name: str, array: np.ndarray, kind: str) -> np.ndarray:
    dtype_kind = array.dtype.kind
    if kind in _FLOATS:
        if dtype_kind in "fiu":
            return array.astype(_FLOATS[kind], copy=False)
        if dtype_kind == "O":
            return coerce(name, array.tolist(), kind)
        raise _wrong_type(name, kind, _KIND_NAMES.get(dtype_kind, str(array.dtype)))
    if kind in _INTS:
        if dtype_kind in "iu":
            return coerce(name, array.tolist(), kind) if kind == "integer" else array.astype(np.int64, copy=False)
        if dtype_kind == "O":
            return coerce(name, array.tolist(), kind)
        hint = _MISSING_INT_HINT if dtype_kind == "f" and np.isnan(array).any() else ""
        raise _wrong_type(name, kind, _KIND_NAMES.get(dtype_kind, str(array.dtype)), hint)
    if kind == "boolean":
        if dtype_kind == "b":
            return array
        raise _wrong_type(name, kind, _KIND_NAMES.get(dtype_kind, str(array.dtype)))
    if kind == "string":
        if dtype_kind in "UO":
            # CSV reads empty cells of a string column as NaN: those are missing values.
            cleaned = [None if _is_nan(v) else v for v in array.tolist()]
            return coerce(name, cleaned, kind)
        raise _wrong_type(name, kind, _KIND_NAMES.get(dtype_kind, str(array.dtype)))
    if kind == "datetime":
        return _datetimes(name, array)
    return array.astype(object, copy=False)


def _datetimes(name: str, values: Any) -> np.ndarray:
    try:
        return pd.to_datetime(pd.Series(values)).to_numpy()
    except (ValueError, TypeError, OverflowError):
        raise _wrong_type(name, "datetime", "a value that is not a date or time")


def _object_column(values: Any) -> np.ndarray:
    column = np.empty(len(values), dtype=object)
    if any(isinstance(v, list | tuple) for v in values):
        # Assigned one by one: numpy would read nested lists as more dimensions.
        for i, value in enumerate(values):
            column[i] = value
    else:
        column[:] = values
    return column


def _is_nan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)


_NUMBER_TYPES = frozenset({int, float})
_MISSING_INT_HINT = " Integer columns cannot hold missing values; declare the column as double if it may have them."
_KIND_NAMES = {
    "U": "string",
    "S": "string",
    "b": "boolean",
    "f": "float",
    "i": "integer",
    "u": "integer",
    "O": "object",
}
_TYPE_NAMES = {bool: "boolean", int: "integer", float: "float", str: "string", list: "list", dict: "object"}


def _type_name(types: set[type]) -> str:
    names = sorted(_TYPE_NAMES.get(t, "null" if t is type(None) else t.__name__) for t in types)
    return " and ".join(names) or "another type"


def _wrong_type(name: str, kind: str, got: str, hint: str = "") -> ProtocolError:
    return ProtocolError(f"Incompatible input types for column {name}. Expected {kind} but got {got}.{hint}")


# --- Answers -----------------------------------------------------------------------------------------


def predictions_json(raw: Any) -> bytes:
    """`{"predictions": …}` as MLflow writes it (frames as records, arrays as lists)."""
    return json.dumps({"predictions": _jsonable(raw)}, default=_default, separators=(",", ":")).encode()


def _jsonable(raw: Any) -> Any:
    if isinstance(raw, pd.DataFrame):
        return raw.to_dict(orient="records")
    if isinstance(raw, pd.Series | np.ndarray):
        return raw.tolist()
    if isinstance(raw, dict):
        return {key: _jsonable(value) for key, value in raw.items()}
    if isinstance(raw, list | tuple):
        return [_jsonable(value) for value in raw]
    return raw


def _default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


def error_json(error_code: str, message: str) -> bytes:
    return json.dumps({"error_code": error_code, "message": message}).encode()
