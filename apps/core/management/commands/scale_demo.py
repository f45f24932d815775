"""Multiply the demo organisation for load tests: `manage.py scale_demo --factor 100`.

Copies every demo dataset (with its current version and columns), experiment (with its runs'
params, tags, latest metrics and a bounded metric history), registered model (with its versions
and model cards) and deployment request `factor - 1` times, with bulk inserts. Copies are named
`<original>-x<n>` and keep the original's owner, team, visibility and explicit shares, so
permission filtering sees the same mix of private and shared objects at scale. Run it after
`load_demo`, on a database of its own (bench/load/README.md); it refuses to run twice.
"""

from __future__ import annotations

import time
import uuid

from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction

BATCH = 2000
HISTORY_POINTS_PER_COPY = 20  # metric history copied per (run, key): enough for the charts


class Command(BaseCommand):
    help = "Multiply the demo data (datasets, experiments and runs, models, deployment requests)."

    def add_arguments(self, parser):
        parser.add_argument("--factor", type=int, default=100, help="Total size as a multiple of the demo (100).")

    def handle(self, *args, factor: int, **options):
        from apps.catalog.models import Dataset

        if factor < 2:
            raise CommandError("--factor must be at least 2.")
        if Dataset.objects.filter(slug__contains="-x2").exists():
            raise CommandError("This database is scaled already.")
        started = time.monotonic()
        copies = range(2, factor + 1)
        with transaction.atomic():
            datasets = self._datasets(copies)
            experiments, run_map = self._experiments(copies)
            versions = self._models(copies, run_map)
            requests = self._requests(copies, versions)
        if connection.vendor == "sqlite":
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE")
        self.stdout.write(
            f"scaled ×{factor} in {time.monotonic() - started:.0f} s: +{datasets} datasets, +{experiments} "
            f"experiments, +{len(run_map)} runs, +{len(versions)} model versions, +{requests} deployment requests"
        )

    # --- catalog --------------------------------------------------------------------------------

    def _datasets(self, copies) -> int:
        from apps.catalog import search
        from apps.catalog.models import Column, Dataset, DatasetVersion

        originals = list(Dataset.objects.select_related("current_version").prefetch_related("tags"))
        created = 0
        for n in copies:
            rows = [
                Dataset(
                    name=f"{d.name} x{n}",
                    slug=f"{d.slug}-x{n}",
                    description=d.description,
                    owner_id=d.owner_id,
                    steward_id=d.steward_id,
                    team_id=d.team_id,
                    domain_id=d.domain_id,
                    classification=d.classification,
                    visibility=d.visibility,
                    source_kind=d.source_kind,
                    source_uri=d.source_uri,
                    format=d.format,
                    search_text=d.search_text,
                )
                for d in originals
            ]
            Dataset.objects.bulk_create(rows, batch_size=BATCH)
            rows = list(Dataset.objects.filter(slug__in=[r.slug for r in rows]).order_by("slug"))
            by_slug = {r.slug: r for r in rows}
            versions, tag_links = [], []
            for d in originals:
                copy = by_slug[f"{d.slug}-x{n}"]
                tag_links += [Dataset.tags.through(dataset_id=copy.pk, tag_id=t.pk) for t in d.tags.all()]
                if d.current_version is not None:
                    v = d.current_version
                    versions.append(
                        DatasetVersion(
                            dataset=copy,
                            number=1,
                            format=v.format,
                            status=v.status,
                            row_count=v.row_count,
                            size_bytes=v.size_bytes,
                            content_hash=v.content_hash,
                            profile=v.profile,
                            sample_rows=v.sample_rows,
                            source_uri=v.source_uri,
                        )
                    )
            Dataset.tags.through.objects.bulk_create(tag_links, batch_size=BATCH)
            DatasetVersion.objects.bulk_create(versions, batch_size=BATCH)
            new_versions = {v.dataset_id: v for v in DatasetVersion.objects.filter(dataset__in=rows)}
            columns = []
            for d in originals:
                if d.current_version is None:
                    continue
                target = new_versions[by_slug[f"{d.slug}-x{n}"].pk]
                for c in d.current_version.columns.all():
                    columns.append(
                        Column(
                            version=target,
                            **{
                                f.attname: getattr(c, f.attname)
                                for f in Column._meta.concrete_fields
                                if f.attname not in ("id", "version_id")
                            },
                        )
                    )
            Column.objects.bulk_create(columns, batch_size=BATCH)
            for dataset_id, version in new_versions.items():
                Dataset.objects.filter(pk=dataset_id).update(current_version=version)
            for copy in rows:
                search.reindex(Dataset.objects.select_related("current_version").get(pk=copy.pk))
            _copy_shares(Dataset, {d.pk: by_slug[f"{d.slug}-x{n}"].pk for d in originals})
            created += len(rows)
        return created

    # --- tracking -------------------------------------------------------------------------------

    def _experiments(self, copies):
        from apps.tracking.artifacts import experiment_artifact_location, run_artifact_uri
        from apps.tracking.models import Experiment, LatestMetric, Metric, Param, Run, RunTag

        originals = list(Experiment.objects.exclude(name="Default"))
        runs = list(Run.objects.filter(experiment__in=originals))
        params = _group(Param.objects.filter(run__in=runs), "run_id")
        tags = _group(RunTag.objects.filter(run__in=runs), "run_id")
        latest = _group(LatestMetric.objects.filter(run__in=runs), "run_id")
        history = _group(Metric.objects.filter(run__in=runs).order_by("run_id", "key", "step"), "run_id")
        run_map: dict[tuple[int, int], Run] = {}  # (original run pk, copy number) -> copy
        created = 0
        for n in copies:
            rows = [
                Experiment(
                    name=f"{e.name} x{n}",
                    owner_id=e.owner_id,
                    team_id=e.team_id,
                    visibility=e.visibility,
                    description=e.description,
                    lifecycle_stage=e.lifecycle_stage,
                    creation_time=e.creation_time,
                    last_update_time=e.last_update_time,
                )
                for e in originals
            ]
            Experiment.objects.bulk_create(rows, batch_size=BATCH)
            by_name = {e.name: e for e in Experiment.objects.filter(name__in=[r.name for r in rows])}
            for e in by_name.values():
                e.artifact_location = experiment_artifact_location(e.pk)
            Experiment.objects.bulk_update(by_name.values(), ["artifact_location"], batch_size=BATCH)
            copy_of = {e.pk: by_name[f"{e.name} x{n}"] for e in originals}
            _copy_shares(Experiment, {pk: copy.pk for pk, copy in copy_of.items()})
            new_runs = []
            for r in runs:
                target = copy_of[r.experiment_id]
                run_uuid = uuid.uuid4().hex
                copy = Run(
                    run_uuid=run_uuid,
                    experiment=target,
                    user_id=r.user_id,
                    name=r.name,
                    status=r.status,
                    start_time=r.start_time,
                    end_time=r.end_time,
                    lifecycle_stage=r.lifecycle_stage,
                    artifact_uri=run_artifact_uri(target.pk, run_uuid),
                )
                new_runs.append(copy)
                run_map[(r.pk, n)] = copy
            Run.objects.bulk_create(new_runs, batch_size=BATCH)
            pks = dict(Run.objects.filter(run_uuid__in=[r.run_uuid for r in new_runs]).values_list("run_uuid", "pk"))
            for copy in new_runs:
                copy.pk = pks[copy.run_uuid]
            p, t, lm, m = [], [], [], []
            for r in runs:
                copy = run_map[(r.pk, n)]
                p += [Param(run_id=copy.pk, key=x.key, value=x.value) for x in params.get(r.pk, [])]
                t += [RunTag(run_id=copy.pk, key=x.key, value=x.value) for x in tags.get(r.pk, [])]
                lm += [
                    LatestMetric(
                        run_id=copy.pk,
                        experiment_id=copy.experiment_id,
                        key=x.key,
                        value=x.value,
                        timestamp=x.timestamp,
                        step=x.step,
                        is_nan=x.is_nan,
                    )
                    for x in latest.get(r.pk, [])
                ]
                kept: dict[str, int] = {}
                for x in history.get(r.pk, []):
                    if kept.get(x.key, 0) < HISTORY_POINTS_PER_COPY:
                        kept[x.key] = kept.get(x.key, 0) + 1
                        m.append(
                            Metric(
                                run_id=copy.pk,
                                key=x.key,
                                value=x.value,
                                timestamp=x.timestamp,
                                step=x.step,
                                is_nan=x.is_nan,
                            )
                        )
            Param.objects.bulk_create(p, batch_size=BATCH)
            RunTag.objects.bulk_create(t, batch_size=BATCH)
            LatestMetric.objects.bulk_create(lm, batch_size=BATCH)
            Metric.objects.bulk_create(m, batch_size=BATCH)
            created += len(rows)
        return created, run_map

    # --- registry -------------------------------------------------------------------------------

    def _models(self, copies, run_map):
        from apps.registry.models import ModelCard, ModelVersion, RegisteredModel

        originals = list(RegisteredModel.objects.all())
        versions = list(ModelVersion.objects.filter(registered_model__in=originals))
        cards = {c.model_version_id: c for c in ModelCard.objects.filter(model_version__in=versions)}
        created: dict[tuple[int, int], ModelVersion] = {}
        for n in copies:
            rows = [
                RegisteredModel(
                    name=f"{m.name}-x{n}",
                    owner_id=m.owner_id,
                    team_id=m.team_id,
                    visibility=m.visibility,
                    description=m.description,
                    creation_timestamp=m.creation_timestamp,
                    last_updated_timestamp=m.last_updated_timestamp,
                )
                for m in originals
            ]
            RegisteredModel.objects.bulk_create(rows, batch_size=BATCH)
            by_name = {m.name: m for m in RegisteredModel.objects.filter(name__in=[r.name for r in rows])}
            _copy_shares(RegisteredModel, {m.pk: by_name[f"{m.name}-x{n}"].pk for m in originals})
            new = []
            for v in versions:
                model = by_name[f"{v.registered_model.name}-x{n}"]
                fields = {
                    f.attname: getattr(v, f.attname)
                    for f in ModelVersion._meta.concrete_fields
                    if f.attname not in ("id", "registered_model_id", "run_id")
                }
                copy_run = run_map.get((v.run_id, n)) if v.run_id else None
                new.append(ModelVersion(registered_model=model, run_id=copy_run.pk if copy_run else v.run_id, **fields))
            ModelVersion.objects.bulk_create(new, batch_size=BATCH)
            saved = ModelVersion.objects.filter(registered_model__in=by_name.values()).select_related(
                "registered_model"
            )
            card_rows = []
            for copy in saved:
                original = next(
                    v
                    for v in versions
                    if v.version == copy.version and f"{v.registered_model.name}-x{n}" == copy.registered_model.name
                )
                created[(original.pk, n)] = copy
                card = cards.get(original.pk)
                if card is not None:
                    card_rows.append(
                        ModelCard(
                            model_version=copy,
                            **{
                                f.attname: getattr(card, f.attname)
                                for f in ModelCard._meta.concrete_fields
                                if f.attname not in ("id", "model_version_id")
                            },
                        )
                    )
            ModelCard.objects.bulk_create(card_rows, batch_size=BATCH)
        return created

    # --- deployments ------------------------------------------------------------------------------

    def _requests(self, copies, versions) -> int:
        from apps.deployments.models import DeploymentRequest

        originals = list(DeploymentRequest.objects.all())
        rows = []
        for n in copies:
            for r in originals:
                copy_version = versions.get((r.model_version_id, n))
                if copy_version is None:
                    continue
                fields = {
                    f.attname: getattr(r, f.attname)
                    for f in DeploymentRequest._meta.concrete_fields
                    if f.attname not in ("id", "model_version_id")
                }
                fields["endpoint_name"] = f"{r.endpoint_name}-x{n}"[:100]
                rows.append(DeploymentRequest(model_version=copy_version, **fields))
        DeploymentRequest.objects.bulk_create(rows, batch_size=BATCH)
        return len(rows)


def _copy_shares(model, copy_of: dict[int, int]) -> None:
    """Give each copy its original's explicit shares: guardian's user and group rows of the
    original (the direct-FK tables), pointed at the copy."""
    from apps.accounts.sharing import guardian_tables

    for table in guardian_tables(model):
        fields = [f.attname for f in table._meta.concrete_fields if f.attname not in ("id", "content_object_id")]
        rows = [
            table(content_object_id=copy_of[row.content_object_id], **{name: getattr(row, name) for name in fields})
            for row in table.objects.filter(content_object_id__in=list(copy_of))
        ]
        table.objects.bulk_create(rows, batch_size=BATCH)


def _group(queryset, attribute: str) -> dict:
    grouped: dict = {}
    for row in queryset.iterator(chunk_size=BATCH):
        grouped.setdefault(getattr(row, attribute), []).append(row)
    return grouped
