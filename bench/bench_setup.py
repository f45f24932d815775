"""What the serving, telemetry and drift benchmarks share: a fresh Causeway database in a
folder of their own, and the small scikit-learn model they serve (a churn classifier over four
numbers and one category, saved with skops the way the stock mlflow client saves it)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def fresh_django(work: Path, env: dict[str, str]) -> None:
    """Empty `work`, migrate a new database there with `env`'s settings, then set Django up in
    this process with the same settings."""
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    subprocess.run(  # noqa: S603
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True
    )
    os.environ.update(env)
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


ROWS = 2000


def train_and_save(folder: Path):
    """Train on generated data, save as an MLflow model in `folder`; returns the training frame."""
    import mlflow.sklearn
    import numpy as np
    import pandas as pd
    from mlflow.models import infer_signature
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    rng = np.random.default_rng(7)
    frame = pd.DataFrame(
        {
            "tenure_months": rng.integers(1, 72, ROWS).astype(float),
            "monthly_spend": rng.normal(60, 20, ROWS).round(2),
            "support_calls": rng.poisson(1.5, ROWS).astype(float),
            "discount": rng.uniform(0, 0.3, ROWS).round(3),
            "region": rng.choice(["north", "south", "east", "west"], ROWS),
        }
    )
    target = ((frame.support_calls > 2) & (frame.tenure_months < 24)).astype(int).to_numpy()
    numeric = ["tenure_months", "monthly_spend", "support_calls", "discount"]
    columns = ColumnTransformer(
        [("num", StandardScaler(), numeric), ("cat", OneHotEncoder(handle_unknown="ignore"), ["region"])]
    )
    model = Pipeline([("columns", columns), ("model", LogisticRegression(max_iter=500))]).fit(frame, target)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mlflow.sklearn.save_model(
            model,
            str(folder),
            signature=infer_signature(frame, model.predict(frame)),
            serialization_format="skops",
            skops_trusted_types=["numpy.dtype"],
            pip_requirements=[],
        )
    return frame


def live_churn_endpoint(folder: Path, *, superuser: bool = False):
    """Train and save the churn model in `folder`, store it as version 1 of the registered
    model `bench-churn`, and serve it from the endpoint `bench-churn` owned by a new user
    `bench`. Returns (the user's token, the endpoint, the training frame)."""
    from apps.accounts import services as accounts
    from apps.accounts.models import User
    from apps.deployments.models import Endpoint, Environment
    from apps.registry.models import ModelVersion, RegisteredModel
    from apps.tracking import artifacts

    frame = train_and_save(folder)
    user = User.objects.create_user(
        username="bench",
        password="bench-password-long-enough",
        is_superuser=superuser,  # noqa: S106
    )
    _, token = accounts.create_token(user=user, name="bench")
    location = "mlflow-artifacts:/1/models/m-bench/artifacts"
    for file in sorted(p for p in folder.rglob("*") if p.is_file()):
        key = artifacts.join(artifacts.root_key(location), file.relative_to(folder).as_posix())
        artifacts.save_stream(key, [file.read_bytes()])
    registered = RegisteredModel.objects.create(
        name="bench-churn", owner=user, creation_timestamp=1, last_updated_timestamp=1
    )
    version = ModelVersion.objects.create(
        registered_model=registered,
        version=1,
        source=location,
        storage_location=location,
        flavor="sklearn",
        user=user,
        creation_timestamp=1,
        last_updated_timestamp=1,
    )
    environment = Environment.objects.create(name="bench")
    endpoint = Endpoint.objects.create(name="bench-churn", environment=environment, owner=user, current_version=version)
    return token, endpoint, frame
