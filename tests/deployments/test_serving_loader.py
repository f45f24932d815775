"""Loading model versions for serving: skops with an allow-list of trusted types, ONNX, pickles
only where the environment allows them, the local file cache and the per-process model cache.

The builders here (a tiny scikit-learn model saved with mlflow.sklearn.save_model into a
temporary artifact storage, registered as a ModelVersion row) are shared with test_serving.py.
"""

from __future__ import annotations

import posixpath
import tempfile
import uuid
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from apps.deployments.serving import loader
from apps.registry.models import ModelVersion, RegisteredModel
from apps.tracking import artifacts
from tests.conftest import make_user

FEATURES = pd.DataFrame(
    {
        "a": [0.1, 1.5, -0.3, 2.2, -1.1, 0.7, 1.9, -2.0],
        "b": [1.0, 0.2, -0.5, 1.1, 0.3, -1.2, 0.8, 0.0],
        "n": [1, 3, 0, 4, 2, 1, 5, 0],
        "region": ["north", "south", "east", "west", "north", "south", "east", "west"],
    }
)
TARGET = np.array([0, 1, 0, 1, 0, 1, 1, 0])
NUMERIC = ["a", "b", "n"]


def double_it(x):
    return x * 2


@pytest.fixture
def serving_storage(settings, tmp_path):
    """A temporary artifact storage and serving cache, and an empty model cache."""
    settings.STORAGES = {
        **settings.STORAGES,
        "artifacts": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "artifacts")},
        },
    }
    settings.SERVING_CACHE_DIR = str(tmp_path / "serving-cache")
    loader.models.clear()
    yield tmp_path
    loader.models.clear()


def pipeline_model():
    """Scaled numeric columns and a one-hot region, then a logistic regression."""
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    columns = ColumnTransformer(
        [("num", StandardScaler(), NUMERIC), ("cat", OneHotEncoder(handle_unknown="ignore"), ["region"])]
    )
    return Pipeline([("columns", columns), ("model", LogisticRegression())]).fit(FEATURES, TARGET)


def tree_model():
    from sklearn.tree import DecisionTreeClassifier

    return DecisionTreeClassifier(max_depth=2, random_state=0).fit(FEATURES[NUMERIC], 1 - TARGET)


def save_sklearn(folder: Path, model, *, columns=None, serialization_format: str = "skops") -> None:
    import mlflow.sklearn
    import skops.io
    from mlflow.models import infer_signature

    frame = FEATURES if columns is None else FEATURES[columns]
    predicted = model.predict(frame) if hasattr(model, "predict") else model.transform(frame)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer")
        signature = infer_signature(frame, predicted)
    mlflow.sklearn.save_model(
        model,
        str(folder),
        signature=signature,
        serialization_format=serialization_format,
        # What the author vouches for when saving; the server decides for itself when loading.
        skops_trusted_types=skops.io.get_untrusted_types(data=skops.io.dumps(model)),
        pip_requirements=[],
    )


def register(owner, folder_writer, *, name: str | None = None, model: RegisteredModel | None = None) -> ModelVersion:
    """Save a model folder with `folder_writer(path)`, copy it to the artifact storage and
    register it as the next version of `model` (a new registered model by default)."""
    if model is None:
        model = RegisteredModel.objects.create(
            name=name or f"model-{uuid.uuid4().hex[:8]}", owner=owner, creation_timestamp=1, last_updated_timestamp=1
        )
    location = f"mlflow-artifacts:/1/models/m-{uuid.uuid4().hex}/artifacts"
    root = artifacts.root_key(location)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "model"
        folder_writer(folder)
        for file in sorted(p for p in folder.rglob("*") if p.is_file()):
            artifacts.save_stream(posixpath.join(root, file.relative_to(folder).as_posix()), [file.read_bytes()])
    number = model.versions.count() + 1
    return ModelVersion.objects.create(
        registered_model=model,
        version=number,
        source=location,
        storage_location=location,
        flavor="sklearn",
        user=owner,
        creation_timestamp=number,
        last_updated_timestamp=number,
    )


def skops_version(owner, **kwargs) -> ModelVersion:
    return register(owner, lambda path: save_sklearn(path, pipeline_model()), **kwargs)


def tree_version(owner, **kwargs) -> ModelVersion:
    return register(owner, lambda path: save_sklearn(path, tree_model(), columns=NUMERIC), **kwargs)


