"""Demo experiment tracking: small real scikit-learn models trained on the demo catalog's files,
written through the tracking services as an MLflow client would log them: params, metric curves,
tags, the catalog version as the run's input, artifacts, and the best runs' models (in the run's
`model/` folder and as MLflow 3 logged models). Deterministic and idempotent.

The demo catalog's files are random columns whose `flag` carries no signal, so each experiment's
target is derived from the features by a fixed formula plus seeded noise (see `_TARGETS`):
models then learn something real and differ in how well they do.
"""

from __future__ import annotations

import hashlib
import io
import json
import posixpath
import tempfile
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from apps.accounts.models import Team, User
from apps.catalog.models import Dataset, DatasetVersion
from apps.tracking import artifacts, services
from apps.tracking.models import Experiment, LoggedModel, Run
from apps.tracking.services import MetricPoint

SEED = 7
TEAM = "Risk Analytics"
DAY_MS = 24 * 60 * 60 * 1000
TREE_TYPES = ["sklearn.tree._tree.Tree"]  # what skops must trust to load tree ensembles back
BEST_RUNS_WITH_MODEL = 2
REGIONS = ["north", "south", "east", "west"]
NOTES = ["manual review", "auto", "imported"]


@dataclass(frozen=True)
class Config:
    family: str  # logreg, random_forest, gbm
    params: dict[str, Any]
    outcome: str = Run.Status.FINISHED  # FAILED when the estimator refuses the params
    stop_at: int | None = None  # KILLED after this many trees


@dataclass(frozen=True)
class Plan:
    name: str
    owner: str
    visibility: str
    description: str
    dataset: str
    target: str
    regression: bool
    source_name: str
    configs: list[Config]
    notes: dict[str, str] = field(default_factory=dict)  # run name -> mlflow.note.content


@dataclass
class Result:
    name: str
    config: Config
    status: str
    estimator: Any = None
    curves: dict[str, list[tuple[int, float]]] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    importances: list[tuple[str, float, float]] = field(default_factory=list)  # feature, importance, sign
    details: dict[str, Any] = field(default_factory=dict)  # confusion matrix or residuals
    error: str = ""
    example: pd.DataFrame | None = None  # a few validation rows, for the model's signature
    step_ms: int = 1000

    def score(self) -> float:
        """Higher is better: ROC AUC, or minus RMSE."""
        if "roc_auc" in self.metrics:
            return self.metrics["roc_auc"]
        return -self.metrics.get("rmse", float("inf"))


def _grid(family: str, **axes: Sequence[Any]) -> list[Config]:
    configs = [{}]
    for key, values in axes.items():
        configs = [{**config, key: value} for config in configs for value in values]
    return [Config(family, params) for params in configs]


