"""Demo model registry: three models registered from the tracking demo's logged models, through
the registry services as a scientist or engineer would in the UI. Their cards are at three
stages of completeness: "churn-propensity" (organisation-wide, champion and challenger) has a
near-complete card with a slice table by region computed by scoring the hold-out set with the
registered model; "probability-of-default" is half written; "card-fraud" is a draft.
Idempotent: a model that already exists is left alone.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from apps.accounts.models import User
from apps.catalog.models import DatasetVersion
from apps.registry import selectors, services
from apps.registry.models import ModelVersion, RegisteredModel
from apps.tracking import artifacts
from apps.tracking import demo as tracking_demo
from apps.tracking.models import Experiment, LatestMetric, LoggedModel

BOOTSTRAP_SAMPLES = 200
ROC_AUC_THRESHOLD = 0.65  # the churn card's acceptance bar, kept on later versions


@dataclass(frozen=True)
class ModelPlan:
    name: str
    experiment: str  # the tracking demo's experiment whose logged models become versions
    description: str
    visibility: str
    versions: int
    tags: list[tuple[str, str]]
    # Sections written on the first version's card; later versions carry them over.
    card: dict[str, Any] = field(default_factory=dict)
    aliases: tuple[str, ...] = ()  # in score order: the best version gets the first
    slice_table: bool = False


CHURN_CARD = {
    "intended_use": {
        "primary_uses": (
            "Rank active retail customers by their probability of leaving in the next quarter, so the "
            "retention team can prioritise outreach and offers."
        ),
        "primary_users": "Retention and CRM analysts (Customer domain).",
        "out_of_scope_uses": (
            "Credit, pricing or collections decisions; any decision that is adverse to the customer; "
            "fully automated action without an analyst reviewing the list."
        ),
    },
    "factors": (
        "- **Region** (north, south, east, west): an input, and where churn rates differ most.\n"
        "- **Bureau score**, including whether it is missing (imputed with the median).\n"
        "- **Amount** band: very small and very large amounts churn more.\n"
        "- **Account notes** (`manual review`, `auto`, `imported`).\n\n"
        "The data has no age, sex or other protected attributes, so they cannot be evaluated here."
    ),
    "training_data_notes": (
        "The latest version of **Customer churn labels** in the catalog: one row per customer with "
        "the churn label for the following quarter. 70 % of rows are used for training."
    ),
    "fairness_considerations": (
        "Region is a model input and a proxy for where customers live. The slice table gives the "
        "hold-out metrics per region; the east is predicted to churn more because it does in the "
        "labels, not as a penalty. Recall differences between regions mean some regions' "
        "customers are offered retention deals less often; review them before each release."
    ),
    "ethical_considerations": (
        "Scores are used to offer benefits, not to withhold them, which limits the harm of errors. "
        "Offering better terms only to those likely to leave can still be unfair to loyal "
        "customers; the retention team's offer policy, not the model, decides eligibility."
    ),
    "risks_and_mitigations": (
        "- *Drift* after pricing changes or campaigns: monitor the score distribution and the "
        "realised churn monthly; retrain quarterly.\n"
        "- *Feedback loop*: customers who received offers churn less, biasing the next labels. "
        "Keep a random 5 % hold-out group without offers.\n"
        "- *Over-reliance*: the list is a prioritisation aid; analysts review it before outreach."
    ),
    "caveats_and_recommendations": (
        "A hold-out of about a hundred rows gives a wide confidence interval (see the ROC AUC "
        "metric), and per-region groups of a few dozen rows wider ones still. Prefer the champion "
        "(lower log loss) for calibrated probabilities; re-evaluate on a fresh quarter before "
        "replacing it."
    ),
}

PD_CARD = {
    "intended_use": {
        "primary_uses": "12-month probability of default for new loan applications, as one input to underwriting.",
        "primary_users": "Credit underwriters and the credit-risk team.",
        "out_of_scope_uses": "Existing-customer limit changes; regulatory capital (IRB) without a separate validation.",
    },
    "factors": (
        "Bureau score and whether it is missing, loan amount, region and application month. "
        "Not yet evaluated by region or by applicants without a bureau score."
    ),
    "evaluation_data": "The 30 % stratified hold-out of the **Default training set** used during training.",
    "caveats_and_recommendations": (
        "Probabilities are not yet calibrated against observed default rates; use the score for "
        "ranking only until they are."
    ),
}

FRAUD_CARD = {
    # A draft: what it is for, but not what it must not be used for.
    "intended_use": {
        "primary_uses": "Flag card transactions for the fraud operations review queue.",
        "primary_users": "Fraud operations.",
        "out_of_scope_uses": "",
    },
    "caveats_and_recommendations": "Draft card: to be completed before a deployment request.",
}

PLANS = [
    ModelPlan(
        name="churn-propensity",
        experiment="Customer churn propensity",
        description=(
            "Which retail customers will leave in the next quarter. Scores feed the retention "
            "team's weekly outreach list."
        ),
        visibility=RegisteredModel.Visibility.ORGANISATION,
        versions=2,
        tags=[("task", "binary-classification"), ("domain", "customers")],
        card=CHURN_CARD,
        aliases=("champion", "challenger"),
        slice_table=True,
    ),
    ModelPlan(
        name="card-fraud",
        experiment="Card fraud detection",
        description="Scores card transactions for fraud; high scores go to manual review.",
        visibility=RegisteredModel.Visibility.PRIVATE,
        versions=2,
        tags=[("task", "binary-classification"), ("domain", "payments")],
        card=FRAUD_CARD,
    ),
    ModelPlan(
        name="probability-of-default",
        experiment="Probability of default (PD) model",
        description="12-month probability of default (PD) for loan applicants.",
        visibility=RegisteredModel.Visibility.PRIVATE,
        versions=1,
        tags=[("task", "binary-classification"), ("domain", "credit")],
        card=PD_CARD,
    ),
]


def load(context: dict) -> None:
    experiments = context.get("experiments") or {e.name: e for e in Experiment.objects.all()}
    models = {}
    for plan in PLANS:
        model = RegisteredModel.objects.filter(name=plan.name).first()
        if model is None:
            model = _register(plan, experiments[plan.experiment])
        models[plan.name] = model
    context["registered_models"] = models


def _register(plan: ModelPlan, experiment: Experiment) -> RegisteredModel:
    owner = experiment.owner
    model = services.create_registered_model(
        by=owner,
        name=plan.name,
        description=plan.description,
        tags=[*plan.tags, ("experiment", experiment.name)],
        team=experiment.team,
        visibility=plan.visibility,
    )
    ranked = _ranked_logged_models(experiment)[: plan.versions]
    # Best first, so the best is v1 (the champion) and a later candidate challenges it.
    versions = []
    for logged_model in ranked:
        version = services.create_model_version(
            by=owner,
            model=model,
            source=f"models:/{logged_model.model_id}",
            description=_version_description(logged_model),
        )
        if not versions and plan.card:
            _write_card(owner, version, plan)
        if plan.slice_table:
            _write_evaluation(owner, version)
        versions.append(version)
    for alias, version in zip(plan.aliases, versions, strict=False):
        services.set_alias(by=owner, model=model, alias=alias, version=version)
    return model


def _ranked_logged_models(experiment: Experiment) -> list[LoggedModel]:
    """The experiment's logged models, best validation ROC AUC first; ties go to the lower log
    loss (better calibrated), then to the earlier run."""
    logged_models = list(
        LoggedModel.objects.filter(experiment=experiment, status=LoggedModel.Status.READY)
        .select_related("run")
        .order_by("run__start_time")
    )
    metrics = {
        (run_id, key): value
        for run_id, key, value in LatestMetric.objects.filter(
            run__in=[m.run_id for m in logged_models], key__in=["roc_auc", "log_loss"]
        ).values_list("run_id", "key", "value")
    }
    return sorted(
        logged_models,
        key=lambda m: (-metrics.get((m.run_id, "roc_auc"), 0.0), metrics.get((m.run_id, "log_loss"), float("inf"))),
    )


def _version_description(logged_model: LoggedModel) -> str:
    auc = LatestMetric.objects.filter(run=logged_model.run, key="roc_auc").values_list("value", flat=True).first()
    headline = f": validation ROC AUC {auc:.3f}" if auc is not None else ""
    return f"`{logged_model.run.name}` from *{logged_model.experiment.name}*{headline}."


def _write_card(owner: User, version: ModelVersion, plan: ModelPlan) -> None:
    card = selectors.card_of(version)
    details = {**card.model_details, "license": "Internal use only."}
    details["references"] = f"Trained in the experiment *{plan.experiment}*."
    services.update_card(by=owner, card=card, changes={**plan.card, "model_details": details})


def _write_evaluation(owner: User, version: ModelVersion) -> None:
    """Evaluation data, the ROC AUC's interval and threshold, and the slice table by region:
    measured for each version (a new version's card starts without them)."""
    card = selectors.card_of(version)
    evaluation = _evaluate_by_region(version, card.training_data)
    metrics = [
        {**row, "threshold": ROC_AUC_THRESHOLD, "ci_low": evaluation["ci"][0], "ci_high": evaluation["ci"][1]}
        if row["name"] == "roc_auc"
        else row
        for row in card.metrics
    ]
    evaluation_data = (
        f"The 30 % stratified hold-out of **{evaluation['dataset']}** v{evaluation['dataset_version']} "
        f"({evaluation['rows']} rows, seed {tracking_demo.SEED}), not used for training. The slice table "
        "was computed by scoring it with this version's registered model file."
    )
    changes = {"evaluation_data": evaluation_data, "metrics": metrics, "quantitative_analysis": evaluation["slices"]}
    services.update_card(by=owner, card=card, changes=changes)


# --- Slice metrics from the registered model ------------------------------------------------------


def _evaluate_by_region(version: ModelVersion, training_data: list[int]) -> dict[str, Any]:
    """Score the hold-out rows of the version's training data with the registered model file and
    measure it per region: the same split as the tracking demo's training (seed and stratification),
    so the overall ROC AUC equals the run's."""
    from sklearn.metrics import recall_score, roc_auc_score

    experiment = version.run.experiment
    plan = next(p for p in tracking_demo.PLANS if p.name == experiment.name)
    dataset_version = DatasetVersion.objects.select_related("dataset").get(pk=training_data[0])
    raw, x_val, y_val = tracking_demo.holdout(plan, dataset_version)
    probability = _load_model(version.storage_location).predict_proba(x_val)[:, 1]
    predicted = (probability >= 0.5).astype(int)
    regions = raw.loc[x_val.index, "region"].to_numpy()

    def measures(mask: np.ndarray) -> dict[str, float]:
        actual, scores = y_val[mask], probability[mask]
        values = {
            "rows": float(mask.sum()),
            f"{plan.target}_rate": float(actual.mean()),
            "mean_predicted": float(scores.mean()),
            "recall@0.5": float(recall_score(actual, predicted[mask], zero_division=0)),
        }
        if len(set(actual)) == 2:  # AUC needs both outcomes in the group
            values["roc_auc"] = float(roc_auc_score(actual, scores))
        return values

    groups = [("overall", "all", np.ones(len(y_val), dtype=bool))]
    groups += [("region", region, regions == region) for region in tracking_demo.REGIONS]
    slices = [
        {"slice": name, "group": group, "metric": metric, "value": round(value, 4)}
        for name, group, mask in groups
        for metric, value in measures(mask).items()
    ]
    return {
        "dataset": dataset_version.dataset.name,
        "dataset_version": dataset_version.number,
        "rows": len(y_val),
        "ci": _bootstrap_auc_interval(y_val, probability),
        "slices": slices,
    }


def _bootstrap_auc_interval(actual: np.ndarray, probability: np.ndarray) -> tuple[float, float]:
    """95 % percentile bootstrap interval of the ROC AUC (seeded, so the demo is reproducible).
    The AUC in plain numpy: sklearn's input checks would cost seconds over the resamples."""
    rng = np.random.default_rng(tracking_demo.SEED)
    values = []
    for _ in range(BOOTSTRAP_SAMPLES):
        sample = rng.integers(0, len(actual), len(actual))
        if len(set(actual[sample])) == 2:
            values.append(tracking_demo.roc_auc(actual[sample], probability[sample]))
    low, high = np.percentile(values, [2.5, 97.5])
    return round(float(low), 4), round(float(high), 4)


def _load_model(storage_location: str):
    """The version's scikit-learn model, copied out of artifact storage (which may be S3)."""
    import mlflow.sklearn

    root = artifacts.root_key(storage_location)
    with tempfile.TemporaryDirectory() as folder:
        for entry in artifacts.walk_files(root):
            path = Path(folder, entry.path)
            path.parent.mkdir(parents=True, exist_ok=True)
            with artifacts.open_file(root, entry.path) as handle:
                path.write_bytes(handle.read())
        return mlflow.sklearn.load_model(folder)
