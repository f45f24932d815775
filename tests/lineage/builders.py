"""Small ORM builders for the cross-app lineage tests: catalog versions, OpenLineage flows,
tracking runs that read dataset versions, and model versions registered from runs."""

from __future__ import annotations

import itertools

from apps.catalog import services as catalog
from apps.catalog.models import DatasetVersion, LineageRun, LineageRunDataset
from apps.registry.models import ModelVersion, RegisteredModel
from apps.tracking.models import RunInput
from tests.tracking.factories import BASE_TIME, make_experiment, make_run

_ids = itertools.count(1)


def dataset(owner, name, **kwargs):
    return catalog.create_dataset(by=owner, name=name, **kwargs)


def version_of(ds, number=1):
    found, _ = DatasetVersion.objects.get_or_create(dataset=ds, number=number, defaults={"status": "external"})
    return found


def flow(sources, targets, job="etl"):
    """One OpenLineage run reading `sources` and writing `targets`."""
    run = LineageRun.objects.create(job_namespace="airflow", job_name=job)
    LineageRunDataset.objects.bulk_create(
        [LineageRunDataset(run=run, dataset=d, direction="input") for d in sources]
        + [LineageRunDataset(run=run, dataset=d, direction="output") for d in targets]
    )
    return run


def experiment(owner, name=None, *, visibility="organisation", team=None):
    return make_experiment(owner, name, visibility=visibility, team=team)


def run_reading(exp, name, *inputs, context="training"):
    """A finished run of `exp` that logged each of `inputs` (a dataset, or (dataset, version
    number)) with `mlflow.log_input`."""
    run = make_run(exp, name=name)
    for item in inputs:
        ds, number = item if isinstance(item, tuple) else (item, 1)
        RunInput.objects.create(
            run=run,
            name=f"{ds.name} v{number}",
            digest=f"{next(_ids):08x}",
            source_type="local",
            source=f"file:///{ds.slug}.csv",
            context=context,
            dataset_version=version_of(ds, number),
        )
    return run


def registered_model(owner, name, *, visibility="organisation", team=None):
    return RegisteredModel.objects.create(
        name=name,
        owner=owner,
        team=team,
        visibility=visibility,
        creation_timestamp=BASE_TIME,
        last_updated_timestamp=BASE_TIME,
    )


def register(model, run, *, stage="None", deleted=False):
    """The next version of `model`, registered from `run`."""
    number = (model.versions.order_by("-version").values_list("version", flat=True).first() or 0) + 1
    return ModelVersion.objects.create(
        registered_model=model,
        version=number,
        source=f"runs:/{run.run_uuid}/model",
        run=run,
        storage_location=f"mlflow-artifacts:/{run.experiment_id}/{run.run_uuid}/artifacts/model",
        user=model.owner,
        current_stage=stage,
        is_deleted=deleted,
        creation_timestamp=BASE_TIME + next(_ids),
        last_updated_timestamp=BASE_TIME,
    )
