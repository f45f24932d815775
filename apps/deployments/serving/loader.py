"""Loading a registered model version for serving, and the process-wide cache of loaded models.

A version's files (an MLflow model folder: MLmodel + model files) are copied once from the
artifact storage into a local folder, `var/serving-cache/<version id>/`, then loaded by flavor:

- scikit-learn saved with skops: the types skops would have to trust are computed from the file
  and must all be in SKOPS_ALLOWED_TYPES (what the MLmodel file claims is never taken on trust);
- ONNX: onnxruntime, CPU only (loading a graph runs no Python code);
- scikit-learn pickles and any other MLflow pyfunc: only where the endpoint's environment allows
  pickles, since unpickling runs whatever code the file carries.

A serving process loads every live endpoint's models as it boots (`warm_up`, called from gunicorn's
`post_worker_init` when SERVING_WARM_UP is set: the Procfile's `serve` entry and the k8s serve
deployment set it). Loaded models are kept per process (an LRU of a few models) keyed by version id: the serving
view reads the endpoint row on every request, so a change of the endpoint's version is a cache
miss and the new version loads on its first request, while the version files themselves never
change once registered.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import yaml
from django.conf import settings

from apps.deployments.serving.protocol import Signature, parse_signature
from apps.tracking import artifacts

logger = logging.getLogger("causeway.serving")

# Types skops does not trust by default that plain scikit-learn models need: the fitted trees of
# decision trees, forests and gradient boosting, histogram-boosting predictors and numpy dtypes
# (OneHotEncoder's `dtype`). Trees hold raw node indices that scikit-learn follows without bounds
# checks, so a crafted file could crash the process: every tree is checked after loading
# (_check_trees). Anything else a file asks skops to build (functions, arbitrary classes,
# builtins, neighbour-search structures) is refused.
SKOPS_ALLOWED_TYPES: frozenset[str] = frozenset(
    {
        "numpy.dtype",
        "sklearn.tree._tree.Tree",
        "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    }
)

MLMODEL_MAX_BYTES = 1024 * 1024
COPY_CHUNK_BYTES = 1024 * 1024


class ModelLoadError(Exception):
    """The version's files are missing, unreadable or of a kind this server cannot serve."""


class ModelRefused(ModelLoadError):
    """The files could be loaded but policy forbids it (a pickle where pickles are not
    allowed, a skops file asking to trust a type outside the allow-list)."""


@dataclass
class Predictor:
    """A loaded model: `predict(DataFrame | ndarray)` and what the serving path needs to know."""

    version_id: int
    label: str  # "<registered model name>/<version>", for the response header and the log
    kind: str  # "sklearn-skops", "onnx", "sklearn-pickle", "pyfunc"
    needs_pickle: bool
    signature: Signature | None
    _predict: Callable[[Any], Any] = field(repr=False)

    def predict(self, data: Any) -> Any:
        return self._predict(data)


# --- Local copies of the version's files ---------------------------------------------------------


def cache_root() -> Path:
    return Path(settings.SERVING_CACHE_DIR)


def local_copy(version) -> Path:
    """The version's files in a local folder, copied from the artifact storage on first use.
    A `.source` marker names what was copied: ids are reused when a database is recreated, so
    a folder whose marker does not match the version is fetched again."""
    root = artifacts.root_key(version.storage_location)
    if not root:
        raise ModelLoadError(f"Model version {version.pk} has no files in this server's artifact storage.")
    base = cache_root() / str(version.pk)
    source = f"{version.storage_location}\n{version.creation_timestamp}\n"
    if _marker_matches(base, source):
        return base / "files"
    cache_root().mkdir(parents=True, exist_ok=True)
    staging = cache_root() / f".{version.pk}.{uuid.uuid4().hex}.partial"
    try:
        count = 0
        for entry in artifacts.walk_files(root):
            relative = artifacts.clean_relative_path(entry.path)
            target = staging / "files" / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            with artifacts.open_file(root, relative) as handle, open(target, "wb") as out:
                shutil.copyfileobj(handle, out, COPY_CHUNK_BYTES)
            count += 1
        if not count:
            raise ModelLoadError(f"Model version {version.pk} has no files at {version.storage_location}.")
        (staging / ".source").write_text(source)
        _install(staging, base, source)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return base / "files"


