"""Every read of use cases, costs and value, filtered by what the user may see. Visibility is
one indexed query (owner / team / organisation-wide columns plus direct-FK guardian shares), the
same shape as the registry's; the portfolio reads all its figures in a fixed number of queries
whatever the number of use cases, and sums only the use cases the user may see."""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from django.db.models import Q, QuerySet
from django.utils import timezone

from apps.accounts.models import Team
from apps.catalog.selectors import visible_datasets
from apps.deployments.selectors import visible_endpoints
from apps.registry.selectors import visible_models
from apps.tracking.selectors import visible_experiments
from apps.value import permissions, roi
from apps.value.models import (
    STAGE_ORDER,
    CostEntry,
    Stage,
    StageChange,
    UseCase,
    UseCaseGroupObjectPermission,
    UseCaseUserObjectPermission,
    ValueEntry,
)

SHARE_CODENAMES = ("view_usecase", "change_usecase")


def visible_use_cases(user) -> QuerySet[UseCase]:
    """Use cases `user` knows exist."""
    if not user.is_authenticated:
        return UseCase.objects.none()
    if permissions.is_admin(user):
        return UseCase.objects.all()
    shared_to_user = UseCaseUserObjectPermission.objects.filter(
        user=user, permission__codename__in=SHARE_CODENAMES
    ).values("content_object_id")
    shared_to_groups = UseCaseGroupObjectPermission.objects.filter(
        group__user=user, permission__codename__in=SHARE_CODENAMES
    ).values("content_object_id")
    return UseCase.objects.filter(
        Q(visibility=UseCase.Visibility.ORGANISATION)
        | Q(owner=user)
        | Q(team_id__in=permissions.team_ids(user))
        | Q(pk__in=shared_to_user)
        | Q(pk__in=shared_to_groups)
    )


def use_case_for(user, slug: str) -> UseCase | None:
    """The visible use case `slug`, with owner and team, or None (unknown or hidden)."""
    if not slug:
        return None
    return visible_use_cases(user).select_related("owner", "team", "team__lead").filter(slug=slug).first()


def can_view_use_case_id(user, object_id: str) -> bool:
    """For the audit history pages (registered in ValueConfig.ready)."""
    return str(object_id).isdigit() and visible_use_cases(user).filter(pk=int(object_id)).exists()


# --- One use case -----------------------------------------------------------------------------


def costs_of(use_case: UseCase) -> list[CostEntry]:
    return list(CostEntry.objects.filter(use_case=use_case).select_related("created_by").order_by("period_start", "id"))


def values_of(use_case: UseCase) -> list[ValueEntry]:
    return list(
        ValueEntry.objects.filter(use_case=use_case).select_related("created_by").order_by("period_start", "id")
    )


def summary_of(
    use_case: UseCase,
    *,
    costs: list[CostEntry] | None = None,
    values: list[ValueEntry] | None = None,
    start: date | None = None,
    end: date | None = None,
) -> roi.Summary:
    """Cost, value, net, ROI, payback and forecast of one use case over [start, end]. Raises
    roi.MixedCurrencyError when an entry is in another currency than the use case's."""
    costs = costs_of(use_case) if costs is None else costs
    values = values_of(use_case) if values is None else values
    return roi.summarise(
        costs=costs,
        values=values,
        currency=use_case.currency,
        start=start,
        end=end,
        expected_annual_value=use_case.expected_annual_value,
        forecast_from=use_case.target_production_date,
        today=timezone.localdate(),
    )


def stage_history(use_case: UseCase) -> list[StageChange]:
    return list(use_case.stage_changes.select_related("changed_by").order_by("changed_at", "id"))


def linked_objects(user, use_case: UseCase) -> dict[str, list]:
    """The datasets, experiments, models and endpoints linked to the use case that `user` may
    see (hidden ones are neither shown nor counted), the models with the endpoints serving
    them now. A fixed number of queries."""
    models = list(visible_models(user).filter(use_cases=use_case).select_related("owner").order_by("name"))
    endpoints = list(
        visible_endpoints(user)
        .filter(Q(use_cases=use_case) | Q(current_version__registered_model__in=[m.pk for m in models]))
        .select_related("environment", "current_version__registered_model")
        .distinct()
        .order_by("name")
    )
    serving: dict[int, list] = defaultdict(list)
    for endpoint in endpoints:
        if endpoint.current_version_id:
            serving[endpoint.current_version.registered_model_id].append(endpoint)
    for model in models:
        model.serving_endpoints = serving.get(model.pk, [])
    return {
        "datasets": list(visible_datasets(user).filter(use_cases=use_case).order_by("name")),
        "experiments": list(visible_experiments(user).filter(use_cases=use_case).order_by("name")),
        "models": models,
        "endpoints": endpoints,
    }


def linkable_choices(user) -> dict[str, QuerySet]:
    """What `user` may link a use case to: only objects they may see."""
    return {
        "datasets": visible_datasets(user).order_by("name"),
        "experiments": visible_experiments(user, include_deleted=False).order_by("name"),
        "registered_models": visible_models(user).order_by("name"),
        "endpoints": visible_endpoints(user).order_by("name"),
    }


