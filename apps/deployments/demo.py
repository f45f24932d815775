"""Demo deployments: a staging and a production environment with their policies, requests in
several states with approvals and comments, and one live endpoint, "churn-propensity", serving
the churn model's champion. Everything goes through the services (policy checks, approvals
with step-up, the deploy job's work), so the audit trail reads as it would in use.
Idempotent: environments that exist are left alone, and requests are only created once.
"""

from __future__ import annotations

from apps.accounts.demo import DEMO_PASSWORD
from apps.accounts.models import Team
from apps.accounts.roles import APPROVER
from apps.deployments import policy, servability, services
from apps.deployments.models import DeploymentRequest, Environment
from apps.registry.models import ModelAlias, ModelVersion

CHURN_AUC_THRESHOLD = 0.65


def load(context: dict) -> None:
    users, admin = context["users"], context["admin"]
    environments = {
        "staging": Environment.objects.filter(name="staging").first() or _staging(admin),
        "production": Environment.objects.filter(name="production").first() or _production(admin),
    }
    context["environments"] = environments
    if DeploymentRequest.objects.exists():
        return
    models = context["registered_models"]
    churn = models["churn-propensity"]
    champion = _aliased(churn, "champion")
    challenger = _aliased(churn, "challenger")
    engineer, approver, approver2, ops = users["engineer"], users["approver"], users["approver2"], users["ops"]

    # Live in production: checks, two approvals (role + Model Risk team, with step-up), pushed
    # out by Platform Ops.
    live = _submitted(
        engineer,
        champion,
        environments["production"],
        "churn-propensity",
        justification="Champion of the Q3 retraining: best hold-out ROC AUC and lowest log loss.",
        risk_note="Scores only prioritise retention outreach; analysts review the list before any offer.",
    )
    services.approve(
        request=live, by=approver, comment="Card complete, slice table reviewed by region.", password=DEMO_PASSWORD
    )
    services.approve(
        request=live,
        by=approver2,
        comment="Independent validation: AUC interval above the 0.65 bar; east region monitored.",
        password=DEMO_PASSWORD,
    )
    live = services.start_deploy(request=live, by=ops)
    # What the deploy job does, done here (load_demo runs in a transaction, which a job task
    # cannot join); the job itself, sent once this commits, finds the request live and stops.
    evidence = servability.validate(live.model_version, allow_pickle=live.environment.allow_pickle)
    services.mark_live(request=live, job=live.deploy_job, evidence=evidence)

    # A canary of the challenger in production, half approved.
    canary = _submitted(
        engineer,
        challenger,
        environments["production"],
        "churn-propensity",
        justification="Challenger with a higher recall in the east; try it on a tenth of the traffic.",
        risk_note="Canary only; rolled back if the weekly realised churn diverges.",
        rollout=DeploymentRequest.Rollout.CANARY,
        canary_percent=10,
    )
    services.approve(
        request=canary, by=approver, comment="Fine as a 10 % canary; Model Risk to confirm.", password=DEMO_PASSWORD
    )

    # Waiting in the approvers' inbox for staging.
    _submitted(
        engineer,
        challenger,
        environments["staging"],
        "churn-propensity-staging",
        justification="Let the retention team try the challenger's lists before production.",
        risk_note="Staging only.",
    )

    # Rejected: the PD model's card is half written.
    pd_version = models["probability-of-default"].versions.filter(is_deleted=False).order_by("version").first()
    rejected = _submitted(
        engineer,
        pd_version,
        environments["production"],
        "probability-of-default",
        justification="First PD model for the underwriting pilot.",
        risk_note="Adverse decisions possible: one input among several for underwriters.",
    )
    services.reject(
        request=rejected,
        by=approver2,
        comment="Probabilities are not calibrated and the card is half written; not for credit decisions yet.",
        password=DEMO_PASSWORD,
    )

    # A draft the fraud team has not submitted yet.
    fraud = models["card-fraud"].versions.filter(is_deleted=False).order_by("version").first()
    services.create_request(
        by=engineer,
        model_version=fraud,
        environment=environments["staging"],
        endpoint_name="card-fraud",
        justification="Score the review queue in staging.",
        risk_note="Draft card: to be completed before submission.",
    )


def _staging(admin) -> Environment:
    return services.create_environment(
        by=admin,
        name="staging",
        description="Pre-production: business users try a model on real traffic copies.",
        display_order=1,
        min_card_completeness=40,
        forbid_unapproved_pii=True,
        # The demo's models are scikit-learn pickles, trusted inside the organisation.
        allow_pickle=True,
        request_expiry_hours=72,
        rules=[{"role": APPROVER, "required_approvals": 1}],
    )


def _production(admin) -> Environment:
    model_risk = Team.objects.filter(name="Model Risk").first()
    platform_ops = Team.objects.filter(name="Platform Ops").first()
    rules = [{"role": APPROVER, "required_approvals": 1}]
    rules.append(
        {"team": model_risk, "required_approvals": 1} if model_risk else {"role": APPROVER, "required_approvals": 1}
    )
    return services.create_environment(
        by=admin,
        name="production",
        description="Customer-facing scoring. Two approvals (Approvers + Model Risk), step-up, pushed by Platform Ops.",
        display_order=2,
        min_card_completeness=80,
        metric_thresholds=[{"metric": "roc_auc", "op": ">=", "value": CHURN_AUC_THRESHOLD}],
        forbid_unapproved_pii=True,
        requires_step_up=True,
        allow_pickle=True,
        request_expiry_hours=120,
        deployer_team=platform_ops,
        rules=rules,
    )


def _aliased(model, alias: str) -> ModelVersion:
    return ModelAlias.objects.select_related("model_version").get(registered_model=model, alias=alias).model_version


def _submitted(user, version, environment, endpoint, **fields) -> DeploymentRequest:
    request = services.create_request(
        by=user, model_version=version, environment=environment, endpoint_name=endpoint, **fields
    )
    request = services.submit(request=request, by=user)
    # The checks, as the checks job runs them; the job itself runs them again once sent, which
    # changes nothing (results are keyed by check name).
    return services.record_checks(request=request, outcomes=policy.run_checks(request))
