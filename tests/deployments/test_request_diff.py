"""The request page's "what changes": the requested version against the endpoint's live version
(or the one it replaced, once deployed, or "new endpoint"): version facts, rollout plan, params,
metrics with deltas, signature inputs, training datasets and model card fields — and the
timeline read from the audit trail."""

from __future__ import annotations

import pytest
from django.urls import reverse

from apps.accounts.roles import APPROVER
from apps.deployments import services
from apps.deployments.diff import ADDED, CHANGED, REMOVED, SAME, request_diff
from apps.deployments.selectors import request_timeline
from apps.registry.models import ModelCard
from apps.tracking.models import Param, RunInput
from tests.catalog.factories import make_dataset
from tests.conftest import PASSWORD
from tests.deployments.conftest import make_environment, make_request, make_version, pass_checks

pytestmark = pytest.mark.django_db

INPUTS_V1 = [
    {"name": "age", "type": "long", "required": True},
    {"name": "plan", "type": "string", "required": True},
    {"name": "tenure", "type": "double", "required": True},
]
INPUTS_V2 = [
    {"name": "age", "type": "double", "required": True},
    {"name": "tenure", "type": "double", "required": True},
    {"name": "region", "type": "string", "required": False},
]


@pytest.fixture
def staging(people):
    return make_environment("staging", metric_thresholds=[{"metric": "roc_auc", "op": ">=", "value": 0.7}])


@pytest.fixture
def live_v1(people, artifact_root):
    version = make_version(
        people["engineer"],
        metrics={"roc_auc": 0.80, "recall": 0.5},
        card={"factors": "Age bands.", "model_details": {"overview": "Churn v1.", "owners": "Data team"}},
    )
    with_params(version, max_depth="5", n_estimators="100")
    with_signature(version, INPUTS_V1)
    RunInput.objects.create(run=version.run, name="customers-2024", digest="a", source_type="s", source="x")
    return version


@pytest.fixture
def candidate_v2(people, live_v1):
    version = make_version(
        people["engineer"],
        model=live_v1.registered_model,
        metrics={"roc_auc": 0.85, "precision": 0.7},
        card={"factors": "Age bands and regions.", "model_details": {"overview": "Churn v1.", "owners": "Data team"}},
    )
    with_params(version, max_depth="7", n_estimators="100", learning_rate="0.1")
    with_signature(version, INPUTS_V2)
    RunInput.objects.create(run=version.run, name="customers-2025", digest="b", source_type="s", source="x")
    return version


def with_params(version, **params):
    for key, value in params.items():
        Param.objects.create(run=version.run, key=key, value=value)


def with_signature(version, inputs):
    type(version).objects.filter(pk=version.pk).update(signature_inputs=inputs)
    version.signature_inputs = inputs


def go_live(user, version, environment, endpoint="churn", **kwargs):
    request = make_request(user, version, environment, endpoint=endpoint, state="approved", **kwargs)
    pass_checks(request)
    request = services.start_deploy(request=request, by=user)
    services.mark_live(request=request, job=request.deploy_job)
    request.refresh_from_db()
    return request


def rows_by_key(rows):
    return {row.key: row for row in rows}


@pytest.fixture
def diff(people, staging, live_v1, candidate_v2):
    go_live(people["engineer"], live_v1, staging)
    request = make_request(people["engineer"], candidate_v2, staging)
    return request_diff(people["engineer"], request)


def test_the_diff_compares_with_the_endpoint_s_live_version(diff, live_v1):
    assert diff.live == live_v1 and not diff.new_endpoint and diff.baseline == "live now"


def test_params_that_differ_are_marked_added_removed_or_changed(diff):
    rows = rows_by_key(diff.param_rows)
    assert (rows["max_depth"].old, rows["max_depth"].new, rows["max_depth"].change) == ("5", "7", CHANGED)
    assert rows["learning_rate"].change == ADDED and rows["n_estimators"].change == SAME


def test_changed_params_are_listed_before_unchanged_ones(diff):
    changes = [row.change for row in diff.param_rows]
    assert changes.index(SAME) > max(i for i, change in enumerate(changes) if change != SAME)


def test_metrics_stand_side_by_side_with_their_delta_and_threshold(diff):
    rows = rows_by_key(diff.metric_rows)
    assert rows["roc_auc"].delta == pytest.approx(0.05) and rows["roc_auc"].note == ">= 0.7"
    assert rows["recall"].change == REMOVED and rows["recall"].delta is None
    assert rows["precision"].change == ADDED


def test_signature_inputs_added_removed_and_retyped_are_shown(diff):
    rows = rows_by_key(diff.signature_rows)
    assert (rows["age"].old, rows["age"].new, rows["age"].change) == ("long", "double", CHANGED)
    assert rows["plan"].change == REMOVED
    assert rows["region"].change == ADDED and rows["region"].new == "string (optional)"
    assert rows["tenure"].change == SAME


def test_training_datasets_of_both_runs_are_compared(diff):
    rows = rows_by_key(diff.dataset_rows)
    assert rows["customers-2024"].change == REMOVED and rows["customers-2025"].change == ADDED


def test_a_catalog_dataset_named_by_the_card_is_shown_with_its_version(people, staging, live_v1, candidate_v2):
    dataset = make_dataset(people["engineer"], "customers")
    ModelCard.objects.filter(model_version=candidate_v2).update(training_data=[dataset.versions.get().pk])
    go_live(people["engineer"], live_v1, staging)
    rows = rows_by_key(
        request_diff(people["engineer"], make_request(people["engineer"], candidate_v2, staging)).dataset_rows
    )
    assert rows["customers v1"].change == ADDED and rows["customers v1"].new == "model card"


