"""The policy engine: approval rules (pure) and the checks (against the database)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.utils import timezone

from apps.accounts.roles import APPROVER
from apps.catalog.models import AccessRequest, Dataset, DatasetVersion
from apps.deployments import policy
from apps.deployments.policy import Membership, RuleSpec, Vote
from apps.jobs.models import Job
from apps.registry.models import ModelVersion
from tests.deployments.conftest import make_environment, make_request, make_version

REQUESTER = 1
ROLE_RULE = RuleSpec(id=10, required=1, role=APPROVER, label="1 from Approvers")
TEAM_RULE = RuleSpec(id=20, required=1, team_id=7, label="1 from Model Risk")
APPROVER_ONLY = Membership(roles=frozenset({APPROVER}))
RISK_ONLY = Membership(team_ids=frozenset({7}))
BOTH = Membership(roles=frozenset({APPROVER}), team_ids=frozenset({7}))


def evaluate(rules, votes, memberships, *, self_ok=False):
    return policy.evaluate(
        rules=rules,
        requester_id=REQUESTER,
        allow_self_approval=self_ok,
        votes=[Vote(who, decision) for who, decision in votes],
        memberships=memberships,
    )


def test_one_approval_from_the_role_satisfies_a_one_approval_rule():
    state = evaluate([ROLE_RULE], [(2, "approve")], {2: APPROVER_ONLY})
    assert state.fully_approved and state.assignment == {2: 10}


def test_no_approvals_leave_the_request_not_approved():
    state = evaluate([ROLE_RULE], [], {})
    assert not state.fully_approved and state.rules[0].missing == 1


def test_the_requesters_own_approval_never_counts_by_default():
    state = evaluate([ROLE_RULE], [(REQUESTER, "approve")], {REQUESTER: APPROVER_ONLY})
    assert not state.fully_approved and state.assignment == {}


def test_the_requester_may_not_decide_under_four_eyes():
    state = evaluate([ROLE_RULE], [], {})
    assert "four-eyes" in state.decision_refusal(REQUESTER, APPROVER_ONLY)


def test_self_approval_counts_where_the_environment_allows_it():
    state = evaluate([ROLE_RULE], [(REQUESTER, "approve")], {REQUESTER: APPROVER_ONLY}, self_ok=True)
    assert state.fully_approved
    assert evaluate([ROLE_RULE], [], {}, self_ok=True).decision_refusal(REQUESTER, APPROVER_ONLY) is None


def test_a_rule_needing_two_approvals_is_not_met_by_one():
    rule = RuleSpec(id=10, required=2, role=APPROVER)
    state = evaluate([rule], [(2, "approve")], {2: APPROVER_ONLY})
    assert not state.fully_approved and state.rules[0].count == 1 and state.rules[0].missing == 1
    assert evaluate([rule], [(2, "approve"), (3, "approve")], {2: APPROVER_ONLY, 3: APPROVER_ONLY}).fully_approved


def test_a_person_in_two_rules_counts_once_towards_one():
    state = evaluate([ROLE_RULE, TEAM_RULE], [(2, "approve")], {2: BOTH})
    assert not state.fully_approved
    assert sum(progress.count for progress in state.rules) == 1


def test_approvers_are_matched_so_a_later_one_still_counts():
    # The first approver could fill either rule; the second only the role rule: both are met.
    state = evaluate([ROLE_RULE, TEAM_RULE], [(2, "approve"), (3, "approve")], {2: BOTH, 3: APPROVER_ONLY})
    assert state.fully_approved
    assert state.assignment == {2: 20, 3: 10}


def test_an_approval_that_would_fill_no_open_rule_does_not_count():
    state = evaluate([ROLE_RULE, TEAM_RULE], [(2, "approve")], {2: APPROVER_ONLY})
    assert state.rule_for_new_approval(3, APPROVER_ONLY) is None
    assert state.rule_for_new_approval(4, RISK_ONLY) == 20


def test_someone_in_no_rule_may_not_decide():
    state = evaluate([ROLE_RULE], [], {})
    assert "not in any team or role" in state.decision_refusal(5, Membership())


def test_deciding_twice_is_refused():
    state = evaluate([ROLE_RULE], [(2, "approve")], {2: APPROVER_ONLY})
    assert "already decided" in state.decision_refusal(2, APPROVER_ONLY)


def test_a_rejection_means_not_approved_whatever_the_counts():
    state = evaluate([ROLE_RULE], [(2, "approve"), (3, "reject")], {2: APPROVER_ONLY, 3: APPROVER_ONLY})
    assert not state.fully_approved and state.rejected_by == [3]


def test_an_environment_without_rules_needs_no_approval():
    assert evaluate([], [], {}).fully_approved


@pytest.mark.parametrize(
    ("at", "inside"),
    [
        (datetime(2025, 1, 6, 10, 0, tzinfo=UTC), True),  # Monday 10:00
        (datetime(2025, 1, 6, 17, 0, tzinfo=UTC), False),  # Monday at the end (exclusive)
        (datetime(2025, 1, 11, 10, 0, tzinfo=UTC), False),  # Saturday
    ],
)
def test_change_window_on_weekdays(at, inside):
    window = {"days": [0, 1, 2, 3, 4], "start": "09:00", "end": "17:00"}
    assert policy.in_change_window(window, at) is inside


def test_a_change_window_over_midnight_belongs_to_the_day_it_starts():
    window = {"days": [4], "start": "22:00", "end": "02:00"}  # Friday night
    assert policy.in_change_window(window, datetime(2025, 1, 10, 23, 0, tzinfo=UTC))
    assert policy.in_change_window(window, datetime(2025, 1, 11, 1, 0, tzinfo=UTC))  # Saturday 01:00
    assert not policy.in_change_window(window, datetime(2025, 1, 11, 23, 0, tzinfo=UTC))


@pytest.mark.parametrize(
    "bad",
    [
        [{"metric": "auc", "op": "=", "value": 1}],
        [{"metric": "", "op": ">", "value": 1}],
        [{"metric": "auc", "op": ">", "value": "high"}],
        {"metric": "auc"},
    ],
)
def test_invalid_metric_thresholds_are_refused(bad):
    with pytest.raises(ValidationError):
        policy.clean_metric_thresholds(bad)


@pytest.mark.parametrize(
    "bad",
    [
        {"days": [], "start": "09:00", "end": "17:00"},
        {"days": [7], "start": "09:00", "end": "17:00"},
        {"days": [1], "start": "9am", "end": "17:00"},
    ],
)
def test_invalid_change_windows_are_refused(bad):
    with pytest.raises(ValidationError):
        policy.clean_change_window(bad)


# --- Checks -------------------------------------------------------------------------------------


@pytest.fixture
def version(users, artifact_root):
    return make_version(users["engineer"], metrics={"roc_auc": 0.72, "log_loss": 0.4})


def outcome(request, name):
    return {o.name: o for o in policy.run_checks(request)}[name]


def test_card_completeness_below_the_minimum_fails_with_the_missing_sections(users, version):
    request = make_request(users["engineer"], version, make_environment(min_card_completeness=80))
    result = outcome(request, "card_completeness")
    assert result.status == "fail" and result.evidence["score"] < 80
    assert "Fairness considerations" in result.evidence["missing_sections"]


def test_card_completeness_at_the_minimum_passes(users, artifact_root):
    card = {
        "factors": "Region.",
        "evaluation_data": "Hold-out.",
        "fairness_considerations": "x",
        "ethical_considerations": "x",
        "risks_and_mitigations": "x",
        "caveats_and_recommendations": "x",
    }
    version = make_version(users["engineer"], card=card)
    request = make_request(users["engineer"], version, make_environment(min_card_completeness=50))
    assert outcome(request, "card_completeness").status == "pass"


@pytest.mark.parametrize(("op", "value", "status"), [(">=", 0.7, "pass"), (">", 0.72, "fail"), ("<", 0.8, "pass")])
def test_metric_thresholds_compare_the_runs_latest_value(users, version, op, value, status):
    environment = make_environment(metric_thresholds=[{"metric": "roc_auc", "op": op, "value": value}])
    result = outcome(make_request(users["engineer"], version, environment), "metric:roc_auc")
    assert result.status == status and result.evidence["value"] == pytest.approx(0.72)


def test_a_metric_the_run_never_logged_fails(users, version):
    environment = make_environment(metric_thresholds=[{"metric": "f1", "op": ">", "value": 0.5}])
    result = outcome(make_request(users["engineer"], version, environment), "metric:f1")
    assert result.status == "fail" and "no value" in result.evidence["reason"]


@pytest.fixture
def pii_version(users, artifact_root):
    dataset = Dataset.objects.create(
        name="Customers", slug="customers", owner=users["scientist"], classification=Dataset.Classification.PII
    )
    dataset_version = DatasetVersion.objects.create(dataset=dataset, number=1, status="ready")
    version = make_version(users["engineer"], card={"training_data": [dataset_version.pk]})
    return version, dataset


def test_pii_training_data_without_an_access_request_fails(users, pii_version):
    version, _ = pii_version
    request = make_request(users["engineer"], version, make_environment(forbid_unapproved_pii=True))
    result = outcome(request, "pii_training_data")
    assert result.status == "fail" and "Customers" in result.evidence["reason"]


def test_pii_training_data_covered_by_an_approved_access_request_passes(users, pii_version):
    version, dataset = pii_version
    AccessRequest.objects.create(
        dataset=dataset,
        requester=users["engineer"],
        purpose="churn",
        status="approved",
        expires_at=timezone.now() + timedelta(days=30),
    )
    request = make_request(users["engineer"], version, make_environment(forbid_unapproved_pii=True))
    assert outcome(request, "pii_training_data").status == "pass"


def test_an_expired_access_request_does_not_cover_pii(users, pii_version):
    version, dataset = pii_version
    AccessRequest.objects.create(
        dataset=dataset,
        requester=users["engineer"],
        purpose="churn",
        status="approved",
        expires_at=timezone.now() - timedelta(days=1),
    )
    request = make_request(users["engineer"], version, make_environment(forbid_unapproved_pii=True))
    assert outcome(request, "pii_training_data").status == "fail"


def test_without_an_evaluation_job_the_check_says_no_evaluation_ran(users, version):
    request = make_request(users["engineer"], version, make_environment(require_evaluation_job=True))
    result = outcome(request, "evaluation_job")
    assert result.status == "fail" and "No evaluation ran" in result.evidence["reason"]


def test_a_succeeded_evaluation_job_passes_the_check(users, version):
    Job.objects.create(
        kind=policy.EVALUATION_JOB,
        status=Job.Status.SUCCEEDED,
        target_type=ContentType.objects.get_for_model(ModelVersion),
        target_id=str(version.pk),
        finished_at=timezone.now(),
        result={"metrics": {"roc_auc": 0.72}},
    )
    request = make_request(users["engineer"], version, make_environment(require_evaluation_job=True))
    assert outcome(request, "evaluation_job").status == "pass"


def test_the_environment_decides_which_checks_run(users, version):
    environment = make_environment(
        min_card_completeness=10,
        metric_thresholds=[{"metric": "roc_auc", "op": ">", "value": 0.5}],
        forbid_unapproved_pii=True,
        require_evaluation_job=True,
        change_window={"days": [0], "start": "09:00", "end": "10:00"},
    )
    names = [o.name for o in policy.run_checks(make_request(users["engineer"], version, environment))]
    assert (
        names
        == policy.required_check_names(environment)
        == [
            "version_ready",
            "card_completeness",
            "metric:roc_auc",
            "pii_training_data",
            "evaluation_job",
            "change_window",
        ]
    )