def _marker_matches(base: Path, source: str) -> bool:
    try:
        return (base / ".source").read_text() == source
    except OSError:
        return False


def _install(staging: Path, base: Path, source: str) -> None:
    # Another process may be copying the same version: the first rename wins, and a stale
    # folder (an old database's version with the same id) is moved aside first.
    for _ in range(3):
        try:
            os.rename(staging, base)
            return
        except OSError:
            if _marker_matches(base, source):
                return
            stale = base.with_name(f".{base.name}.{uuid.uuid4().hex}.stale")
            try:
                os.rename(base, stale)
            except OSError:
                continue
            shutil.rmtree(stale, ignore_errors=True)
    raise ModelLoadError(f"Could not install the local copy of the model in {base}.")


# --- Loading by flavor -------------------------------------------------------------------------------


def load_model(version, *, allow_pickle: bool) -> Predictor:
    """Load a registered model version for serving. Raises ModelRefused when policy forbids
    loading its files (pickles without `allow_pickle`, skops types outside the allow-list) and
    ModelLoadError when they cannot be served."""
    folder = local_copy(version)
    document = _mlmodel(folder)
    flavors = document.get("flavors") or {}
    if not isinstance(flavors, dict) or not flavors:
        raise ModelLoadError("The MLmodel file names no flavor.")
    signature = _signature(document, version)
    label = f"{quote(version.registered_model.name, safe='')}/{version.version}"
    common = {"version_id": version.pk, "label": label, "signature": signature}
    sklearn_conf = flavors.get("sklearn")
    if isinstance(sklearn_conf, dict):
        fmt = sklearn_conf.get("serialization_format") or "cloudpickle"
        path = _file_in(folder, sklearn_conf.get("pickled_model"))
        if fmt == "skops":
            model = _load_skops(path)
            return Predictor(kind="sklearn-skops", needs_pickle=False, _predict=model.predict, **common)
        if fmt in ("pickle", "cloudpickle"):
            _require_pickle(allow_pickle, f"a scikit-learn model serialized with {fmt}")
            model = _load_pickle(path)
            return Predictor(kind="sklearn-pickle", needs_pickle=True, _predict=model.predict, **common)
        raise ModelLoadError(f"Unknown scikit-learn serialization format {fmt!r}.")
    onnx_conf = flavors.get("onnx")
    if isinstance(onnx_conf, dict):
        predict = _load_onnx(_file_in(folder, onnx_conf.get("data") or "model.onnx"))
        return Predictor(kind="onnx", needs_pickle=False, _predict=predict, **common)
    if "python_function" in flavors:
        # A custom pyfunc (python_model.pkl, loader modules, code paths): code runs at load.
        _require_pickle(allow_pickle, f"an MLflow pyfunc model ({', '.join(sorted(flavors))})")
        return Predictor(kind="pyfunc", needs_pickle=True, _predict=_load_pyfunc(folder), **common)
    raise ModelLoadError(f"No servable flavor among {sorted(flavors)}.")