def pickle_version(owner, **kwargs) -> ModelVersion:
    return register(
        owner, lambda path: save_sklearn(path, pipeline_model(), serialization_format="cloudpickle"), **kwargs
    )


@pytest.fixture
def owner(db):
    return make_user("modeller")


# --- skops --------------------------------------------------------------------------------------


def test_skops_model_loads_and_predicts_like_the_estimator(serving_storage, owner):
    version = skops_version(owner)
    predictor = loader.load_model(version, allow_pickle=False)
    assert predictor.kind == "sklearn-skops"
    assert not predictor.needs_pickle
    assert list(predictor.predict(FEATURES)) == list(pipeline_model().predict(FEATURES))


def test_signature_is_read_from_the_model_files(serving_storage, owner):
    predictor = loader.load_model(skops_version(owner), allow_pickle=False)
    assert [(c.name, c.type) for c in predictor.signature.columns] == [
        ("a", "double"),
        ("b", "double"),
        ("n", "long"),
        ("region", "string"),
    ]


def test_tree_models_need_only_allow_listed_types(serving_storage, owner):
    predictor = loader.load_model(tree_version(owner), allow_pickle=False)
    assert list(predictor.predict(FEATURES[NUMERIC])) == list(tree_model().predict(FEATURES[NUMERIC]))


def test_skops_file_asking_to_trust_an_unknown_function_is_refused(serving_storage, owner):
    from sklearn.preprocessing import FunctionTransformer

    def writer(path):
        model = FunctionTransformer(func=double_it).fit(FEATURES[NUMERIC])
        save_sklearn(path, model, columns=NUMERIC)

    version = register(owner, writer)
    with pytest.raises(loader.ModelRefused, match="double_it"):
        loader.load_model(version, allow_pickle=True)


def test_skops_file_asking_to_trust_builtins_eval_is_refused(serving_storage, owner):
    import builtins

    from sklearn.preprocessing import FunctionTransformer

    def writer(path):
        import mlflow.sklearn

        mlflow.sklearn.save_model(
            FunctionTransformer(func=builtins.eval),
            str(path),
            serialization_format="skops",
            skops_trusted_types=["builtins.eval"],
            pip_requirements=[],
        )

    with pytest.raises(loader.ModelRefused, match="builtins.eval"):
        loader.load_model(register(owner, writer), allow_pickle=False)


def test_trusted_types_claimed_by_the_mlmodel_file_are_not_believed(serving_storage, owner):
    import mlflow.sklearn
    from sklearn.preprocessing import FunctionTransformer

    def writer(path):
        mlflow.sklearn.save_model(
            FunctionTransformer(func=double_it),
            str(path),
            serialization_format="skops",
            skops_trusted_types=[f"{__name__}.double_it"],
            pip_requirements=[],
        )
        assert f"{__name__}.double_it" in (path / "MLmodel").read_text()

    with pytest.raises(loader.ModelRefused, match="double_it"):
        loader.load_model(register(owner, writer), allow_pickle=False)


def test_a_tree_whose_nodes_point_outside_it_is_refused(serving_storage, owner):
    import skops.io

    def writer(path):
        save_sklearn(path, tree_model(), columns=NUMERIC)
        # Tamper with the saved tree: a child index past the last node.
        model = skops.io.load(path / "model.skops", trusted=["sklearn.tree._tree.Tree"])
        state = model.tree_.__getstate__()
        state["nodes"]["left_child"][0] = 10_000
        model.tree_.__setstate__(state)
        skops.io.dump(model, path / "model.skops")

    with pytest.raises(loader.ModelRefused, match="out of range"):
        loader.load_model(register(owner, writer), allow_pickle=False)


def test_histogram_boosting_models_load(serving_storage, owner):
    from sklearn.ensemble import HistGradientBoostingClassifier

    model = HistGradientBoostingClassifier(max_iter=3, min_samples_leaf=1).fit(FEATURES[NUMERIC], TARGET)
    version = register(owner, lambda path: save_sklearn(path, model, columns=NUMERIC))
    predictor = loader.load_model(version, allow_pickle=False)
    assert list(predictor.predict(FEATURES[NUMERIC])) == list(model.predict(FEATURES[NUMERIC]))


# --- pickles and pyfunc ----------------------------------------------------------------------------


def test_pickled_model_is_refused_unless_the_environment_allows_pickles(serving_storage, owner):
    version = pickle_version(owner)
    with pytest.raises(loader.ModelRefused, match="does not allow pickle"):
        loader.load_model(version, allow_pickle=False)