PLANS = [
    Plan(
        name="Customer churn propensity",
        owner="scientist",
        visibility=Experiment.Visibility.ORGANISATION,
        description=(
            "Which customers will leave in the next quarter. Logistic regression baseline against "
            "gradient boosting, trained on **Customer churn labels**."
        ),
        dataset="Customer churn labels",
        target="churned",
        regression=False,
        source_name="notebooks/churn/train_churn.py",
        configs=[
            *_grid("logreg", C=[0.01, 0.1, 1.0, 10.0], class_weight=[None, "balanced"]),
            *_grid("gbm", learning_rate=[0.05, 0.1, 0.3], max_depth=[2, 3], subsample=[1.0, 0.8], n_estimators=[120]),
            # lbfgs cannot do an L1 penalty: a real failure, as a scientist would hit it.
            Config("logreg", {"C": 1.0, "l1_ratio": 1.0}, outcome=Run.Status.FAILED),
        ],
        notes={"logreg-C1.0-cwNone": "Baseline: plain L2 logistic regression on the scaled features."},
    ),
    Plan(
        name="Card fraud detection",
        owner="engineer",
        visibility=Experiment.Visibility.PRIVATE,
        description="Flag fraudulent card transactions (about one in eight). Trained on **Card transactions**.",
        dataset="Card transactions",
        target="is_fraud",
        regression=False,
        source_name="pipelines/fraud/train_fraud.py",
        configs=[
            *_grid(
                "random_forest",
                max_depth=[4, 8, None],
                min_samples_leaf=[1, 5],
                max_features=["sqrt", 0.5],
                n_estimators=[60],
            ),
            *_grid("gbm", learning_rate=[0.05, 0.2], max_depth=[2, 3], subsample=[1.0, 0.7], n_estimators=[100]),
            Config(
                "random_forest",
                {"max_depth": None, "min_samples_leaf": 1, "max_features": 1.0, "n_estimators": 300},
                outcome=Run.Status.KILLED,
                stop_at=40,
            ),
        ],
        notes={"random_forest-n300-dNone-leaf1-mf1.0": "Stopped by hand: 300 full-depth trees is too slow nightly."},
    ),
    Plan(
        name="Probability of default (PD) model",
        owner="scientist",
        visibility=Experiment.Visibility.PRIVATE,
        description="12-month probability of default for loan applicants, on the **Default training set**.",
        dataset="Default training set",
        target="defaulted",
        regression=False,
        source_name="notebooks/pd_model/train_pd.py",
        configs=[
            *_grid("logreg", C=[0.03, 0.3, 3.0], class_weight=[None, "balanced"]),
            *_grid(
                "random_forest", max_depth=[3, 6], min_samples_leaf=[2, 10], max_features=["sqrt"], n_estimators=[60]
            ),
            *_grid("gbm", learning_rate=[0.05, 0.1], max_depth=[2, 3], subsample=[1.0, 0.8], n_estimators=[100]),
        ],
    ),
    Plan(
        name="Repayment days late",
        owner="engineer",
        visibility=Experiment.Visibility.PRIVATE,
        description="How many days late a repayment will be, for the collections queue. On **Loan repayments**.",
        dataset="Loan repayments",
        target="days_late",
        regression=True,
        source_name="pipelines/collections/train_days_late.py",
        configs=[
            *_grid("gbm", learning_rate=[0.05, 0.1, 0.3], max_depth=[2, 3], subsample=[1.0, 0.8], n_estimators=[150]),
            *_grid("random_forest", max_depth=[4, 8, None], min_samples_leaf=[1, 5], n_estimators=[60]),
        ],
    ),
]


def load(context: dict) -> None:
    users: dict[str, User] = context.get("users") or {u.username: u for u in User.objects.all()}
    team = Team.objects.filter(name=TEAM).first()
    datasets = context.get("datasets") or {d.name: d for d in Dataset.objects.all()}
    experiments = {}
    base_time = services.now_ms() - 21 * DAY_MS
    for index, plan in enumerate(PLANS):
        experiment = Experiment.objects.filter(name=plan.name).first()
        if experiment is None:
            experiment = _load_plan(
                plan, users[plan.owner], team, datasets[plan.dataset], start=base_time + index * 4 * DAY_MS
            )
        experiments[plan.name] = experiment
    context["experiments"] = experiments


# --- Training ---------------------------------------------------------------------------------


def _load_plan(plan: Plan, user: User, team: Team | None, dataset: Dataset, *, start: int) -> Experiment:
    version = dataset.versions.order_by("-number").first()
    raw, content = _read_version(version)
    features = _features(raw)
    target = _TARGETS[plan.target](features, np.random.default_rng(SEED))
    results = [_train(plan, config, features, target) for config in plan.configs]
    finished = [r for r in results if r.status == Run.Status.FINISHED]
    best = sorted(finished, key=lambda r: r.score(), reverse=True)[:BEST_RUNS_WITH_MODEL]

    experiment = services.create_experiment(
        by=user,
        name=plan.name,
        description=plan.description,
        tags=[("project", plan.target), ("dataset", dataset.name)],
        team=team,
        visibility=plan.visibility,
    )
    dataset_input = _dataset_input(dataset, version, raw, content)
    clock = start
    for result in results:
        rank = best.index(result) + 1 if result in best else 0
        clock = _log_run(plan, experiment, user, result, dataset_input, start=clock, best_rank=rank)
        clock += 3 * 60 * 1000
    return experiment


