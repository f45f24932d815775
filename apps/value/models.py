"""Business value: use cases (the business initiative a model serves), what they cost and what
they return, and the rates compute cost is accrued at.

Money is `Decimal` everywhere (DecimalField, 2 places), never float. Each use case has one
currency (the organisation's, `CAUSEWAY_CURRENCY`, by default) and every entry carries its own
currency so a mixture can be detected and refused: Causeway never converts between currencies.

A use case is a governed object like a registered model: owner (its business owner), team and
visibility columns plus guardian direct-FK share tables, so "which use cases may this user see"
is one indexed query.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from guardian.models import GroupObjectPermissionBase, UserObjectPermissionBase

from apps.accounts.models import Team
from apps.catalog.models import Dataset
from apps.deployments.models import Endpoint, Environment
from apps.registry.models import RegisteredModel
from apps.tracking.models import Experiment

MONEY = {"max_digits": 16, "decimal_places": 2}


def organisation_currency() -> str:
    """The organisation's currency (ISO 4217 code), `CAUSEWAY_CURRENCY` (default EUR)."""
    return getattr(settings, "CAUSEWAY_CURRENCY", "EUR")


class Stage(models.TextChoices):
    IDEA = "idea", "Idea"
    SCOPING = "scoping", "Scoping"
    DEVELOPMENT = "development", "Development"
    VALIDATION = "validation", "Validation"
    PRODUCTION = "production", "Production"
    RETIRED = "retired", "Retired"


STAGE_ORDER: tuple[str, ...] = tuple(stage.value for stage in Stage)


class UseCase(models.Model):
    class Visibility(models.TextChoices):
        ORGANISATION = "organisation", "Everyone in the organisation"
        PRIVATE = "private", "Owner, team and those it is shared with"

    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=200, unique=True)
    description = models.TextField(blank=True, help_text="Markdown.")
    # The business owner: answers for the business case, manages the use case.
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="use_cases")
    sponsor = models.CharField(max_length=200, blank=True, help_text="Who funds it (a name or role).")
    team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.SET_NULL, related_name="use_cases")
    visibility = models.CharField(max_length=16, choices=Visibility.choices, default=Visibility.ORGANISATION)
    stage = models.CharField(max_length=12, choices=Stage.choices, default=Stage.IDEA)
    kpi = models.CharField("business KPI", max_length=300, blank=True)
    currency = models.CharField(max_length=3, default=organisation_currency)
    expected_annual_value = models.DecimalField(
        **MONEY, null=True, blank=True, validators=[MinValueValidator(Decimal("0"))]
    )
    value_assumptions = models.TextField(blank=True, help_text="Markdown: how the expected value was estimated.")
    # For value derived from the platform: each prediction served by a linked endpoint is worth this.
    value_per_prediction = models.DecimalField(
        max_digits=16, decimal_places=6, null=True, blank=True, validators=[MinValueValidator(Decimal("0"))]
    )
    target_production_date = models.DateField(null=True, blank=True)
    target_payback_date = models.DateField(null=True, blank=True)
    risks = models.TextField(blank=True, help_text="Markdown.")
    datasets = models.ManyToManyField(Dataset, blank=True, related_name="use_cases")
    experiments = models.ManyToManyField(Experiment, blank=True, related_name="use_cases")
    registered_models = models.ManyToManyField(RegisteredModel, blank=True, related_name="use_cases")
    endpoints = models.ManyToManyField(Endpoint, blank=True, related_name="use_cases")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        indexes = [
            models.Index(fields=["visibility", "name"], name="usecase_visibility_name_idx"),
            models.Index(fields=["owner", "name"], name="usecase_owner_name_idx"),
            models.Index(fields=["team", "name"], name="usecase_team_name_idx"),
            models.Index(fields=["stage"], name="usecase_stage_idx"),
        ]

    def __str__(self) -> str:
        return self.name


class UseCaseUserObjectPermission(UserObjectPermissionBase):
    content_object = models.ForeignKey(UseCase, on_delete=models.CASCADE)


class UseCaseGroupObjectPermission(GroupObjectPermissionBase):
    content_object = models.ForeignKey(UseCase, on_delete=models.CASCADE)


class StageChange(models.Model):
    """One move of a use case between stages (the first row: its creation, from ""): who, when,
    why. The stage funnel and time to production are read from these rows."""

    use_case = models.ForeignKey(UseCase, on_delete=models.CASCADE, related_name="stage_changes")
    from_stage = models.CharField(max_length=12, choices=Stage.choices, blank=True)
    to_stage = models.CharField(max_length=12, choices=Stage.choices)
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    changed_at = models.DateTimeField(default=timezone.now)
    note = models.TextField(blank=True)

    class Meta:
        ordering = ["changed_at", "id"]
        indexes = [models.Index(fields=["use_case", "changed_at"], name="stagechange_history_idx")]

    def __str__(self) -> str:
        return f"{self.use_case_id}: {self.from_stage or '—'} → {self.to_stage}"