def test_only_changed_card_fields_are_listed_with_both_texts(diff):
    rows = rows_by_key(diff.card_rows)
    assert (rows["factors"].old, rows["factors"].new) == ("Age bands.", "Age bands and regions.")
    assert rows["factors"].note == "Factors"
    assert "model_details.overview" not in rows and diff.card_unchanged >= 2


def test_the_rollout_plan_moves_all_traffic_on_replace(diff):
    rows = rows_by_key(diff.rollout_rows)
    assert [(row.old, row.new) for row in rows.values()] == [("100 %", "0 %"), ("0 %", "100 %")]


def test_a_canary_plan_keeps_the_rest_on_the_live_version(people, staging, live_v1, candidate_v2):
    go_live(people["engineer"], live_v1, staging)
    request = make_request(people["engineer"], candidate_v2, staging, rollout="canary", canary_percent=10)
    rows = request_diff(people["engineer"], request).rollout_rows
    assert [(row.old, row.new) for row in rows] == [("100 %", "90 %"), ("0 %", "10 %")]


def test_a_request_to_a_new_endpoint_says_so_and_lists_what_it_will_serve(people, staging, candidate_v2):
    result = request_diff(people["engineer"], make_request(people["engineer"], candidate_v2, staging, endpoint="new"))
    assert result.new_endpoint and result.live is None
    assert {row.key for row in result.param_rows} == {"max_depth", "n_estimators", "learning_rate"}
    assert result.card_rows == [] and [(row.old, row.new) for row in result.rollout_rows] == [("0 %", "100 %")]


def test_once_deployed_the_diff_is_against_the_version_it_replaced(people, staging, live_v1, candidate_v2):
    go_live(people["engineer"], live_v1, staging)
    deployed = go_live(people["engineer"], candidate_v2, staging)
    result = request_diff(people["engineer"], deployed)
    assert result.live == live_v1 and result.baseline == "replaced"
    assert rows_by_key(result.param_rows)["max_depth"].change == CHANGED


def test_the_first_deploy_of_an_endpoint_stays_a_new_endpoint_after_it_is_live(people, staging, live_v1):
    deployed = go_live(people["engineer"], live_v1, staging)
    assert request_diff(people["engineer"], deployed).new_endpoint


def test_params_and_metrics_of_a_run_the_viewer_cannot_see_are_hidden(people, staging, artifact_root):
    private = make_version(people["engineer"], visibility="private", metrics={"roc_auc": 0.9})
    with_params(private, secret_param="1")
    request = make_request(people["engineer"], private, staging)
    result = request_diff(people["approver"], request)  # an approver of staging sees the request
    assert result.param_rows == [] and result.metric_rows == []
    assert any("run" in text for text in result.hidden)


def test_the_request_page_shows_the_diff_table(client, people, staging, live_v1, candidate_v2):
    go_live(people["engineer"], live_v1, staging)
    request = make_request(people["engineer"], candidate_v2, staging)
    client.force_login(people["approver"])
    body = client.get(reverse("deployments:request", args=[request.pk])).content.decode()
    for testid in (
        "diff",
        "diff-params",
        "diff-metrics",
        "diff-signature",
        "diff-datasets",
        "diff-card",
        "diff-rollout",
    ):
        assert f'data-testid="{testid}"' in body
    assert "max_depth" in body and "+0.0500" in body and "customers-2025" in body


# --- Timeline ------------------------------------------------------------------------------------


@pytest.fixture
def production(people):
    return make_environment("production", rules=(("role", APPROVER, 2),), requires_step_up=True)


def test_the_timeline_is_read_from_the_audit_trail_in_order(people, production, artifact_root):
    request = make_request(people["engineer"], make_version(people["engineer"]), production)
    request = services.submit(request=request, by=people["engineer"])
    pass_checks(request)
    services.approve(request=request, by=people["approver"], comment="Fine by me.", password=PASSWORD)
    services.reject(request=request, by=people["approver2"], comment="Not this week.", password=PASSWORD)

    kinds = [entry["kind"] for entry in request_timeline(request)]

    assert kinds[:2] == ["created", "pending"]
    assert kinds.index("checks") < kinds.index("approve") < kinds.index("reject") < kinds.index("rejected")
    approval = next(entry for entry in request_timeline(request) if entry["kind"] == "approve")
    assert approval["who"] == "approver" and approval["text"] == "Fine by me." and approval["step_up"]


def test_the_timeline_names_the_jobs_run_for_the_request(people, production, artifact_root):
    from apps.jobs import services as jobs

    request = services.submit(
        request=make_request(people["engineer"], make_version(people["engineer"]), production), by=people["engineer"]
    )
    job = jobs.start_attempt(job_id=request.checks_job_id)
    jobs.mark_failed(job=job, error="ValueError: no MLmodel file\nmore detail")

    texts = [entry["text"] for entry in request_timeline(request)]

    assert "Checks job started." in texts and "Checks job failed. ValueError: no MLmodel file" in texts


def test_the_timeline_costs_the_same_for_many_events(people, production, artifact_root, django_assert_max_num_queries):
    request = services.submit(
        request=make_request(people["engineer"], make_version(people["engineer"]), production), by=people["engineer"]
    )
    for _ in range(5):
        services.rerun_checks(request=request, by=people["engineer"])
        pass_checks(request)
    with django_assert_max_num_queries(2):
        entries = request_timeline(request)
    assert len([entry for entry in entries if entry["kind"] == "checks-rerun"]) == 5