def _read_version(version: DatasetVersion) -> tuple[pd.DataFrame, bytes]:
    if version.file:
        with version.file.open("rb") as handle:
            content = handle.read()
    else:
        content = Path(version.source_uri).read_bytes()
    return pd.read_csv(io.BytesIO(content), keep_default_na=False, na_values=[""]), content


def _features(raw: pd.DataFrame) -> pd.DataFrame:
    """Numeric features from the catalog file's columns (all but `id`), one-hot for the
    categories; what the logged models take as input."""
    note_column = next(c for c in raw.columns if c.endswith("_note"))
    events = pd.to_datetime(raw["event_date"])
    score = pd.to_numeric(raw["score"], errors="coerce")
    frame = pd.DataFrame(
        {
            "log_amount": np.log1p(raw["amount"].astype(float)),
            "score": score.fillna(score.median()),
            "score_missing": score.isna().astype(float),
            "days_since_2024": (events - pd.Timestamp(date(2024, 1, 1))).dt.days.astype(float),
            "month": events.dt.month.astype(float),
            "weekday": events.dt.day_of_week.astype(float),
            "flagged": raw["flag"].astype(str).str.lower().eq("true").astype(float),
        }
    )
    for region in REGIONS:
        frame[f"region_{region}"] = raw["region"].eq(region).astype(float)
    notes = raw[note_column].fillna("")
    for note in NOTES:
        frame[f"note_{note.replace(' ', '_')}"] = notes.eq(note).astype(float)
    return frame


def _z(values: pd.Series) -> np.ndarray:
    return ((values - values.mean()) / values.std()).to_numpy()


def _bernoulli(logit: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return (rng.random(len(logit)) < 1 / (1 + np.exp(-logit))).astype(int)


def _churned(x: pd.DataFrame, rng: np.random.Generator) -> np.ndarray:
    # Low scores churn, the east churns more, and a bend in amount only trees can follow.
    amount = _z(x["log_amount"])
    logit = (
        -0.9
        - 1.3 * _z(x["score"])
        + 0.9 * x["region_east"].to_numpy()
        + 0.8 * x["note_manual_review"].to_numpy()
        + 1.1 * (np.abs(amount) > 1.0)
        - 0.4 * amount
    )
    return _bernoulli(logit, rng)


def _is_fraud(x: pd.DataFrame, rng: np.random.Generator) -> np.ndarray:
    # Rare: large amounts, flagged, and weekend activity in the west.
    weekend_west = (x["weekday"].to_numpy() >= 5) * x["region_west"].to_numpy()
    logit = -3.0 + 1.6 * _z(x["log_amount"]) + 1.8 * x["flagged"].to_numpy() + 1.5 * weekend_west
    return _bernoulli(logit, rng)


def _defaulted(x: pd.DataFrame, rng: np.random.Generator) -> np.ndarray:
    # Mostly a score story (a logistic model fits it well), with missing scores riskier.
    logit = -1.4 - 1.8 * _z(x["score"]) + 1.2 * x["score_missing"].to_numpy() + 0.5 * _z(x["log_amount"])
    return _bernoulli(logit, rng)


def _days_late(x: pd.DataFrame, rng: np.random.Generator) -> np.ndarray:
    # Seasonal and score-driven, floored at zero.
    season = 6 * np.sin(2 * np.pi * x["month"].to_numpy() / 12)
    days = 12 - 7 * _z(x["score"]) + 5 * x["region_south"].to_numpy() + season + rng.normal(0, 4, len(x))
    return np.clip(days, 0, None).round(1)


_TARGETS: dict[str, Callable[[pd.DataFrame, np.random.Generator], np.ndarray]] = {
    "churned": _churned,
    "is_fraud": _is_fraud,
    "defaulted": _defaulted,
    "days_late": _days_late,
}


def _run_name(config: Config) -> str:
    short = {"learning_rate": "lr", "max_depth": "d", "subsample": "ss", "min_samples_leaf": "leaf"}
    short |= {"max_features": "mf", "class_weight": "cw", "n_estimators": "n", "l1_ratio": "l1r"}
    parts = [f"{short.get(k, k)}{v}" for k, v in config.params.items()]
    return "-".join([config.family, *parts])


def training_split(plan: Plan, features: pd.DataFrame, target: np.ndarray) -> list:
    """x_train, x_val, y_train, y_val: the split every run of `plan` is trained and scored on."""
    from sklearn.model_selection import train_test_split

    return train_test_split(
        features, target, test_size=0.3, random_state=SEED, stratify=None if plan.regression else target
    )


def holdout(plan: Plan, version: DatasetVersion) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray]:
    """The raw rows, the features and the target of the validation split `plan`'s runs were
    scored on (for evaluations of the registered models, e.g. by slice)."""
    raw, _ = _read_version(version)
    features = _features(raw)
    target = _TARGETS[plan.target](features, np.random.default_rng(SEED))
    _, x_val, _, y_val = training_split(plan, features, target)
    return raw, x_val, y_val