# --- The portfolio ----------------------------------------------------------------------------


@dataclass
class PortfolioRow:
    use_case: UseCase
    summary: roi.Summary | None
    error: str = ""
    days_to_production: int | None = None


@dataclass
class Portfolio:
    rows: list[PortfolioRow]
    # Figures per currency: use cases in different currencies are never added together.
    totals: dict[str, roi.Summary]
    funnel: list[tuple[str, str, int]]
    median_days_to_production: float | None
    start: date | None = None
    end: date | None = None
    errors: list[str] = field(default_factory=list)

    @property
    def ranked(self) -> list[PortfolioRow]:
        """By ROI, best first; use cases with no cost (ROI n/a) last."""
        with_roi = [row for row in self.rows if row.summary is not None and row.summary.roi is not None]
        without = [row for row in self.rows if row not in with_roi]
        return sorted(with_roi, key=lambda row: row.summary.roi, reverse=True) + without


def filtered_use_cases(user, *, team: Team | None = None, stage: str = "", search: str = "") -> QuerySet[UseCase]:
    use_cases = visible_use_cases(user)
    if team is not None:
        use_cases = use_cases.filter(team=team)
    if stage:
        use_cases = use_cases.filter(stage=stage)
    if search:
        use_cases = use_cases.filter(name__icontains=search)
    return use_cases


def portfolio(
    user,
    *,
    team: Team | None = None,
    stage: str = "",
    search: str = "",
    start: date | None = None,
    end: date | None = None,
) -> Portfolio:
    """Every visible use case (filtered by team, stage and name) with its figures over
    [start, end], totals per currency, the stage funnel and time to production. Four queries
    whatever the number of use cases."""
    use_cases = list(
        filtered_use_cases(user, team=team, stage=stage, search=search).select_related("owner", "team").order_by("name")
    )
    ids = [use_case.pk for use_case in use_cases]
    costs: dict[int, list[CostEntry]] = defaultdict(list)
    values: dict[int, list[ValueEntry]] = defaultdict(list)
    entry_filter = Q(use_case_id__in=ids)
    if start:
        entry_filter &= Q(period_end__gte=start)
    if end:
        entry_filter &= Q(period_start__lte=end)
    for entry in CostEntry.objects.filter(entry_filter).order_by("period_start", "id"):
        costs[entry.use_case_id].append(entry)
    for entry in ValueEntry.objects.filter(entry_filter).order_by("period_start", "id"):
        values[entry.use_case_id].append(entry)
    first_production: dict[int, object] = {}
    created: dict[int, object] = {}
    for use_case_id, to_stage, changed_at in (
        StageChange.objects.filter(use_case_id__in=ids)
        .order_by("changed_at", "id")
        .values_list("use_case_id", "to_stage", "changed_at")
    ):
        created.setdefault(use_case_id, changed_at)
        if to_stage == Stage.PRODUCTION:
            first_production.setdefault(use_case_id, changed_at)

    rows: list[PortfolioRow] = []
    totals: dict[str, roi.Summary] = {}
    errors: list[str] = []
    for use_case in use_cases:
        row = PortfolioRow(use_case=use_case, summary=None)
        try:
            row.summary = summary_of(
                use_case, costs=costs[use_case.pk], values=values[use_case.pk], start=start, end=end
            )
        except roi.MixedCurrencyError as exc:
            row.error = str(exc)
            errors.append(f"{use_case.name}: {exc}")
        if use_case.pk in first_production:
            began = created.get(use_case.pk, use_case.created_at)
            row.days_to_production = max(0, (first_production[use_case.pk] - began).days)
        rows.append(row)
        if row.summary is not None:
            total = totals.setdefault(use_case.currency, roi.Summary(currency=use_case.currency, start=start, end=end))
            total.cost += row.summary.cost
            total.value += row.summary.value
            if row.summary.forecast_value is not None:
                total.forecast_value = (total.forecast_value or Decimal("0")) + row.summary.forecast_value
    counts = defaultdict(int)
    for use_case in use_cases:
        counts[use_case.stage] += 1
    funnel = [(stage_value, Stage(stage_value).label, counts[stage_value]) for stage_value in STAGE_ORDER]
    days = [row.days_to_production for row in rows if row.days_to_production is not None]
    return Portfolio(
        rows=rows,
        totals=dict(sorted(totals.items())),
        funnel=funnel,
        median_days_to_production=statistics.median(days) if days else None,
        start=start,
        end=end,
        errors=errors,
    )


def home_widget(user) -> dict:
    """The business owner's home card: counts by stage, totals per currency (all time), and the
    use cases they own, best ROI first. Same four queries as the portfolio."""
    figures = portfolio(user)
    mine = [row for row in figures.ranked if row.use_case.owner_id == user.pk][:5]
    return {
        "portfolio": figures,
        "count": len(figures.rows),
        "in_production": sum(1 for row in figures.rows if row.use_case.stage == Stage.PRODUCTION),
        "mine": mine,
    }
