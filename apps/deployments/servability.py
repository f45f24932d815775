"""Whether a model version can be served, checked by the deploy job before an endpoint switches.

When the serving app's loader exists (apps/deployments/serving/loader.py) the version is really
loaded with it; otherwise the MLmodel file must exist, name a flavor Causeway can serve, and —
unless the environment allows pickles — not load by unpickling (unpickling runs code).
"""

from __future__ import annotations

import importlib
import inspect
import posixpath
from typing import Any

import yaml

from apps.tracking import artifacts

MLMODEL_MAX_BYTES = 1024 * 1024
SUPPORTED_FLAVORS = ("python_function", "sklearn", "xgboost", "lightgbm", "onnx")
PICKLE_FORMATS = ("pickle", "cloudpickle")


class NotServable(Exception):
    """The version cannot be served; the message says why, in words for the requester."""


def validate(version, *, allow_pickle: bool) -> dict[str, Any]:
    """Raise NotServable, or return what was checked (stored as the deploy job's evidence)."""
    loader = _serving_loader()
    if loader is not None:
        return _validate_with_loader(loader, version, allow_pickle=allow_pickle)
    return validate_mlmodel(version, allow_pickle=allow_pickle)


def validate_mlmodel(version, *, allow_pickle: bool) -> dict[str, Any]:
    document = read_mlmodel(version.storage_location)
    flavors = document.get("flavors")
    if not isinstance(flavors, dict) or not flavors:
        raise NotServable("The MLmodel file names no flavor.")
    supported = [name for name in flavors if name in SUPPORTED_FLAVORS]
    if not supported:
        raise NotServable(
            f"No servable flavor: the model has {', '.join(sorted(flavors))}; "
            f"Causeway serves {', '.join(SUPPORTED_FLAVORS)}."
        )
    safe = [name for name in supported if not loads_by_unpickling(name, flavors[name] or {})]
    if not allow_pickle and not safe:
        raise NotServable(
            f"The model loads by unpickling ({', '.join(supported)}), which this environment does not allow: "
            "log it in a non-pickle format (e.g. ONNX, or skops) or ask an admin to allow pickles here."
        )
    return {"validated_by": "mlmodel", "flavors": sorted(flavors), "servable_flavors": supported, "pickle": not safe}


def loads_by_unpickling(flavor: str, config: dict[str, Any]) -> bool:
    if flavor == "sklearn":
        return str(config.get("serialization_format") or "cloudpickle") in PICKLE_FORMATS
    if flavor == "python_function":
        # A custom pyfunc (python_model.pkl) or a pyfunc that delegates to a pickle flavor.
        loader = str(config.get("loader_module") or "")
        return "python_model" in config or "cloudpickle_version" in config or loader == "mlflow.sklearn"
    return False


def read_mlmodel(storage_location: str) -> dict[str, Any]:
    root = artifacts.root_key(storage_location)
    store = artifacts.storage()
    key = posixpath.join(root, "MLmodel")
    try:
        if not store.exists(key):
            raise NotServable("The version's files have no MLmodel file at their root, so it cannot be served.")
        with store.open(key, "rb") as handle:
            raw = handle.read(MLMODEL_MAX_BYTES + 1)
    except OSError as exc:
        raise NotServable(f"The MLmodel file could not be read: {exc}")
    if len(raw) > MLMODEL_MAX_BYTES:
        raise NotServable("The MLmodel file is larger than 1 MB.")
    try:
        document = yaml.safe_load(raw.decode("utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError):
        raise NotServable("The MLmodel file is not valid YAML.")
    if not isinstance(document, dict):
        raise NotServable("The MLmodel file is not a mapping.")
    return document


def _serving_loader():
    try:
        return importlib.import_module("apps.deployments.serving.loader")
    except ImportError:
        return None


def _validate_with_loader(loader, version, *, allow_pickle: bool) -> dict[str, Any]:
    """Load the version with the serving helper's loader. Its own errors become NotServable
    with their message; what it returns is summarised as evidence."""
    function = next(
        (getattr(loader, name) for name in ("validate_version", "load_version", "load_model") if hasattr(loader, name)),
        None,
    )
    if function is None:
        return {**validate_mlmodel(version, allow_pickle=allow_pickle), "loader": "none usable"}
    kwargs: dict[str, Any] = {}
    parameters = inspect.signature(function).parameters
    if "allow_pickle" in parameters:
        kwargs["allow_pickle"] = allow_pickle
    try:
        loaded = function(version, **kwargs)
    except Exception as exc:
        raise NotServable(f"{type(exc).__name__}: {exc}")
    if "allow_pickle" not in parameters:
        validate_mlmodel(version, allow_pickle=allow_pickle)  # the loader does not know the policy
    return {"validated_by": f"{loader.__name__}.{function.__name__}", "loaded": type(loaded).__name__}
