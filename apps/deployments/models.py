"""Deployments: environments and their approval policy, deployment requests moving through
their states, the checks and approvals on them, and the live endpoints with their history.

The workflow lives in services.py (one function per transition, each under a row lock and
audited); these models hold the data and its invariants. "Who approved, who pushed it out and
who is responsible" is read from the rows: Approval (who, when, why), DeploymentRequest
(requester, deployed_by), Endpoint (owner, team) and EndpointRevision (what served when).
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from guardian.models import GroupObjectPermissionBase, UserObjectPermissionBase

from apps.accounts.models import Team
from apps.jobs.models import Job
from apps.registry.models import ModelVersion

PERCENT = [MinValueValidator(0), MaxValueValidator(100)]


class Environment(models.Model):
    """Where models are deployed (staging, production) and the policy a request must meet."""

    name = models.SlugField(max_length=50, unique=True)
    description = models.TextField(blank=True)
    display_order = models.PositiveSmallIntegerField(default=0)
    # Four-eyes by default: the requester's own approval never counts.
    allow_self_approval = models.BooleanField(default=False)
    min_card_completeness = models.PositiveSmallIntegerField(default=0, validators=PERCENT)
    # [{"metric": "roc_auc", "op": ">=", "value": 0.7}], against the version's run latest metrics.
    metric_thresholds = models.JSONField(default=list, blank=True)
    forbid_unapproved_pii = models.BooleanField(default=True)
    require_evaluation_job = models.BooleanField(default=False)
    # {"days": [0..6] (Monday = 0), "start": "HH:MM", "end": "HH:MM"} in UTC; null: any time.
    change_window = models.JSONField(null=True, blank=True)
    request_expiry_hours = models.PositiveIntegerField(default=72, validators=[MinValueValidator(1)])
    # Approvers re-enter their password to approve or reject (production).
    requires_step_up = models.BooleanField(default=False)
    # Whether models that load by unpickling (sklearn pickles, pyfunc python_model.pkl) may be served.
    allow_pickle = models.BooleanField(default=False)
    # Who may push an approved request out; null: the requester (or admins).
    deployer_team = models.ForeignKey(
        Team, null=True, blank=True, on_delete=models.SET_NULL, related_name="deployer_for_environments"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["display_order", "name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(min_card_completeness__lte=100), name="environment_completeness_at_most_100"
            ),
            models.CheckConstraint(condition=Q(request_expiry_hours__gte=1), name="environment_expiry_positive"),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        from apps.deployments import policy

        errors = {}
        try:
            self.metric_thresholds = policy.clean_metric_thresholds(self.metric_thresholds)
        except ValidationError as exc:
            errors["metric_thresholds"] = exc.messages
        try:
            self.change_window = policy.clean_change_window(self.change_window)
        except ValidationError as exc:
            errors["change_window"] = exc.messages
        if errors:
            raise ValidationError(errors)


class ApprovalRule(models.Model):
    """N approvals from members of one team, or from holders of one role."""

    environment = models.ForeignKey(Environment, on_delete=models.CASCADE, related_name="approval_rules")
    team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.PROTECT, related_name="approval_rules")
    role = models.CharField(max_length=150, blank=True, help_text="A role name from accounts.roles.")
    required_approvals = models.PositiveSmallIntegerField(default=1, validators=[MinValueValidator(1)])

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(
                condition=(Q(team__isnull=False) & Q(role="")) | (Q(team__isnull=True) & ~Q(role="")),
                name="approval_rule_team_xor_role",
            ),
            models.CheckConstraint(condition=Q(required_approvals__gte=1), name="approval_rule_at_least_one"),
        ]

    def __str__(self) -> str:
        return f"{self.required_approvals} from {self.who}"

    @property
    def who(self) -> str:
        return f"team {self.team.name}" if self.team_id else f"role {self.role}"

    def clean(self) -> None:
        from apps.accounts.roles import ALL_ROLES

        if bool(self.team_id) == bool(self.role):
            raise ValidationError("A rule names exactly one team or one role.")
        if self.role and self.role not in ALL_ROLES:
            raise ValidationError({"role": f"Unknown role {self.role!r}."})


class DeploymentRequest(models.Model):
    class State(models.TextChoices):
        DRAFT = "draft", "Draft"
        PENDING = "pending", "Pending approval"
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"
        EXPIRED = "expired", "Expired"
        WITHDRAWN = "withdrawn", "Withdrawn"
        DEPLOYING = "deploying", "Deploying"
        LIVE = "live", "Live"
        ROLLED_BACK = "rolled_back", "Rolled back"
        RETIRED = "retired", "Retired"
        FAILED = "failed", "Failed"

    class Rollout(models.TextChoices):
        REPLACE = "replace", "Replace the live version"
        CANARY = "canary", "Canary (a share of traffic)"

    OPEN_STATES = (State.DRAFT, State.PENDING, State.APPROVED, State.DEPLOYING)

    model_version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="deployment_requests")
    environment = models.ForeignKey(Environment, on_delete=models.PROTECT, related_name="requests")
    requester = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="deployment_requests"
    )
    endpoint_name = models.SlugField(max_length=100)
    justification = models.TextField()
    risk_note = models.TextField(blank=True)
    rollout = models.CharField(max_length=10, choices=Rollout.choices, default=Rollout.REPLACE)
    canary_percent = models.PositiveSmallIntegerField(default=0, validators=PERCENT)
    state = models.CharField(max_length=12, choices=State.choices, default=State.DRAFT)
    state_reason = models.TextField(blank=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    deployed_at = models.DateTimeField(null=True, blank=True)
    # Who pushed it out (started the deploy): with the approvals, the answer to "who did this".
    deployed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    checks_job = models.ForeignKey(Job, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    deploy_job = models.ForeignKey(Job, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # The approvers' inbox: pending requests per environment, oldest first.
            models.Index(fields=["state", "environment", "submitted_at"], name="deployreq_inbox_idx"),
            models.Index(fields=["requester", "-created_at"], name="deployreq_requester_idx"),
            models.Index(fields=["model_version", "-created_at"], name="deployreq_version_idx"),
            models.Index(fields=["endpoint_name", "state"], name="deployreq_endpoint_idx"),
            # The expiry sweep.
            models.Index(fields=["state", "expires_at"], name="deployreq_expiry_idx"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(canary_percent__lte=100), name="deployreq_canary_at_most_100"),
            models.CheckConstraint(
                condition=~Q(rollout="canary") | Q(canary_percent__gte=1, canary_percent__lte=99),
                name="deployreq_canary_share_1_to_99",
            ),
            # The last line of defence against two deploys racing onto one endpoint.
            models.UniqueConstraint(
                fields=["endpoint_name"], condition=Q(state="deploying"), name="deployreq_one_deploy_per_endpoint"
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.model_version} → {self.environment}/{self.endpoint_name}"

    def clean(self) -> None:
        if self.rollout == self.Rollout.CANARY and not 1 <= (self.canary_percent or 0) <= 99:
            raise ValidationError({"canary_percent": "A canary takes between 1 and 99 % of the traffic."})


class CheckResult(models.Model):
    class Status(models.TextChoices):
        PASS = "pass", "Passed"
        FAIL = "fail", "Failed"
        ERROR = "error", "Could not be checked"

    request = models.ForeignKey(DeploymentRequest, on_delete=models.CASCADE, related_name="checks")
    name = models.CharField(max_length=150)
    status = models.CharField(max_length=5, choices=Status.choices)
    evidence = models.JSONField(default=dict, blank=True)
    checked_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["request", "name"], name="check_result_unique_name")]

    def __str__(self) -> str:
        return f"{self.name}: {self.status}"


class Approval(models.Model):
    class Decision(models.TextChoices):
        APPROVE = "approve", "Approved"
        REJECT = "reject", "Rejected"

    request = models.ForeignKey(DeploymentRequest, on_delete=models.CASCADE, related_name="approvals")
    approver = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="approvals")
    decision = models.CharField(max_length=7, choices=Decision.choices)
    comment = models.TextField()
    # The rule this approval counts towards (reassigned when a later approval needs a better fit).
    rule = models.ForeignKey(ApprovalRule, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    step_up = models.BooleanField(default=False, help_text="The approver re-entered their password.")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [models.UniqueConstraint(fields=["request", "approver"], name="approval_one_per_approver")]
        indexes = [models.Index(fields=["approver", "-created_at"], name="approval_approver_idx")]

    def __str__(self) -> str:
        return f"{self.approver} {self.decision} #{self.request_id}"


class Endpoint(models.Model):
    """A named, live scoring endpoint: the version serving it now, the one before (for a
    rollback) and an optional canary taking a share of the traffic."""

    class State(models.TextChoices):
        LIVE = "live", "Live"
        RETIRED = "retired", "Retired"

    name = models.SlugField(max_length=100, unique=True)
    environment = models.ForeignKey(Environment, on_delete=models.PROTECT, related_name="endpoints")
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="endpoints")
    team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.SET_NULL, related_name="endpoints")
    current_version = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="endpoints_serving"
    )
    previous_version = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    canary_version = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="endpoints_canary"
    )
    canary_percent = models.PositiveSmallIntegerField(default=0, validators=PERCENT)
    state = models.CharField(max_length=8, choices=State.choices, default=State.LIVE)
    live_request = models.ForeignKey(
        DeploymentRequest, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        permissions = [("invoke_endpoint", "Can call the endpoint")]
        indexes = [
            models.Index(fields=["environment", "state"], name="endpoint_env_state_idx"),
            models.Index(fields=["owner"], name="endpoint_owner_idx"),
            models.Index(fields=["team"], name="endpoint_team_idx"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(canary_percent__lte=100), name="endpoint_canary_at_most_100"),
            models.CheckConstraint(
                condition=Q(canary_version__isnull=True, canary_percent=0)
                | Q(canary_version__isnull=False, canary_percent__gte=1, canary_percent__lte=99),
                name="endpoint_canary_needs_share",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class EndpointUserObjectPermission(UserObjectPermissionBase):
    content_object = models.ForeignKey(Endpoint, on_delete=models.CASCADE)


class EndpointGroupObjectPermission(GroupObjectPermissionBase):
    content_object = models.ForeignKey(Endpoint, on_delete=models.CASCADE)


class EndpointRevision(models.Model):
    """One stretch of time a version served (a share of) an endpoint: the endpoint's history."""

    class Role(models.TextChoices):
        PRIMARY = "primary", "Primary"
        CANARY = "canary", "Canary"

    endpoint = models.ForeignKey(Endpoint, on_delete=models.CASCADE, related_name="revisions")
    model_version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="endpoint_revisions")
    request = models.ForeignKey(
        DeploymentRequest, null=True, blank=True, on_delete=models.SET_NULL, related_name="revisions"
    )
    role = models.CharField(max_length=7, choices=Role.choices, default=Role.PRIMARY)
    traffic_percent = models.PositiveSmallIntegerField(default=100, validators=PERCENT)
    started_at = models.DateTimeField(default=timezone.now)
    ended_at = models.DateTimeField(null=True, blank=True)
    # replaced, canary_replaced, rollback, retired, promoted
    ended_by_action = models.CharField(max_length=30, blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        indexes = [
            models.Index(fields=["endpoint", "-started_at"], name="endpoint_revision_history_idx"),
            models.Index(fields=["model_version"], name="endpoint_revision_version_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.endpoint_id} {self.role} {self.model_version_id}"
