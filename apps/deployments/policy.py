"""The deployment policy engine.

Approvals (pure, no queries): `evaluate` takes an environment's rules, the requester, the
approvals so far and each approver's roles and teams, and answers which rules are satisfied,
whether the request is fully approved and whether one more person's approval would count.
A person counts once, towards one rule: approvers are matched to the rules' open slots by a
maximum bipartite matching, so someone who is both in the Approvers role and in the Model Risk
team fills whichever slot leaves room for the others (a greedy first-fit would sometimes
strand a later approver). The requester never counts unless the environment allows
self-approval (four-eyes by default).

Checks (read the database): `run_checks` evaluates the environment's required checks for one
request and returns one `CheckOutcome` per check, with the evidence shown to approvers.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.utils import timezone

EVALUATION_JOB = "deployments.evaluate"

OPERATORS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}
DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")

PASS, FAIL, ERROR = "pass", "fail", "error"


# --- Policy input checks ----------------------------------------------------------------------


def clean_metric_thresholds(value: Any) -> list[dict[str, Any]]:
    """[{"metric", "op", "value"}] with a known operator and a finite number; raises
    ValidationError naming the bad row."""
    if value in (None, ""):
        return []
    if not isinstance(value, list):
        raise ValidationError("Metric thresholds are a list of {metric, op, value}.")
    cleaned = []
    for index, row in enumerate(value, start=1):
        if not isinstance(row, Mapping):
            raise ValidationError(f"Threshold {index}: expected {{metric, op, value}}.")
        metric = str(row.get("metric") or "").strip()
        op = str(row.get("op") or "").strip()
        if not metric or len(metric) > 250:
            raise ValidationError(f"Threshold {index}: name the metric (at most 250 characters).")
        if op not in OPERATORS:
            raise ValidationError(f"Threshold {index}: the operator must be one of {', '.join(OPERATORS)}.")
        try:
            number = float(row.get("value"))
        except (TypeError, ValueError):
            raise ValidationError(f"Threshold {index}: the value must be a number.")
        if number != number or number in (float("inf"), float("-inf")):
            raise ValidationError(f"Threshold {index}: the value must be a finite number.")
        cleaned.append({"metric": metric, "op": op, "value": number})
    return cleaned


def clean_change_window(value: Any) -> dict[str, Any] | None:
    """{"days": [0..6], "start": "HH:MM", "end": "HH:MM"} (UTC) or None for "any time"."""
    if value in (None, "", {}):
        return None
    if not isinstance(value, Mapping):
        raise ValidationError("A change window is {days, start, end}.")
    days = value.get("days")
    if not isinstance(days, list) or not days or any(not isinstance(d, int) or not 0 <= d <= 6 for d in days):
        raise ValidationError("Change window days are a non-empty list of 0 (Monday) to 6 (Sunday).")
    start, end = str(value.get("start") or ""), str(value.get("end") or "")
    if not _HHMM.match(start) or not _HHMM.match(end):
        raise ValidationError("Change window start and end are HH:MM (UTC).")
    if start == end:
        raise ValidationError("A change window's start and end differ.")
    return {"days": sorted(set(days)), "start": start, "end": end}


def in_change_window(window: Mapping[str, Any] | None, at: datetime) -> bool:
    """Whether `at` (aware) falls in the window. A window whose end is before its start runs
    over midnight and belongs to the day it starts on."""
    if not window:
        return True
    at = at.astimezone(UTC)
    start, end = _parse_hhmm(window["start"]), _parse_hhmm(window["end"])
    now, day = at.time(), at.weekday()
    if start < end:
        return day in window["days"] and start <= now < end
    # Over midnight: the evening part belongs to today, the morning part to yesterday.
    return (day in window["days"] and now >= start) or ((day - 1) % 7 in window["days"] and now < end)


def describe_change_window(window: Mapping[str, Any] | None) -> str:
    if not window:
        return "any time"
    days = ", ".join(DAY_NAMES[d] for d in window["days"])
    return f"{days} {window['start']}–{window['end']} UTC"


def _parse_hhmm(text: str) -> time:
    hours, minutes = text.split(":")
    return time(int(hours), int(minutes))


# --- Approvals ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Membership:
    """What a person is, as far as approval rules care: their role names and team ids."""

    roles: frozenset[str] = frozenset()
    team_ids: frozenset[int] = frozenset()


@dataclass(frozen=True)
class RuleSpec:
    """The plain-value form of an ApprovalRule (so the engine needs no database)."""

    id: int
    required: int
    team_id: int | None = None
    role: str = ""
    label: str = ""

    @classmethod
    def of(cls, rule) -> RuleSpec:
        return cls(id=rule.pk, required=rule.required_approvals, team_id=rule.team_id, role=rule.role, label=str(rule))

    def matches(self, membership: Membership) -> bool:
        if self.team_id is not None:
            return self.team_id in membership.team_ids
        return bool(self.role) and self.role in membership.roles


@dataclass(frozen=True)
class Vote:
    approver_id: int
    decision: str  # "approve" / "reject"


@dataclass
class RuleProgress:
    rule: RuleSpec
    approver_ids: list[int] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.approver_ids)

    @property
    def satisfied(self) -> bool:
        return self.count >= self.rule.required

    @property
    def missing(self) -> int:
        return max(0, self.rule.required - self.count)


@dataclass
class PolicyState:
    rules: list[RuleProgress]
    assignment: dict[int, int]  # approver id → rule id their approval counts towards
    not_counted: list[int]  # approvers whose approval counts towards no open slot
    rejected_by: list[int]
    requester_id: int
    allow_self_approval: bool
    _votes: list[Vote] = field(default_factory=list, repr=False)
    _memberships: dict[int, Membership] = field(default_factory=dict, repr=False)

    @property
    def fully_approved(self) -> bool:
        return not self.rejected_by and all(progress.satisfied for progress in self.rules)

    @property
    def satisfied_rule_ids(self) -> list[int]:
        return [p.rule.id for p in self.rules if p.satisfied]

    @property
    def summary(self) -> str:
        parts = [f"{p.rule.label or p.rule.id}: {p.count}/{p.rule.required}" for p in self.rules]
        return "; ".join(parts) or "no approvals required"

    def decision_refusal(self, user_id: int, membership: Membership) -> str | None:
        """Why `user_id` may not approve or reject this request now, or None when they may."""
        if user_id == self.requester_id and not self.allow_self_approval:
            return "You requested this deployment; someone else must approve it (four-eyes rule)."
        if any(vote.approver_id == user_id for vote in self._votes):
            return "You have already decided on this request."
        if not any(progress.rule.matches(membership) for progress in self.rules):
            return "You are not in any team or role this environment's approval rules name."
        return None

    def rule_for_new_approval(self, user_id: int, membership: Membership) -> int | None:
        """The rule one more approval by `user_id` would count towards, or None when it would
        not count (the rules they match are already met by people who cannot move)."""
        if self.decision_refusal(user_id, membership) is not None:
            return None
        memberships = {**self._memberships, user_id: membership}
        votes = [*self._votes, Vote(user_id, "approve")]
        trial = evaluate(
            rules=[p.rule for p in self.rules],
            requester_id=self.requester_id,
            allow_self_approval=self.allow_self_approval,
            votes=votes,
            memberships=memberships,
        )
        return trial.assignment.get(user_id)

    def may_approve(self, user_id: int, membership: Membership) -> bool:
        return self.rule_for_new_approval(user_id, membership) is not None


def evaluate(
    *,
    rules: Sequence[RuleSpec],
    requester_id: int,
    allow_self_approval: bool,
    votes: Sequence[Vote],
    memberships: Mapping[int, Membership],
) -> PolicyState:
    """Match approvals to rules (each person once, each rule up to its count) and report."""
    eligible = [
        vote.approver_id
        for vote in votes
        if vote.decision == "approve" and (vote.approver_id != requester_id or allow_self_approval)
    ]
    slots = [rule for rule in rules for _ in range(rule.required)]
    slot_owner: list[int | None] = [None] * len(slots)

    def augment(approver_id: int, seen: set[int]) -> bool:
        membership = memberships.get(approver_id, Membership())
        for index, rule in enumerate(slots):
            if index in seen or not rule.matches(membership):
                continue
            seen.add(index)
            holder = slot_owner[index]
            if holder is None or augment(holder, seen):
                slot_owner[index] = approver_id
                return True
        return False

    not_counted = [approver_id for approver_id in eligible if not augment(approver_id, set())]
    assignment = {owner: slots[i].id for i, owner in enumerate(slot_owner) if owner is not None}
    progress = {rule.id: RuleProgress(rule) for rule in rules}
    # Approval order within a rule, for display.
    for approver_id in eligible:
        if approver_id in assignment:
            progress[assignment[approver_id]].approver_ids.append(approver_id)
    return PolicyState(
        rules=list(progress.values()),
        assignment=assignment,
        not_counted=not_counted,
        rejected_by=[vote.approver_id for vote in votes if vote.decision == "reject"],
        requester_id=requester_id,
        allow_self_approval=allow_self_approval,
        _votes=list(votes),
        _memberships=dict(memberships),
    )


# --- Checks ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckOutcome:
    name: str
    status: str  # pass / fail / error
    evidence: dict[str, Any]


def required_check_names(environment) -> list[str]:
    """The checks an environment asks for, by name (also the names of the CheckResult rows)."""
    names = ["version_ready"]
    if environment.min_card_completeness:
        names.append("card_completeness")
    names += [f"metric:{row['metric']}" for row in environment.metric_thresholds or []]
    if environment.forbid_unapproved_pii:
        names.append("pii_training_data")
    if environment.require_evaluation_job:
        names.append("evaluation_job")
    if environment.change_window:
        names.append("change_window")
    return names


def run_checks(request, *, now: datetime | None = None) -> list[CheckOutcome]:
    """Every check the request's environment requires, each caught separately: a check that
    breaks is an `error` outcome with the reason, never a crash of the others."""
    environment, version = request.environment, request.model_version
    now = now or timezone.now()
    checks: list[tuple[str, Callable[[], CheckOutcome]]] = [("version_ready", lambda: check_version_ready(version))]
    if environment.min_card_completeness:
        checks.append(
            ("card_completeness", lambda: check_card_completeness(version, environment.min_card_completeness))
        )
    for row in environment.metric_thresholds or []:
        checks.append((f"metric:{row['metric']}", lambda row=row: check_metric_threshold(version, row)))
    if environment.forbid_unapproved_pii:
        checks.append(("pii_training_data", lambda: check_pii_training_data(version, request.requester, now=now)))
    if environment.require_evaluation_job:
        checks.append(("evaluation_job", lambda: check_evaluation_job(version)))
    if environment.change_window:
        checks.append(("change_window", lambda: check_change_window(environment.change_window, now)))
    outcomes = []
    for name, run in checks:
        try:
            outcomes.append(run())
        except Exception as exc:  # one broken check must not hide the others' results
            outcomes.append(CheckOutcome(name, ERROR, {"reason": f"{type(exc).__name__}: {exc}"[:1000]}))
    return outcomes


def check_version_ready(version) -> CheckOutcome:
    ready = version.status == "READY" and not version.is_deleted
    evidence = {"status": version.status, "deleted": version.is_deleted, "flavor": version.flavor}
    if not ready:
        evidence["reason"] = "The version is deleted or not ready." if version.is_deleted else version.status_message
    return CheckOutcome("version_ready", PASS if ready else FAIL, evidence)


def check_card_completeness(version, minimum: int) -> CheckOutcome:
    from apps.registry.cards import SECTIONS, completeness
    from apps.registry.models import ModelCard

    card = ModelCard.objects.filter(model_version=version).first()
    if card is None:
        return CheckOutcome("card_completeness", FAIL, {"score": 0, "minimum": minimum, "reason": "No model card."})
    score, missing = completeness(card)
    evidence = {"score": score, "minimum": minimum, "missing_sections": [SECTIONS[s] for s in missing]}
    return CheckOutcome("card_completeness", PASS if score >= minimum else FAIL, evidence)


def check_metric_threshold(version, threshold: Mapping[str, Any]) -> CheckOutcome:
    from apps.tracking.models import LatestMetric

    name = f"metric:{threshold['metric']}"
    evidence: dict[str, Any] = {"metric": threshold["metric"], "op": threshold["op"], "threshold": threshold["value"]}
    if version.run_id is None:
        return CheckOutcome(name, FAIL, {**evidence, "reason": "The version has no training run to read metrics from."})
    latest = LatestMetric.objects.filter(run_id=version.run_id, key=threshold["metric"]).first()
    evidence["run_id"] = version.run.run_uuid if version.run else None
    if latest is None or latest.is_nan or latest.value is None:
        reason = "The run logged no value for this metric." if latest is None else "The metric's value is NaN."
        return CheckOutcome(name, FAIL, {**evidence, "value": None, "reason": reason})
    evidence["value"] = latest.value
    passed = OPERATORS[threshold["op"]](latest.value, float(threshold["value"]))
    return CheckOutcome(name, PASS if passed else FAIL, evidence)


def check_pii_training_data(version, requester, *, now: datetime) -> CheckOutcome:
    """Training datasets (the card's list, which is filled from the run's inputs) that are PII
    need an approved, unexpired access request by the requester covering them."""
    from apps.catalog.models import AccessRequest, Dataset, DatasetVersion
    from apps.registry.models import ModelCard

    card = ModelCard.objects.filter(model_version=version).first()
    ids = [int(i) for i in (card.training_data if card else []) if str(i).isdigit()]
    versions = list(DatasetVersion.objects.filter(pk__in=ids).select_related("dataset"))
    pii = [v for v in versions if v.dataset.classification == Dataset.Classification.PII]
    covered = set(
        AccessRequest.objects.filter(
            dataset_id__in=[v.dataset_id for v in pii],
            requester=requester,
            status=AccessRequest.Status.APPROVED,
        )
        .exclude(expires_at__lte=now)
        .values_list("dataset_id", flat=True)
    )
    datasets = [
        {
            "dataset": v.dataset.name,
            "dataset_version": v.number,
            "classification": v.dataset.classification,
            "covered_by_access_request": v.dataset_id in covered if v.dataset.classification == "pii" else None,
        }
        for v in versions
    ]
    uncovered = [v.dataset.name for v in pii if v.dataset_id not in covered]
    evidence: dict[str, Any] = {
        "training_datasets": datasets,
        "unknown_ids": sorted(set(ids) - {v.pk for v in versions}),
    }
    if uncovered:
        evidence["reason"] = (
            f"PII training data without an approved access request for {requester.get_username()}: "
            + ", ".join(sorted(set(uncovered)))
        )
        return CheckOutcome("pii_training_data", FAIL, evidence)
    return CheckOutcome("pii_training_data", PASS, evidence)


def check_evaluation_job(version) -> CheckOutcome:
    from apps.jobs.models import Job

    job = (
        Job.objects.filter(
            kind=EVALUATION_JOB,
            target_type=ContentType.objects.get_for_model(type(version)),
            target_id=str(version.pk),
            status=Job.Status.SUCCEEDED,
        )
        .order_by("-finished_at")
        .first()
    )
    if job is None:
        return CheckOutcome(
            "evaluation_job",
            FAIL,
            {"reason": f"No evaluation ran: no succeeded '{EVALUATION_JOB}' job targets this version."},
        )
    return CheckOutcome(
        "evaluation_job",
        PASS,
        {
            "job_id": str(job.pk),
            "finished_at": job.finished_at.isoformat() if job.finished_at else None,
            "result": job.result,
        },
    )


def check_change_window(window: Mapping[str, Any], now: datetime) -> CheckOutcome:
    """A request may be submitted and approved any time; the window governs when it is pushed
    out, so it is enforced by `services.start_deploy` (and an approval outside the window waits
    in `approved`). This check records the window the approvers agreed to and fails only when
    the window can never open (an invalid window would block every deploy)."""
    try:
        window = clean_change_window(window)
    except ValidationError as exc:
        return CheckOutcome("change_window", FAIL, {"reason": "; ".join(exc.messages)})
    evidence = {
        "window": describe_change_window(window),
        "open_now": in_change_window(window, now),
        "checked_at": now.isoformat(),
        "enforced_at": "deploy",
    }
    return CheckOutcome("change_window", PASS, evidence)