def _train(plan: Plan, config: Config, features: pd.DataFrame, target: np.ndarray) -> Result:
    import sklearn
    from sklearn.exceptions import ConvergenceWarning

    split = training_split(plan, features, target)
    result = Result(name=_run_name(config), config=config, status=Run.Status.FINISHED, example=split[1].head(5))
    # Parameter and finiteness checks on every curve point would cost more than the fits.
    with warnings.catch_warnings(), sklearn.config_context(assume_finite=True, skip_parameter_validation=True):
        # Stepping lbfgs one iteration at a time is how the curve is drawn, not a problem.
        warnings.simplefilter("ignore", ConvergenceWarning)
        try:
            trainer = {"logreg": _train_logreg, "random_forest": _train_forest, "gbm": _train_boosting}
            trainer[config.family](plan, config, result, *split)
        except ValueError as exc:
            result.status, result.error = Run.Status.FAILED, f"{type(exc).__name__}: {exc}"
            return result
        if result.status == Run.Status.FINISHED:
            _final_metrics(plan, result, *split)
    return result


def _train_logreg(plan, config, result, x_train, x_val, y_train, y_val) -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(x_train)
    train_scaled, val_scaled = scaler.transform(x_train), scaler.transform(x_val)
    model = LogisticRegression(max_iter=1, warm_start=True, random_state=SEED, **config.params)
    iterations = 30
    for step in range(1, iterations + 1):
        model.fit(train_scaled, y_train)  # warm start: one more lbfgs iteration each time
        val = model.predict_proba(val_scaled)[:, 1]
        _point(result, "train_log_loss", step, _log_loss(y_train, model.predict_proba(train_scaled)[:, 1]))
        _point(result, "val_log_loss", step, _log_loss(y_val, val))
        _point(result, "val_roc_auc", step, roc_auc(y_val, val))
    model.set_params(max_iter=iterations, warm_start=False)
    # Both steps are fitted, so the pipeline is the model as served: raw features in.
    pipeline = Pipeline([("scale", scaler), ("model", model)])
    result.estimator, result.step_ms = pipeline, 150
    coefficients = model.coef_[0]
    result.importances = [(n, abs(c), float(np.sign(c))) for n, c in zip(x_train.columns, coefficients, strict=True)]


def _train_forest(plan, config, result, x_train, x_val, y_train, y_val) -> None:
    from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

    params = dict(config.params)
    total = params.pop("n_estimators")
    cls = RandomForestRegressor if plan.regression else RandomForestClassifier
    model = cls(n_estimators=0, warm_start=True, random_state=SEED, n_jobs=1, **params)
    for trees in range(10, total + 1, 10):
        if config.stop_at and trees > config.stop_at:
            result.status = Run.Status.KILLED
            break
        model.set_params(n_estimators=trees)
        model.fit(x_train, y_train)
        predicted = model.predict(x_val) if plan.regression else model.predict_proba(x_val)
        _curve_points(plan, result, trees, y_val, predicted)
        if plan.regression:
            _point(result, "train_rmse", trees, _rmse(y_train, model.predict(x_train)))
    model.set_params(warm_start=False)
    result.estimator, result.step_ms = model, 1200
    result.importances = _tree_importances(model, x_train.columns)


