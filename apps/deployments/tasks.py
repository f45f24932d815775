"""Deployment jobs: a request's policy checks, the deploy itself, a model evaluation; and the
periodic expiry of pending requests. Thin: the work is in policy, servability and services."""

from __future__ import annotations

from celery import shared_task
from django.contrib.contenttypes.models import ContentType
from django.db import OperationalError

from apps.deployments import policy, servability, services
from apps.deployments.models import DeploymentRequest
from apps.jobs.runner import JobContext, RetryableJobError, job_task
from apps.registry.models import ModelVersion


def _request(job) -> DeploymentRequest:
    return DeploymentRequest.objects.select_related(
        "environment", "model_version__registered_model", "model_version__run", "requester"
    ).get(pk=job.params["request_id"])


@job_task(kind=services.CHECKS_JOB, label="Run a deployment request's policy checks")
def run_request_checks(*, job, ctx: JobContext) -> dict:
    """Evaluate every check the environment requires and store one result per check. Running
    twice stores the same results again (rows are keyed by check name)."""
    request = _request(job)
    ctx.progress(5, f"Running {len(policy.required_check_names(request.environment))} checks")
    outcomes = policy.run_checks(request)
    for outcome in outcomes:
        ctx.log(f"{outcome.name}: {outcome.status}", level="info" if outcome.status == "pass" else "warning")
    ctx.progress(90, "Recording the results")
    request = services.record_checks(request=request, outcomes=outcomes, job=job)
    return {"checks": {o.name: o.status for o in outcomes}, "state": request.state}


@job_task(kind=services.DEPLOY_JOB, label="Deploy a model version to an endpoint")
def deploy_request(*, job, ctx: JobContext) -> dict:
    """Load the version to prove it can be served, then switch the endpoint. A redelivered
    message for a request already live (or failed) by this job does nothing."""
    request = _request(job)
    if request.deploy_job_id == job.pk and request.state in (
        DeploymentRequest.State.LIVE,
        DeploymentRequest.State.FAILED,
    ):
        return {"state": request.state, "endpoint": request.endpoint_name, "repeated": True}
    ctx.progress(10, f"Loading {request.model_version}")
    try:
        evidence = servability.validate(request.model_version, allow_pickle=request.environment.allow_pickle)
        ctx.log(f"servable: {evidence}")
        ctx.progress(70, f"Switching {request.endpoint_name}")
        endpoint = services.mark_live(request=request, job=job, evidence=evidence)
    except (RetryableJobError, OperationalError):
        raise  # the runner retries; the request stays deploying meanwhile
    except Exception as exc:
        services.mark_failed(request=request, reason=str(exc), job=job)
        raise
    return {
        "state": "live",
        "endpoint": endpoint.name,
        "current_version": endpoint.current_version_id,
        "canary_version": endpoint.canary_version_id,
        "canary_percent": endpoint.canary_percent,
        "evidence": evidence,
    }


@job_task(kind=policy.EVALUATION_JOB, label="Evaluate a model version")
def evaluate_version(*, job, ctx: JobContext) -> dict:
    """A light evaluation: the version's files load as a servable model (MLmodel, flavor, and
    pickle allowed when params say so), and the training run's latest metrics are recorded as
    what was evaluated. Enqueue it with the version as target; the `evaluation_job` check looks
    for a succeeded one."""
    from apps.tracking.models import LatestMetric

    if job.target_type_id != ContentType.objects.get_for_model(ModelVersion).pk:
        raise ValueError("An evaluation job targets a model version.")
    version = ModelVersion.objects.select_related("registered_model").get(pk=int(job.target_id))
    ctx.progress(20, f"Validating {version}")
    evidence = servability.validate(version, allow_pickle=bool(job.params.get("allow_pickle", True)))
    ctx.progress(70, "Reading the run's metrics")
    metrics = {}
    if version.run_id:
        metrics = {
            key: value
            for key, value in LatestMetric.objects.filter(run_id=version.run_id, is_nan=False).values_list(
                "key", "value"
            )
        }
    return {"version": str(version), "servable": evidence, "metrics": metrics}


@shared_task(name="deployments.expire_pending_requests", acks_late=True)
def expire_pending_requests() -> int:
    return services.expire_pending()