def _mlmodel(folder: Path) -> dict:
    path = folder / "MLmodel"
    try:
        with open(path, "rb") as handle:
            raw = handle.read(MLMODEL_MAX_BYTES + 1)
    except OSError:
        raise ModelLoadError("The version's files have no MLmodel file: not an MLflow model.")
    if len(raw) > MLMODEL_MAX_BYTES:
        raise ModelLoadError("The MLmodel file is larger than 1 MB.")
    try:
        document = yaml.safe_load(raw.decode("utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ModelLoadError(f"The MLmodel file is not valid YAML: {exc}")
    if not isinstance(document, dict):
        raise ModelLoadError("The MLmodel file is not a mapping.")
    return document


def _signature(document: dict, version) -> Signature | None:
    # The files are what is served, so their MLmodel wins; the registry's parsed copy is the
    # fallback.
    inputs = (document.get("signature") or {}).get("inputs") if isinstance(document.get("signature"), dict) else None
    if isinstance(inputs, str):
        try:
            inputs = json.loads(inputs)
        except ValueError:
            inputs = None
    if inputs is None:
        inputs = version.signature_inputs
    return parse_signature(inputs)


def _file_in(folder: Path, relative: Any) -> Path:
    if not isinstance(relative, str) or not relative:
        raise ModelLoadError("The MLmodel file does not name the model file.")
    try:
        clean = artifacts.clean_relative_path(relative)
    except artifacts.UnsafeArtifactPath as exc:
        raise ModelLoadError(str(exc))
    path = folder / clean
    if not clean or not path.is_file():
        raise ModelLoadError(f"The model file {relative!r} is missing.")
    return path


def _require_pickle(allow_pickle: bool, what: str) -> None:
    if not allow_pickle:
        raise ModelRefused(
            f"This version is {what}; loading it runs code from the file, and this endpoint's "
            "environment does not allow pickle models. Re-save it with skops or ONNX, or deploy "
            "it to an environment that allows pickles."
        )


def _load_skops(path: Path):
    try:
        import skops.io
    except ImportError:
        raise ModelLoadError("scikit-learn models saved with skops need the skops package on this server.")

    try:
        untrusted = skops.io.get_untrusted_types(file=path)
    except Exception as exc:  # a corrupt or foreign file: whatever skops raises
        raise ModelLoadError(f"Not a readable skops file: {type(exc).__name__}: {exc}")
    refused = sorted(set(untrusted) - SKOPS_ALLOWED_TYPES)
    if refused:
        raise ModelRefused(
            f"The skops file asks to trust types outside the serving allow-list: {', '.join(refused)}. "
            "Only scikit-learn and numpy types known to be safe are loaded."
        )
    try:
        model = skops.io.load(path, trusted=list(untrusted))
    except Exception as exc:
        raise ModelLoadError(f"Could not load the skops file: {type(exc).__name__}: {exc}")
    _check_trees(model)
    return model


def _check_trees(model: Any) -> None:
    """Refuse trees whose node indices point outside the tree (or back up it, which would loop)
    or at features the tree does not have: scikit-learn's prediction code trusts them."""
    import numpy as np
    from sklearn.ensemble._hist_gradient_boosting.predictor import TreePredictor
    from sklearn.tree._tree import Tree

    for tree, n_features in _objects_of(model, (Tree, TreePredictor)):
        if isinstance(tree, Tree):
            count = tree.node_count
            left, right, feature = tree.children_left, tree.children_right, tree.feature
            n_features = tree.n_features
            leaf = left == -1
            if tree.value.shape[0] != count:
                raise ModelRefused("A decision tree in the file is malformed (values do not match its nodes).")
        else:
            nodes = tree.nodes
            count = len(nodes)
            leaf = nodes["is_leaf"].astype(bool)
            left, right = nodes["left"].astype(np.int64), nodes["right"].astype(np.int64)
            feature = nodes["feature_idx"]
            categorical = nodes["is_categorical"].astype(bool) & ~leaf
            if categorical.any() and nodes["bitset_idx"][categorical].max() >= len(tree.raw_left_cat_bitsets):
                raise ModelRefused("A boosting tree in the file is malformed (category bitset out of range).")
        index = np.arange(count)
        inner = ~leaf
        bad = (
            (left[inner] <= index[inner]).any()
            or (right[inner] <= index[inner]).any()
            or (left[inner] >= count).any()
            or (right[inner] >= count).any()
            or (feature[inner] < 0).any()
            or (n_features is not None and (feature[inner] >= n_features).any())
        )
        if bad:
            raise ModelRefused("A tree in the file is malformed: its node or feature indices are out of range.")


def _objects_of(root: Any, types: tuple[type, ...], limit: int = 100_000):
    """Objects of `types` reachable from a fitted estimator (attributes, lists, dicts, object
    arrays), each with the number of input features of the nearest estimator above it."""
    import numpy as np

    stack: list[tuple[Any, int | None, int]] = [(root, None, 0)]
    seen: set[int] = set()
    while stack and len(seen) < limit:
        obj, n_features, depth = stack.pop()
        if id(obj) in seen or depth > 20:
            continue
        seen.add(id(obj))
        if isinstance(obj, types):
            yield obj, n_features
            continue
        if isinstance(obj, dict):
            children = list(obj.values())
        elif isinstance(obj, list | tuple):
            children = list(obj)
        elif isinstance(obj, np.ndarray):
            children = list(obj.ravel()) if obj.dtype == object else []
        elif hasattr(obj, "get_params") and hasattr(obj, "__dict__"):
            n_features = getattr(obj, "n_features_in_", n_features)
            children = list(vars(obj).values())
        else:
            children = []
        stack.extend((child, n_features, depth + 1) for child in children)


def _load_pickle(path: Path):
    import cloudpickle

    try:
        with open(path, "rb") as handle:
            # Only reached when the environment allows pickles (see _require_pickle).
            return cloudpickle.load(handle)  # noqa: S301
    except Exception as exc:
        raise ModelLoadError(f"Could not unpickle the model: {type(exc).__name__}: {exc}")


def _load_pyfunc(folder: Path) -> Callable[[Any], Any]:
    import mlflow.pyfunc

    try:
        model = mlflow.pyfunc.load_model(str(folder))
    except Exception as exc:
        raise ModelLoadError(f"Could not load the pyfunc model: {type(exc).__name__}: {exc}")
    return model.predict


_ONNX_DTYPES = {
    "tensor(float)": "float32",
    "tensor(double)": "float64",
    "tensor(int64)": "int64",
    "tensor(int32)": "int32",
    "tensor(bool)": "bool",
    "tensor(string)": "object",
}


def _load_onnx(path: Path) -> Callable[[Any], Any]:
    try:
        import onnxruntime
    except ImportError:
        raise ModelLoadError("ONNX models need onnxruntime, which is not installed on this server.")
    import numpy as np
    import pandas as pd

    options = onnxruntime.SessionOptions()
    # One thread per inference: gunicorn's processes and threads already use the cores.
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    try:
        session = onnxruntime.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise ModelLoadError(f"Could not load the ONNX model: {type(exc).__name__}: {exc}")
    inputs = session.get_inputs()
    output_names = [output.name for output in session.get_outputs()]

    def predict(data: Any) -> Any:
        if len(inputs) == 1:
            # One input tensor: the whole frame, columns in order.
            array = data.to_numpy() if isinstance(data, pd.DataFrame) else np.asarray(data)
            if array.ndim == 1:
                array = array.reshape(-1, 1)
            feed = {inputs[0].name: array.astype(_ONNX_DTYPES.get(inputs[0].type, "float32"), copy=False)}
        else:
            # One input per column (skl2onnx's initial_types by column name).
            if not isinstance(data, pd.DataFrame):
                raise ValueError(f"This ONNX model takes named inputs: {[i.name for i in inputs]}")
            feed = {
                i.name: data[i.name].to_numpy().astype(_ONNX_DTYPES.get(i.type, "float32")).reshape(-1, 1)
                for i in inputs
            }
        results = session.run(output_names, feed)
        # The first output is the prediction (skl2onnx: label first, then probabilities).
        return results[0]

    return predict


# --- The process-wide cache -------------------------------------------------------------------------


@dataclass
class _Failure:
    error: ModelLoadError
    until: float


class ModelCache:
    """Loaded predictors by version id: an LRU of at most `size` models, one loader at a time
    per version (other threads wait for it), and failures remembered for a few seconds so a
    broken version is not fetched again on every request."""

    def __init__(self, size: int = 8, failure_ttl: float = 10.0):
        self.size = size
        self.failure_ttl = failure_ttl
        self._models: OrderedDict[int, Predictor] = OrderedDict()
        self._failures: dict[int, _Failure] = {}
        self._lock = threading.Lock()
        self._loading: dict[int, threading.Lock] = {}

    def get(self, version_id: int) -> Predictor | None:
        with self._lock:
            predictor = self._models.get(version_id)
            if predictor is not None:
                self._models.move_to_end(version_id)
            return predictor

    def get_or_load(self, version_id: int, *, allow_pickle: bool) -> Predictor:
        predictor = self.get(version_id)
        if predictor is None:
            predictor = self._load(version_id, allow_pickle=allow_pickle)
        if predictor.needs_pickle and not allow_pickle:
            # The environment's policy was tightened after this model was loaded.
            self.evict(version_id)
            _require_pickle(False, "a pickled model")
        return predictor

    def _load(self, version_id: int, *, allow_pickle: bool) -> Predictor:
        with self._lock:
            loading = self._loading.setdefault(version_id, threading.Lock())
        with loading:
            predictor = self.get(version_id)
            if predictor is not None:
                return predictor
            failure = self._failures.get(version_id)
            if failure is not None and failure.until > time.monotonic() and not isinstance(failure.error, ModelRefused):
                raise failure.error
            from apps.registry.models import ModelVersion

            version = ModelVersion.objects.select_related("registered_model").filter(pk=version_id).first()
            if version is None:
                raise ModelLoadError(f"Model version {version_id} does not exist.")
            started = time.perf_counter()
            try:
                predictor = load_model(version, allow_pickle=allow_pickle)
            except ModelLoadError as exc:
                self._failures[version_id] = _Failure(exc, time.monotonic() + self.failure_ttl)
                logger.warning("serving: could not load %s: %s", version, exc)
                raise
            logger.info(
                "serving: loaded %s (%s) in %.0f ms",
                predictor.label,
                predictor.kind,
                1000 * (time.perf_counter() - started),
            )
            with self._lock:
                self._failures.pop(version_id, None)
                self._models[version_id] = predictor
                self._models.move_to_end(version_id)
                while len(self._models) > self.size:
                    self._models.popitem(last=False)
            return predictor

    def evict(self, version_id: int) -> None:
        with self._lock:
            self._models.pop(version_id, None)
            self._failures.pop(version_id, None)

    def clear(self) -> None:
        with self._lock:
            self._models.clear()
            self._failures.clear()


models = ModelCache(size=settings.SERVING_MAX_MODELS)


# --- Warm-up at process start ----------------------------------------------------------------------


@dataclass
class WarmUpReport:
    """What a warm-up loaded (labels) and what it could not (endpoint, version id, reason)."""

    loaded: list[str] = field(default_factory=list)
    failed: list[tuple[str, int, str]] = field(default_factory=list)
    skipped: list[tuple[str, int]] = field(default_factory=list)


def warm_up(cache: ModelCache | None = None, *, heartbeat: Callable[[], Any] | None = None) -> WarmUpReport:
    """Load the versions every live endpoint serves (primary and canary) into this process's
    cache, so the first caller after a (re)start does not pay for copying and loading the model.

    Called once per serving process as it boots (platform/gunicorn.conf.py, `post_worker_init`,
    when SERVING_WARM_UP is set). It never raises: a model that cannot load is reported and left
    for the request path to answer 503 on, and the other endpoints still warm up. Versions beyond
    the cache's size are skipped rather than evicting ones already loaded. `heartbeat` is called
    before each model (gunicorn's `worker.notify`, so a long warm-up is not taken for a hung
    worker and killed after WEB_TIMEOUT)."""
    from django.db import DatabaseError

    from apps.deployments.models import Endpoint

    cache = cache or models
    report = WarmUpReport()
    try:
        rows = list(
            Endpoint.objects.filter(state=Endpoint.State.LIVE, current_version__isnull=False)
            .order_by("name")
            .values_list("name", "current_version_id", "canary_version_id", "environment__allow_pickle")
        )
    except DatabaseError as exc:
        logger.warning("serving: warm-up skipped, the database is not reachable: %s", exc)
        return report
    seen: set[int] = set()
    for name, current_id, canary_id, allow_pickle in rows:
        for version_id in filter(None, (current_id, canary_id)):
            if version_id in seen:
                continue
            seen.add(version_id)
            if len(report.loaded) >= cache.size:
                report.skipped.append((name, version_id))
                continue
            if heartbeat is not None:
                heartbeat()
            try:
                predictor = cache.get_or_load(version_id, allow_pickle=bool(allow_pickle))
            except ModelLoadError as exc:
                report.failed.append((name, version_id, str(exc)))
            else:
                report.loaded.append(predictor.label)
    logger.info(
        "serving: warm-up loaded %d model(s)%s%s",
        len(report.loaded),
        f", {len(report.failed)} failed" if report.failed else "",
        f", {len(report.skipped)} beyond SERVING_MAX_MODELS" if report.skipped else "",
    )
    return report