def test_pickled_model_loads_where_pickles_are_allowed(serving_storage, owner):
    predictor = loader.load_model(pickle_version(owner), allow_pickle=True)
    assert predictor.kind == "sklearn-pickle"
    assert predictor.needs_pickle
    assert list(predictor.predict(FEATURES)) == list(pipeline_model().predict(FEATURES))


def test_custom_pyfunc_model_is_refused_unless_pickles_are_allowed(serving_storage, owner):
    import mlflow.pyfunc

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # mlflow: "add type hints to predict"

        class Echo(mlflow.pyfunc.PythonModel):
            def predict(self, context, model_input, params=None):
                return model_input

    def writer(path):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            mlflow.pyfunc.save_model(str(path), python_model=Echo(), pip_requirements=[])

    with pytest.raises(loader.ModelRefused, match="pyfunc"):
        loader.load_model(register(owner, writer), allow_pickle=False)


# --- ONNX ------------------------------------------------------------------------------------------


def test_onnx_model_loads_with_onnxruntime(serving_storage, owner):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("skl2onnx")
    import mlflow.onnx
    from mlflow.models import infer_signature
    from skl2onnx import to_onnx
    from sklearn.linear_model import LogisticRegression

    estimator = LogisticRegression().fit(FEATURES[NUMERIC].astype("float32"), TARGET)
    graph = to_onnx(estimator, FEATURES[NUMERIC].to_numpy().astype(np.float32)[:1])

    def writer(path):
        signature = infer_signature(FEATURES[NUMERIC].astype("float32"), estimator.predict(FEATURES[NUMERIC]))
        mlflow.onnx.save_model(graph, str(path), signature=signature, pip_requirements=[])

    predictor = loader.load_model(register(owner, writer), allow_pickle=False)
    assert predictor.kind == "onnx"
    assert list(predictor.predict(FEATURES[NUMERIC])) == list(estimator.predict(FEATURES[NUMERIC].astype("float32")))


# --- Files and caches -------------------------------------------------------------------------------


def test_files_are_copied_to_the_local_cache_once(serving_storage, owner, monkeypatch):
    version = skops_version(owner)
    folder = loader.local_copy(version)
    assert folder == Path(serving_storage / "serving-cache" / str(version.pk) / "files")
    assert (folder / "MLmodel").is_file()
    monkeypatch.setattr(artifacts, "walk_files", lambda *a, **k: pytest.fail("copied again"))
    assert loader.local_copy(version) == folder


def test_a_stale_local_copy_of_another_version_with_the_same_id_is_replaced(serving_storage, owner):
    version = skops_version(owner)
    folder = loader.local_copy(version)
    (folder.parent / ".source").write_text("mlflow-artifacts:/9/old\n1\n")
    (folder / "MLmodel").write_text("stale")
    loader.local_copy(version)
    assert "flavors" in (folder / "MLmodel").read_text()


def test_a_version_without_an_mlmodel_file_cannot_be_served(serving_storage, owner):
    def writer(path):
        path.mkdir(parents=True)
        (path / "weights.bin").write_bytes(b"\0" * 8)

    with pytest.raises(loader.ModelLoadError, match="MLmodel"):
        loader.load_model(register(owner, writer), allow_pickle=False)


def test_the_model_cache_loads_each_version_once(serving_storage, owner, monkeypatch):
    version = skops_version(owner)
    calls = []
    real = loader.load_model
    monkeypatch.setattr(loader, "load_model", lambda v, **kw: calls.append(v.pk) or real(v, **kw))
    first = loader.models.get_or_load(version.pk, allow_pickle=False)
    again = loader.models.get_or_load(version.pk, allow_pickle=False)
    assert first is again
    assert calls == [version.pk]


def test_the_model_cache_keeps_only_the_most_recently_used_models(serving_storage, owner):
    cache = loader.ModelCache(size=1)
    one, two = skops_version(owner), tree_version(owner)
    cache.get_or_load(one.pk, allow_pickle=False)
    cache.get_or_load(two.pk, allow_pickle=False)
    assert cache.get(one.pk) is None
    assert cache.get(two.pk) is not None


def test_a_cached_pickle_model_is_refused_once_the_environment_forbids_pickles(serving_storage, owner):
    version = pickle_version(owner)
    loader.models.get_or_load(version.pk, allow_pickle=True)
    with pytest.raises(loader.ModelRefused):
        loader.models.get_or_load(version.pk, allow_pickle=False)
    assert loader.models.get(version.pk) is None