def _train_boosting(plan, config, result, x_train, x_val, y_train, y_val) -> None:
    from sklearn.ensemble import GradientBoostingClassifier, GradientBoostingRegressor

    cls = GradientBoostingRegressor if plan.regression else GradientBoostingClassifier
    model = cls(random_state=SEED, **config.params).fit(x_train, y_train)
    staged = model.staged_predict(x_val) if plan.regression else model.staged_predict_proba(x_val)
    for stage, predicted in enumerate(staged, start=1):
        _curve_points(plan, result, stage, y_val, predicted)
        _point(result, "train_loss", stage, model.train_score_[stage - 1])
    result.estimator, result.step_ms = model, 80
    result.importances = _tree_importances(model, x_train.columns)


def _curve_points(plan: Plan, result: Result, step: int, y_val: np.ndarray, predicted: np.ndarray) -> None:
    if plan.regression:
        _point(result, "val_rmse", step, _rmse(y_val, predicted))
    else:
        _point(result, "val_log_loss", step, _log_loss(y_val, predicted[:, 1]))
        _point(result, "val_roc_auc", step, roc_auc(y_val, predicted[:, 1]))


def _point(result: Result, key: str, step: int, value: float) -> None:
    result.curves.setdefault(key, []).append((step, float(value)))


# Curve points in plain numpy: sklearn.metrics' input checks cost milliseconds a call, and a
# boosting curve has a point per tree. The final metrics use sklearn.metrics.
def roc_auc(actual: np.ndarray, probability: np.ndarray) -> float:
    from scipy.stats import rankdata

    positive = np.asarray(actual) == 1
    ranks = rankdata(probability)
    n_pos, n_neg = positive.sum(), (~positive).sum()
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _log_loss(actual: np.ndarray, probability: np.ndarray) -> float:
    p = np.clip(probability, 1e-15, 1 - 1e-15)
    y = np.asarray(actual)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def _rmse(actual, predicted) -> float:
    return float(np.sqrt(np.mean((np.asarray(actual) - np.asarray(predicted)) ** 2)))


def _tree_importances(model, columns) -> list[tuple[str, float, float]]:
    return [(n, float(v), 1.0) for n, v in zip(columns, model.feature_importances_, strict=True)]


def _final_metrics(plan, result, x_train, x_val, y_train, y_val) -> None:
    from sklearn import metrics

    model = result.estimator
    if plan.regression:
        predicted = model.predict(x_val)
        result.metrics = {
            "rmse": _rmse(y_val, predicted),
            "mae": float(metrics.mean_absolute_error(y_val, predicted)),
            "r2": float(metrics.r2_score(y_val, predicted)),
            "train_rmse_final": _rmse(y_train, model.predict(x_train)),
        }
        residuals = np.asarray(y_val) - predicted
        counts, edges = np.histogram(residuals, bins=10)
        result.details = {
            "residual_histogram": {"counts": counts.tolist(), "edges": [round(e, 3) for e in edges.tolist()]},
            "predicted": predicted.round(2).tolist(),
            "actual": np.asarray(y_val).tolist(),
        }
        return
    probability = model.predict_proba(x_val)[:, 1]
    predicted = (probability >= 0.5).astype(int)
    result.metrics = {
        "accuracy": float(metrics.accuracy_score(y_val, predicted)),
        "f1": float(metrics.f1_score(y_val, predicted, zero_division=0)),
        "precision": float(metrics.precision_score(y_val, predicted, zero_division=0)),
        "recall": float(metrics.recall_score(y_val, predicted, zero_division=0)),
        "roc_auc": float(metrics.roc_auc_score(y_val, probability)),
        "log_loss": float(metrics.log_loss(y_val, probability, labels=[0, 1])),
        "train_roc_auc": float(metrics.roc_auc_score(y_train, model.predict_proba(x_train)[:, 1])),
    }
    matrix = metrics.confusion_matrix(y_val, predicted, labels=[0, 1])
    result.details = {"labels": [f"not {plan.target}", plan.target], "matrix": matrix.tolist(), "threshold": 0.5}


