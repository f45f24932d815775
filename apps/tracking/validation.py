"""MLflow's rules for names, values and batch sizes (mlflow/utils/validation.py), so a request
MLflow's server refuses is refused here with the same error code and a message as clear."""

from __future__ import annotations

import json
import math
import posixpath
import re
from typing import Any

from apps.tracking.errors import InvalidParameter

MAX_PARAMS_TAGS_PER_BATCH = 100
MAX_METRICS_PER_BATCH = 1000
MAX_ENTITIES_PER_BATCH = 1000
MAX_PARAM_VAL_LENGTH = 6000
MAX_TAG_VAL_LENGTH = 8000
MAX_EXPERIMENT_NAME_LENGTH = 500
MAX_EXPERIMENT_TAG_VAL_LENGTH = 20000
MAX_ENTITY_KEY_LENGTH = 250
MAX_DATASET_NAME_SIZE = 500
MAX_DATASET_DIGEST_SIZE = 36
MAX_DATASET_SCHEMA_SIZE = 1048575
MAX_DATASET_SOURCE_SIZE = 65535
MAX_DATASET_PROFILE_SIZE = 16777215
MAX_INPUT_TAG_KEY_SIZE = 255
MAX_INPUT_TAG_VALUE_SIZE = 500
MAX_RESULTS_SEARCH_RUNS = 50000
MAX_RESULTS_SEARCH_EXPERIMENTS = 50000
MAX_RESULTS_METRIC_HISTORY = 25000

_NAME_CHARACTERS = re.compile(r"^[/\w.\- :]*$")
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def invalid_value(path: str, value: Any, message: str = "") -> InvalidParameter:
    shown = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    suffix = f": {message}" if message else "."
    return InvalidParameter(f"Invalid value {shown} for parameter '{path}' supplied{suffix}")


def missing(path: str) -> InvalidParameter:
    return InvalidParameter(f"Missing value for required parameter '{path}'.")


def entity_key(key: Any, path: str, kind: str) -> str:
    """Metric, param and tag keys: MLflow's characters, no path tricks, at most 250 chars."""
    if key is None or key == "":
        raise missing(path)
    if not isinstance(key, str):
        raise invalid_value(path, key, f"{kind} name must be a string.")
    if not _NAME_CHARACTERS.match(key):
        raise invalid_value(
            path,
            key,
            "Names may only contain alphanumerics, underscores (_), dashes (-), periods (.), "
            "spaces ( ), colon(:) and slashes (/).",
        )
    normalised = posixpath.normpath(key)
    if normalised != key or normalised == "." or normalised.startswith("..") or normalised.startswith("/"):
        raise invalid_value(
            path,
            key,
            "Names may be treated as files in certain cases, and must not resolve to other names when "
            f"treated as such. This name would resolve to {normalised!r}",
        )
    if len(key) > MAX_ENTITY_KEY_LENGTH:
        raise InvalidParameter(f"{kind} name '{key[:40]}…' had length {len(key)}, which exceeds length limit of 250")
    return key


def string_value(value: Any, path: str, limit: int, kind: str, *, required: bool = True) -> str:
    if value is None:
        if required:
            raise missing(path)
        return ""
    if isinstance(value, int | float):  # bool is an int too
        value = str(value)
    if not isinstance(value, str):
        raise invalid_value(path, value, f"{kind} value must be a string.")
    if len(value) > limit:
        raise InvalidParameter(
            f"{kind} value '{value[:40]}…' had length {len(value)}, which exceeds length limit of {limit}"
        )
    return value


def metric_value(value: Any, path: str) -> float:
    """A double, including NaN and ±Infinity as protobuf's JSON writes them ("NaN", "Infinity")."""
    if isinstance(value, bool) or value is None:
        raise missing(path) if value is None else invalid_value(path, value, "Please specify value as a valid double.")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)  # accepts "NaN", "Infinity", "-Infinity", "1e3"
        except ValueError:
            pass
    raise invalid_value(path, value, "Please specify value as a valid double (64-bit floating point).")


def int64(value: Any, path: str, *, default: int | None = None, minimum: int | None = None) -> int:
    """An int64 field: protobuf's JSON sends them as numbers or as strings."""
    if value is None or value == "":
        if default is None:
            raise missing(path)
        return default
    if isinstance(value, bool):
        raise invalid_value(path, value, "must be an integer.")
    if isinstance(value, float):
        if not value.is_integer():
            raise invalid_value(path, value, "must be an integer.")
        value = int(value)
    if isinstance(value, str):
        try:
            value = int(value.strip())
        except ValueError:
            raise invalid_value(path, value, "must be an integer.")
    if not isinstance(value, int) or not (_INT64_MIN <= value <= _INT64_MAX):
        raise invalid_value(path, value, "must be a 64-bit integer.")
    if minimum is not None and value < minimum:
        raise invalid_value(path, value, f"must be at least {minimum}.")
    return value


def is_nan(value: float) -> bool:
    return math.isnan(value)


def experiment_name(name: Any) -> str:
    if name is None or (isinstance(name, str) and not name.strip()):
        raise InvalidParameter("Invalid experiment name: ''. Experiment name must be a non-empty string.")
    if not isinstance(name, str):
        raise InvalidParameter(f"Invalid experiment name: {name!r}. Expected a string.")
    if len(name) > MAX_EXPERIMENT_NAME_LENGTH:
        raise InvalidParameter(f"Experiment name exceeds the maximum length of {MAX_EXPERIMENT_NAME_LENGTH} characters")
    return name


def max_results(value: Any, path: str, *, default: int, limit: int) -> int:
    result = int64(value, path, default=default)
    if result < 1 or result > limit:
        raise invalid_value(
            path,
            result,
            f"It must be at most {limit}, but got value {result}" if result > 0 else "It must be a positive integer.",
        )
    return result
