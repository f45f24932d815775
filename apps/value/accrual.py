"""What the platform itself says a use case cost and earned, day by day (read side of the
accrual; services.accrue writes the entries).

Compute cost:
- Jobs: run time (started → finished, or now while running) of jobs whose target is linked to
  a use case — a linked dataset (or one of its versions: profiling), experiment (or run),
  registered model (or version: evaluation), endpoint, or a deployment request of a linked
  model (checks, deploy) — at the `job_hour_rate` of the request's environment, else of the
  default rate.
- Endpoints: every stretch a version served an endpoint (EndpointRevision, primary or canary;
  open stretches until now) of an endpoint linked to the use case or serving a version of a
  linked model, at the `endpoint_hour_rate` of the endpoint's environment, else the default.
- What is linked to several use cases is split evenly between them, so the portfolio never
  counts an hour twice. A use case in another currency than the rate's is skipped and named.
Value derived from predictions: predictions served per day by the same endpoints (from
monitoring) × the use case's value per prediction, split the same way.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.contrib.contenttypes.models import ContentType
from django.db.models import Q

from apps.deployments.models import DeploymentRequest, Endpoint, EndpointRevision
from apps.jobs.models import Job
from apps.value.models import ComputeRate, UseCase

HOUR = Decimal(3600)


def _day_bounds(day: date) -> tuple[datetime, datetime]:
    from apps.value.services import day_bounds

    return day_bounds(day)


def _split_by_day(begin: datetime, finish: datetime, start: date, end: date) -> dict[date, Decimal]:
    """Seconds of [begin, finish) falling on each day of [start, end]."""
    seconds: dict[date, Decimal] = {}
    day = start
    while day <= end:
        lo, hi = _day_bounds(day)
        overlap = (min(finish, hi) - max(begin, lo)).total_seconds()
        if overlap > 0:
            seconds[day] = Decimal(str(overlap))
        day += timedelta(days=1)
    return seconds


class Links:
    """Which use cases each linked object belongs to (four queries)."""

    def __init__(self) -> None:
        self.datasets = self._map(UseCase.datasets.through, "dataset_id")
        self.experiments = self._map(UseCase.experiments.through, "experiment_id")
        self.models = self._map(UseCase.registered_models.through, "registeredmodel_id")
        self.endpoints = self._map(UseCase.endpoints.through, "endpoint_id")
        ids = set()
        for mapping in (self.datasets, self.experiments, self.models, self.endpoints):
            for use_cases in mapping.values():
                ids |= use_cases
        self.use_cases = UseCase.objects.in_bulk(ids)

    @staticmethod
    def _map(through, column: str) -> dict[int, set[int]]:
        found: dict[int, set[int]] = defaultdict(set)
        for use_case_id, object_id in through.objects.values_list("usecase_id", column):
            found[object_id].add(use_case_id)
        return found

    def __bool__(self) -> bool:
        return bool(self.use_cases)


class Rates:
    def __init__(self) -> None:
        rows = list(ComputeRate.objects.all())
        self.by_environment = {row.environment_id: row for row in rows if row.environment_id}
        self.default = next((row for row in rows if row.environment_id is None), None)

    def for_environment(self, environment_id: int | None) -> ComputeRate | None:
        return self.by_environment.get(environment_id) or self.default


def _add(totals, skipped, use_case_ids, day_seconds, rate, hourly: Decimal, what: str, links: Links) -> None:
    if not use_case_ids or rate is None or hourly == 0:
        return
    share = Decimal(len(use_case_ids))
    for use_case_id in sorted(use_case_ids):
        use_case = links.use_cases[use_case_id]
        if use_case.currency != rate.currency:
            message = f"{use_case.name}: rates are in {rate.currency}, the use case in {use_case.currency}"
            if message not in skipped:
                skipped.append(message)
            continue
        for day, seconds in day_seconds.items():
            amount, notes = totals.get((use_case, day), (Decimal("0"), []))
            totals[(use_case, day)] = (amount + seconds / HOUR * hourly / share, notes + [what])


def compute_costs(*, start: date, end: date, now: datetime) -> tuple[dict, list[str]]:
    """{(use_case, day): (amount, note)} of compute cost, and the use cases skipped."""
    links = Links()
    if not links:
        return {}, []
    rates = Rates()
    range_start, _ = _day_bounds(start)
    _, range_end = _day_bounds(end)
    totals: dict = {}
    skipped: list[str] = []
    _job_costs(totals, skipped, links, rates, range_start, range_end, start, end, now)
    _endpoint_costs(totals, skipped, links, rates, range_start, range_end, start, end, now)
    return {key: (amount, _note(notes)) for key, (amount, notes) in totals.items()}, skipped


def _note(parts: list[str]) -> str:
    counts: dict[str, int] = defaultdict(int)
    for part in parts:
        counts[part.split(" ", 1)[0]] += 1
    return "Accrued from " + ", ".join(f"{n} {kind}{'s' if n > 1 else ''}" for kind, n in sorted(counts.items())) + "."


def _job_costs(totals, skipped, links, rates, range_start, range_end, start, end, now) -> None:
    types = ContentType.objects.get_for_models(*_job_target_models())
    type_ids = {model._meta.label_lower: content_type.pk for model, content_type in types.items()}
    jobs = list(
        Job.objects.filter(started_at__isnull=False, started_at__lt=range_end, target_type_id__in=type_ids.values())
        .filter(Q(finished_at__isnull=True) | Q(finished_at__gt=range_start))
        .exclude(target_id="")
        .values("pk", "kind", "target_type_id", "target_id", "started_at", "finished_at", "status")
    )
    if not jobs:
        return
    by_label = {pk: label for label, pk in type_ids.items()}
    ids: dict[str, set[int]] = defaultdict(set)
    for job in jobs:
        if job["target_id"].isdigit():
            ids[by_label[job["target_type_id"]]].add(int(job["target_id"]))
    resolve = _resolvers(ids)
    for job in jobs:
        if not job["target_id"].isdigit():
            continue
        if job["finished_at"] is None and job["status"] not in (Job.Status.RUNNING,):
            continue  # started once, then queued again for a retry: no clock running
        use_case_ids, environment_id = resolve(by_label[job["target_type_id"]], int(job["target_id"]), links)
        rate = rates.for_environment(environment_id)
        if rate is None:
            continue
        seconds = _split_by_day(job["started_at"], job["finished_at"] or now, start, end)
        _add(totals, skipped, use_case_ids, seconds, rate, rate.job_hour_rate, f"job {job['kind']}", links)


def _job_target_models():
    from apps.catalog.models import Dataset, DatasetVersion
    from apps.registry.models import ModelVersion, RegisteredModel
    from apps.tracking.models import Experiment, Run

    return (Dataset, DatasetVersion, Experiment, Run, RegisteredModel, ModelVersion, DeploymentRequest, Endpoint)


def _resolvers(ids: dict[str, set[int]]):
    """Turn each job target into (use case ids, environment id) with one query per target kind."""
    from apps.catalog.models import DatasetVersion
    from apps.registry.models import ModelVersion
    from apps.tracking.models import Run

    version_dataset = dict(
        DatasetVersion.objects.filter(pk__in=ids["catalog.datasetversion"]).values_list("pk", "dataset_id")
    )
    run_experiment = dict(Run.objects.filter(pk__in=ids["tracking.run"]).values_list("pk", "experiment_id"))
    version_model = dict(
        ModelVersion.objects.filter(pk__in=ids["registry.modelversion"]).values_list("pk", "registered_model_id")
    )
    requests = {
        pk: (model_id, environment_id)
        for pk, model_id, environment_id in DeploymentRequest.objects.filter(
            pk__in=ids["deployments.deploymentrequest"]
        ).values_list("pk", "model_version__registered_model_id", "environment_id")
    }
    endpoint_environment = dict(
        Endpoint.objects.filter(pk__in=ids["deployments.endpoint"]).values_list("pk", "environment_id")
    )

    def resolve(label: str, pk: int, links: Links) -> tuple[set[int], int | None]:
        if label == "catalog.dataset":
            return links.datasets.get(pk, set()), None
        if label == "catalog.datasetversion":
            return links.datasets.get(version_dataset.get(pk), set()), None
        if label == "tracking.experiment":
            return links.experiments.get(pk, set()), None
        if label == "tracking.run":
            return links.experiments.get(run_experiment.get(pk), set()), None
        if label == "registry.registeredmodel":
            return links.models.get(pk, set()), None
        if label == "registry.modelversion":
            return links.models.get(version_model.get(pk), set()), None
        if label == "deployments.deploymentrequest" and pk in requests:
            model_id, environment_id = requests[pk]
            return links.models.get(model_id, set()), environment_id
        if label == "deployments.endpoint":
            return links.endpoints.get(pk, set()), endpoint_environment.get(pk)
        return set(), None

    return resolve


def _endpoint_use_cases(links: Links, endpoint_id: int, model_id: int | None) -> set[int]:
    return links.endpoints.get(endpoint_id, set()) | (links.models.get(model_id, set()) if model_id else set())


def _endpoint_costs(totals, skipped, links, rates, range_start, range_end, start, end, now) -> None:
    revisions = (
        EndpointRevision.objects.filter(started_at__lt=range_end)
        .filter(Q(ended_at__isnull=True) | Q(ended_at__gt=range_start))
        .filter(Q(endpoint_id__in=list(links.endpoints)) | Q(model_version__registered_model_id__in=list(links.models)))
        .values_list(
            "endpoint_id",
            "endpoint__name",
            "endpoint__environment_id",
            "model_version__registered_model_id",
            "started_at",
            "ended_at",
        )
    )
    for endpoint_id, name, environment_id, model_id, started_at, ended_at in revisions:
        rate = rates.for_environment(environment_id)
        if rate is None:
            continue
        seconds = _split_by_day(started_at, ended_at or now, start, end)
        use_case_ids = _endpoint_use_cases(links, endpoint_id, model_id)
        _add(totals, skipped, use_case_ids, seconds, rate, rate.endpoint_hour_rate, f"endpoint {name}", links)


def predictions_by_day(endpoints: list[Endpoint], *, start: date, end: date) -> dict[tuple[int, date], int]:
    """Predictions served per endpoint and day, from monitoring (an empty answer while
    monitoring does not provide `predictions_served_by_day`)."""
    try:
        from apps.monitoring.selectors import predictions_served_by_day
    except ImportError:
        return {}
    range_start, _ = _day_bounds(start)
    _, range_end = _day_bounds(end)
    found = predictions_served_by_day(endpoints, start=range_start, end=range_end)
    result: dict[tuple[int, date], int] = {}
    for (endpoint_id, day), count in (found or {}).items():
        day = day.date() if isinstance(day, datetime) else day
        if start <= day <= end:
            result[(endpoint_id, day)] = result.get((endpoint_id, day), 0) + int(count or 0)
    return result


def prediction_values(*, start: date, end: date) -> tuple[dict, list[str]]:
    """{(use_case, day): (amount, evidence)} of value derived from predictions served."""
    links = Links()
    if not links:
        return {}, []
    priced = {pk: uc for pk, uc in links.use_cases.items() if uc.value_per_prediction}
    if not priced:
        return {}, []
    endpoints = list(
        Endpoint.objects.filter(
            Q(pk__in=list(links.endpoints)) | Q(revisions__model_version__registered_model_id__in=list(links.models))
        )
        .distinct()
        .prefetch_related("revisions__model_version")
    )
    if not endpoints:
        return {}, []
    # Which use cases each endpoint's predictions count for: linked directly, or through any
    # model it has served.
    endpoint_use_cases: dict[int, set[int]] = {}
    for endpoint in endpoints:
        model_ids = {revision.model_version.registered_model_id for revision in endpoint.revisions.all()}
        ids = set(links.endpoints.get(endpoint.pk, set()))
        for model_id in model_ids:
            ids |= links.models.get(model_id, set())
        endpoint_use_cases[endpoint.pk] = ids
    counts = predictions_by_day(endpoints, start=start, end=end)
    names = {endpoint.pk: endpoint.name for endpoint in endpoints}
    totals: dict = {}
    for (endpoint_id, day), count in counts.items():
        ids = endpoint_use_cases.get(endpoint_id, set())
        if not ids or not count:
            continue
        share = Decimal(len(ids))
        for use_case_id in ids:
            use_case = priced.get(use_case_id)
            if use_case is None:
                continue
            amount, parts = totals.get((use_case, day), (Decimal("0"), []))
            parts = parts + [
                f"{count} predictions on {names[endpoint_id]}" + (f" (1/{len(ids)} share)" if len(ids) > 1 else "")
            ]
            totals[(use_case, day)] = (amount + Decimal(count) * use_case.value_per_prediction / share, parts)
    return {
        key: (amount, "; ".join(parts) + f" × {key[0].value_per_prediction} {key[0].currency} per prediction.")
        for key, (amount, parts) in totals.items()
    }, []