# --- Logging through the services ---------------------------------------------------------------


def _log_run(
    plan: Plan, experiment: Experiment, user: User, result: Result, dataset_input: dict, *, start: int, best_rank: int
) -> int:
    """Log one trained run as the MLflow client would; returns its end time."""
    tags = [
        ("mlflow.source.name", plan.source_name),
        ("mlflow.source.type", "LOCAL"),
        ("mlflow.source.git.commit", _commit(plan, result.config.family)),
        ("model_family", result.config.family),
    ]
    note = plan.notes.get(result.name)
    if result.status == Run.Status.FAILED:
        note = f"Failed while fitting:\n\n```\n{result.error}\n```"
    elif best_rank == 1:
        note = (
            f"Best of the grid on validation ({_headline(result)}). Model logged under `model/` and as a logged model."
        )
    if note:
        tags.append((services.NOTE_TAG, note))
    run = services.create_run(by=user, experiment=experiment, run_name=result.name, start_time=start, tags=tags)
    services.log_inputs(by=user, run=run, datasets=[dataset_input])
    services.log_batch(by=user, run=run, params=_params(plan, result))
    steps = max((len(points) for points in result.curves.values()), default=1)
    end = start + 2000 + steps * result.step_ms
    points = [
        MetricPoint(key=key, value=value, timestamp=start + 1000 + step * result.step_ms, step=step)
        for key, curve in result.curves.items()
        for step, value in curve
    ]
    points += [MetricPoint(key=key, value=value, timestamp=end, step=0) for key, value in result.metrics.items()]
    for chunk in _chunks(points, 1000):
        services.log_batch(by=user, run=run, metrics=chunk)
    if result.status == Run.Status.FINISHED:
        _log_artifacts(plan, run, result, best_rank)
    if best_rank:
        _log_model(plan, experiment, user, run, result)
    services.update_run(by=user, run=run, status=result.status, end_time=end)
    return end


def _params(plan: Plan, result: Result) -> list[tuple[str, str]]:
    """All the estimator's parameters, as autologging records them, with the grid's own values
    on top (a killed forest asked for more trees than it grew)."""
    params = {"model_family": result.config.family, "target": plan.target, "random_state": str(SEED)}
    estimator = result.estimator
    if estimator is not None and hasattr(estimator, "named_steps"):
        estimator = estimator.named_steps["model"]
    if estimator is not None:
        params |= {key: str(value) for key, value in estimator.get_params(deep=False).items()}
    params |= {key: str(value) for key, value in result.config.params.items()}
    return sorted(params.items())


def _commit(plan: Plan, family: str) -> str:
    # One commit per model family of an experiment, as if each was a separate change.
    return hashlib.sha1(f"{plan.name}:{family}".encode(), usedforsecurity=False).hexdigest()


def _headline(result: Result) -> str:
    if "roc_auc" in result.metrics:
        return f"ROC AUC {result.metrics['roc_auc']:.3f}"
    return f"RMSE {result.metrics['rmse']:.2f} days"


def _chunks(items: list, size: int) -> Iterator[list]:
    for index in range(0, len(items), size):
        yield items[index : index + size]


def _dataset_input(dataset: Dataset, version: DatasetVersion, raw: pd.DataFrame, content: bytes) -> dict:
    """What `mlflow.log_input(mlflow.data.from_pandas(...))` sends, with the catalog page of the
    version as its source so the run links to the catalog."""
    kinds = {"i": "long", "f": "double", "b": "boolean"}
    schema = [{"type": kinds.get(raw[c].dtype.kind, "string"), "name": c, "required": True} for c in raw.columns]
    return {
        "dataset": {
            "name": dataset.slug,
            "digest": hashlib.sha256(content).hexdigest()[:8],
            "source_type": "http",
            "source": json.dumps({"url": f"/catalog/datasets/{dataset.slug}/versions/{version.number}/"}),
            "schema": json.dumps({"mlflow_colspec": schema}),
            "profile": json.dumps({"num_rows": len(raw), "num_elements": int(raw.size)}),
        },
        "tags": [{"key": "mlflow.data.context", "value": "training"}],
    }