class _MoneyEntry(models.Model):
    """An amount over a period (both ends inclusive, whole days)."""

    period_start = models.DateField()
    period_end = models.DateField()
    amount = models.DecimalField(**MONEY)
    currency = models.CharField(max_length=3, default=organisation_currency)
    note = models.TextField(blank=True)
    # Rows written by the accrual task are keyed so running it again updates them in place.
    accrual_key = models.CharField(max_length=100, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True
        ordering = ["period_start", "id"]

    @property
    def days(self) -> int:
        return (self.period_end - self.period_start).days + 1

    def clean(self) -> None:
        if self.period_start and self.period_end and self.period_end < self.period_start:
            raise ValidationError({"period_end": "The period ends before it starts."})


class CostEntry(_MoneyEntry):
    class Category(models.TextChoices):
        PEOPLE = "people", "People"
        COMPUTE = "compute", "Compute"
        DATA = "data", "Data"
        LICENCES = "licences", "Licences"
        INFRASTRUCTURE = "infrastructure", "Infrastructure"

    class Source(models.TextChoices):
        ENTERED = "entered", "Entered"
        IMPORTED = "imported", "Imported from CSV"
        ACCRUED = "accrued", "Accrued from jobs and endpoints"

    use_case = models.ForeignKey(UseCase, on_delete=models.CASCADE, related_name="costs")
    category = models.CharField(max_length=16, choices=Category.choices)
    source = models.CharField(max_length=10, choices=Source.choices, default=Source.ENTERED)

    class Meta(_MoneyEntry.Meta):
        indexes = [models.Index(fields=["use_case", "period_start"], name="costentry_period_idx")]
        constraints = [
            models.CheckConstraint(condition=Q(period_end__gte=F("period_start")), name="costentry_period_order"),
            models.CheckConstraint(condition=Q(amount__gte=0), name="costentry_amount_not_negative"),
            models.UniqueConstraint(
                fields=["use_case", "accrual_key"], condition=~Q(accrual_key=""), name="costentry_accrual_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.category} {self.amount} {self.currency} ({self.period_start}–{self.period_end})"


class ValueEntry(_MoneyEntry):
    class Method(models.TextChoices):
        ENTERED = "entered", "Entered with evidence"
        IMPORTED = "imported", "Imported from CSV"
        DERIVED_PREDICTIONS = "derived_predictions", "Derived: predictions served × value per prediction"
        DERIVED_KPI_UPLIFT = "derived_kpi_uplift", "Derived: KPI uplift of an A/B comparison"

    use_case = models.ForeignKey(UseCase, on_delete=models.CASCADE, related_name="values")
    method = models.CharField(max_length=20, choices=Method.choices, default=Method.ENTERED)
    evidence = models.TextField(blank=True, help_text="How the value was measured (Markdown).")
    evidence_url = models.URLField(max_length=1000, blank=True)

    class Meta(_MoneyEntry.Meta):
        # Value may be negative: a model can lose money, and the books must say so.
        indexes = [models.Index(fields=["use_case", "period_start"], name="valueentry_period_idx")]
        constraints = [
            models.CheckConstraint(condition=Q(period_end__gte=F("period_start")), name="valueentry_period_order"),
            models.UniqueConstraint(
                fields=["use_case", "accrual_key"], condition=~Q(accrual_key=""), name="valueentry_accrual_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.method} {self.amount} {self.currency} ({self.period_start}–{self.period_end})"


class ComputeRate(models.Model):
    """What an hour of compute costs. One row per deployment environment (endpoint hours and the
    jobs of deployment requests there) and one default row without environment (other jobs,
    and environments without a row of their own)."""

    environment = models.OneToOneField(
        Environment, null=True, blank=True, on_delete=models.CASCADE, related_name="compute_rate"
    )
    endpoint_hour_rate = models.DecimalField(max_digits=12, decimal_places=4, validators=[MinValueValidator(0)])
    job_hour_rate = models.DecimalField(max_digits=12, decimal_places=4, validators=[MinValueValidator(0)])
    currency = models.CharField(max_length=3, default=organisation_currency)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["environment__name"]
        constraints = [
            models.UniqueConstraint(
                fields=["currency"], condition=Q(environment__isnull=True), name="computerate_one_default"
            ),
            models.CheckConstraint(
                condition=Q(endpoint_hour_rate__gte=0, job_hour_rate__gte=0), name="computerate_not_negative"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.environment or 'default'}: {self.endpoint_hour_rate}/h endpoint, {self.job_hour_rate}/h job"
