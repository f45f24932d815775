"""The checks job and the deploy job on a real Celery worker."""

from __future__ import annotations

import pytest

from apps.accounts.roles import APPROVER
from apps.deployments import services
from apps.deployments.models import DeploymentRequest, Endpoint
from apps.jobs.models import Job
from tests.conftest import wait_for
from tests.deployments.conftest import make_environment, make_request, make_version

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]


@pytest.fixture(params=["serving-loader", "mlmodel-only"])
def validation(request, monkeypatch):
    """Deploys validate with the serving app's loader when it exists, else by reading the
    MLmodel file: both paths run (the worker is a thread of this process, so the patch holds)."""
    from apps.deployments import servability

    if request.param == "mlmodel-only":
        monkeypatch.setattr(servability, "_serving_loader", lambda: None)
    elif servability._serving_loader() is None:
        pytest.skip("the serving loader is not installed")
    return request.param


def finished(job_id):
    def check():
        job = Job.objects.filter(pk=job_id).first()
        return job if job and job.is_finished else None

    return check


def test_checks_then_approval_then_deploy_on_the_worker(users, artifact_root, celery_worker, validation):
    environment = make_environment(
        "staging",
        rules=(("role", APPROVER, 1),),
        allow_pickle=True,
        metric_thresholds=[{"metric": "roc_auc", "op": ">=", "value": 0.7}],
    )
    version = make_version(users["engineer"], metrics={"roc_auc": 0.81})
    request = services.submit(request=make_request(users["engineer"], version, environment), by=users["engineer"])
    job = wait_for(finished(request.checks_job_id))
    assert job.status == "succeeded", job.error
    assert job.result["checks"] == {"version_ready": "pass", "metric:roc_auc": "pass"}
    results = {c.name: (c.status, c.evidence) for c in request.checks.all()}
    assert results["metric:roc_auc"][0] == "pass" and results["metric:roc_auc"][1]["value"] == pytest.approx(0.81)

    services.approve(request=request, by=users["approver"], comment="Good to go.")
    request.refresh_from_db()
    assert request.state == "deploying"
    job = wait_for(finished(request.deploy_job_id))
    assert job.status == "succeeded", job.error
    assert job.progress == 100 and job.result["endpoint"] == "churn"
    request.refresh_from_db()
    endpoint = Endpoint.objects.get(name="churn")
    assert request.state == "live" and endpoint.current_version == version and endpoint.state == "live"
    assert endpoint.revisions.get().request == request


def test_a_pickle_model_in_an_environment_without_pickles_fails_cleanly(
    users, artifact_root, celery_worker, validation
):
    environment = make_environment("production", rules=(), allow_pickle=False)
    version = make_version(users["engineer"])
    request = services.submit(request=make_request(users["engineer"], version, environment), by=users["engineer"])
    wait_for(finished(request.checks_job_id))
    request.refresh_from_db()  # no rules and passing checks: approved, the deploy starts itself
    assert request.deploy_job_id is not None
    job = wait_for(finished(request.deploy_job_id))
    assert job.status == "failed" and "pickle" in job.error.lower()
    request.refresh_from_db()
    assert request.state == DeploymentRequest.State.FAILED and "pickle" in request.state_reason.lower()
    assert not Endpoint.objects.filter(name="churn").exists()


def test_a_version_without_an_mlmodel_file_fails_the_deploy(users, artifact_root, celery_worker, validation):
    environment = make_environment("staging", rules=(), allow_pickle=True)
    version = make_version(users["engineer"], files={"model.pkl": b"not a model"})
    request = services.submit(request=make_request(users["engineer"], version, environment), by=users["engineer"])
    wait_for(finished(request.checks_job_id))
    request.refresh_from_db()
    job = wait_for(finished(request.deploy_job_id))
    assert job.status == "failed" and "mlmodel" in job.error.lower()
    request.refresh_from_db()
    assert request.state == "failed"