def _log_artifacts(plan: Plan, run: Run, result: Result, best_rank: int) -> None:
    root = artifacts.root_key(run.artifact_uri)
    rows = sorted(result.importances, key=lambda row: row[1], reverse=True)
    csv = "feature,importance,sign\n" + "".join(f"{n},{v:.6f},{int(s)}\n" for n, v, s in rows)
    _put(root, "feature_importance.csv", csv.encode())
    if plan.regression:
        summary = {k: v for k, v in result.details.items() if k == "residual_histogram"}
        _put(root, "residuals.json", json.dumps(summary, indent=2).encode())
    else:
        _put(root, "confusion_matrix.json", json.dumps(result.details, indent=2).encode())
    if best_rank:
        _put(root, "plots/validation.png", _plot(plan, result))


def _plot(plan: Plan, result: Result) -> bytes:
    # Figure without pyplot: no global backend state, no display needed.
    from matplotlib.figure import Figure

    figure = Figure(figsize=(3.6, 3.2), dpi=80)
    axes = figure.add_subplot()
    if plan.regression:
        axes.scatter(result.details["actual"], result.details["predicted"], s=8, alpha=0.6)
        axes.set_xlabel(f"actual {plan.target}")
        axes.set_ylabel("predicted")
        axes.set_title("Validation: predicted vs actual", fontsize=9)
    else:
        matrix = np.array(result.details["matrix"])
        axes.imshow(matrix, cmap="Blues")
        for (row, column), count in np.ndenumerate(matrix):
            axes.text(column, row, str(count), ha="center", va="center")
        axes.set_xticks([0, 1], labels=["0", "1"])
        axes.set_yticks([0, 1], labels=["0", "1"])
        axes.set_xlabel("predicted")
        axes.set_ylabel("actual")
        axes.set_title(f"Confusion matrix ({plan.target})", fontsize=9)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def _log_model(plan: Plan, experiment: Experiment, user: User, run: Run, result: Result) -> LoggedModel:
    """`mlflow.sklearn.log_model`: the model in the run's `model/` folder and as a logged model."""
    import mlflow.sklearn
    from mlflow.models import Model, infer_signature

    model = services.create_logged_model(
        by=user,
        experiment=experiment,
        name="model",
        source_run=run,
        model_type="sklearn",
        params=_params(plan, result),
        tags=[
            ("mlflow.source.name", plan.source_name),
            ("mlflow.source.git.commit", _commit(plan, result.config.family)),
        ],
    )
    x_example = result.example
    trusted = [] if result.config.family == "logreg" else TREE_TYPES
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model"
        mlflow.sklearn.save_model(
            result.estimator,
            str(path),
            mlflow_model=Model(artifact_path="model", run_id=run.run_uuid, model_id=model.model_id),
            signature=infer_signature(x_example, result.estimator.predict(x_example)),
            # Stated, not inferred: inference starts a subprocess that imports the model.
            pip_requirements=_requirements(),
            skops_trusted_types=trusted,
        )
        run_root = artifacts.join(artifacts.root_key(run.artifact_uri), "model")
        model_root = artifacts.root_key(model.artifact_location)
        for file in sorted(p for p in path.rglob("*") if p.is_file()):
            relative = file.relative_to(path).as_posix()
            data = file.read_bytes()
            _put(run_root, relative, data)
            _put(model_root, relative, data)
    model = services.update_logged_model(by=user, model=model, status=LoggedModel.Status.READY)
    services.link_logged_model(by=user, model=model, run=run)
    return model


def _requirements() -> list[str]:
    import mlflow
    import sklearn

    return [f"mlflow=={mlflow.__version__}", f"scikit-learn=={sklearn.__version__}", f"pandas=={pd.__version__}"]


def _put(root: str, relative: str, data: bytes) -> None:
    artifacts.save_stream(posixpath.join(root, relative), [data])
