"""Deployment pages: requests (list, page, new), the approvers' inbox, endpoints and their
history, environments and their policies. Thin: permission-filtered reads from selectors,
every write through services, whose refusals come back inline. A request or endpoint the
user may not see answers 404; one they see but may not act on, 403."""

from __future__ import annotations

import json
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db.models import Prefetch
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from apps.core.forms import add_service_errors
from apps.deployments import permissions, policy, selectors, services
from apps.deployments.diff import request_diff
from apps.deployments.forms import DecisionForm, EnvironmentPolicyForm, NewRequestForm, ReasonForm, RequestListForm
from apps.deployments.models import Approval, DeploymentRequest, Endpoint, Environment
from apps.registry import cards
from apps.registry import page_selectors as registry_pages
from apps.registry import selectors as registry_selectors

PER_PAGE = 25
State = DeploymentRequest.State
WITHDRAWABLE = (State.DRAFT, State.PENDING, State.APPROVED)


def _approved_prefetch(lookup: str) -> Prefetch:
    """The approving decisions of a request, with their approvers, as `.approved`."""
    return Prefetch(
        lookup,
        queryset=Approval.objects.filter(decision=Approval.Decision.APPROVE).select_related("approver"),
        to_attr="approved",
    )


# --- Requests ------------------------------------------------------------------------------------


@login_required
@require_GET
def request_list(request: HttpRequest) -> HttpResponse:
    choice = RequestListForm(request.GET).values()
    requests = selectors.requests_for_list(
        request.user,
        state=choice["state"],
        environment=choice["environment"],
        model=choice["model"],
        requester=choice["requester"],
    )
    page = Paginator(requests, PER_PAGE).get_page(request.GET.get("page"))
    context = {
        "page": page,
        "choice": choice,
        "filtered": any(choice.values()),
        "states": State.choices,
        "environments": list(Environment.objects.order_by("display_order", "name").values_list("name", flat=True)),
    }
    if request.headers.get("HX-Request"):
        return render(request, "deployments/_request_results.html", context)
    return render(request, "deployments/request_list.html", context)


@login_required
@require_GET
def request_detail(request: HttpRequest, pk: int) -> HttpResponse:
    return _request_page(request, _request_or_404(request, pk))


@login_required
@require_POST
def request_decide(request: HttpRequest, pk: int) -> HttpResponse:
    """Approve or reject (services.approve / reject): a comment always, the password again
    when the environment asks for step-up. A refusal comes back on the page; nothing changes."""
    found = _request_or_404(request, pk)
    form = DecisionForm(request.POST)
    if not form.is_valid():
        return _request_page(request, found, decision_form=form, status=400)
    data = form.cleaned_data
    decide = services.approve if data["decision"] == "approve" else services.reject
    try:
        decide(
            request=found,
            by=request.user,
            comment=data["comment"],
            password=data["password"] or None,
            http_request=request,
        )
    except PermissionDenied as exc:
        return _request_page(request, found, decision_form=form, decision_error=str(exc), status=403)
    except ValidationError as exc:
        return _request_page(request, found, decision_form=form, decision_error=" ".join(exc.messages), status=400)
    messages.success(request, "Approved." if data["decision"] == "approve" else "Rejected.")
    return redirect("deployments:request", found.pk)


@login_required
@require_POST
def request_withdraw(request: HttpRequest, pk: int) -> HttpResponse:
    found = _request_or_404(request, pk)
    form = ReasonForm(request.POST)
    reason = form.cleaned_data["reason"] if form.is_valid() else ""
    return _act(request, found, "Request withdrawn.", services.withdraw, request=found, by=request.user, reason=reason)


@login_required
@require_POST
def request_submit(request: HttpRequest, pk: int) -> HttpResponse:
    found = _request_or_404(request, pk)
    return _act(request, found, "Submitted for approval.", services.submit, request=found, by=request.user)


@login_required
@require_POST
def request_deploy(request: HttpRequest, pk: int) -> HttpResponse:
    found = _request_or_404(request, pk)
    if not permissions.can_deploy(request.user, found):
        raise PermissionDenied("You may not deploy to this environment.")
    return _act(request, found, "Deploy started.", services.start_deploy, request=found, by=request.user)


@login_required
@require_POST
def request_rerun_checks(request: HttpRequest, pk: int) -> HttpResponse:
    found = _request_or_404(request, pk)
    return _act(request, found, "Checks queued again.", services.rerun_checks, request=found, by=request.user)


def _act(http_request: HttpRequest, found: DeploymentRequest, done: str, action, /, **kwargs: Any) -> HttpResponse:
    """Run one state change; PermissionDenied is a 403, a refused transition a message."""
    try:
        action(**kwargs)
    except ValidationError as exc:
        messages.error(http_request, " ".join(exc.messages))
    else:
        messages.success(http_request, done)
    return redirect("deployments:request", found.pk)


@login_required
@require_http_methods(["GET", "POST"])
def request_new(request: HttpRequest) -> HttpResponse:
    """A request from a version the user may request: created as a draft, then submitted."""
    initial = {key: request.GET.get(key, "") for key in ("model", "version", "environment", "endpoint_name")}
    initial = {key: value for key, value in initial.items() if value}
    form = NewRequestForm(request.POST or None, initial={"rollout": "replace", "canary_percent": 10, **initial})
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            data = form.cleaned_data
            version = registry_selectors.version_for(request.user, data["model"].strip(), data["version"])
            if version is None:
                form.add_error("version", "No such version of a model you can see.")
            else:
                try:
                    created = services.create_request(
                        by=request.user,
                        model_version=version,
                        environment=data["environment"],
                        endpoint_name=data["endpoint_name"],
                        justification=data["justification"],
                        risk_note=data["risk_note"],
                        rollout=data["rollout"],
                        canary_percent=data["canary_percent"] or 0,
                    )
                except PermissionDenied as exc:
                    form.add_error(None, str(exc))
                    status = 403
                except ValidationError as exc:
                    add_service_errors(form, exc, renames={"model_version": "version"})
                else:
                    try:
                        services.submit(request=created, by=request.user)
                    except ValidationError as exc:
                        messages.warning(request, "Saved as a draft, not submitted: " + " ".join(exc.messages))
                    else:
                        messages.success(request, f"Request #{created.pk} submitted for approval.")
                    return redirect("deployments:request", created.pk)
    context = {
        "form": form,
        "model_names": list(
            registry_selectors.visible_models(request.user).order_by("name").values_list("name", flat=True)[:500]
        ),
    }
    return render(request, "deployments/request_new.html", context, status=status)


@login_required
@require_GET
def inbox(request: HttpRequest) -> HttpResponse:
    """Pending requests waiting for the current user's decision."""
    page = Paginator(selectors.inbox(request.user), PER_PAGE).get_page(request.GET.get("page"))
    return render(request, "deployments/inbox.html", {"page": page})


def _request_or_404(request: HttpRequest, pk: int) -> DeploymentRequest:
    found = selectors.request_for(request.user, pk)
    if found is None:
        raise Http404("No such deployment request.")
    return found


def _request_page(
    request: HttpRequest,
    found: DeploymentRequest,
    *,
    decision_form: DecisionForm | None = None,
    decision_error: str | None = None,
    status: int = 200,
) -> HttpResponse:
    user = request.user
    version = found.model_version
    environment = found.environment
    approvals = list(found.approvals.all())
    by_approver = {approval.approver_id: approval for approval in approvals}
    state = selectors.policy_state(found)
    rule_rows = [
        {
            "label": progress.rule.label,
            "required": progress.rule.required,
            "count": progress.count,
            "satisfied": progress.satisfied,
            "approvals": [by_approver[i] for i in progress.approver_ids if i in by_approver],
        }
        for progress in state.rules
    ]
    not_counted = [by_approver[i] for i in state.not_counted if i in by_approver]

    refusal = None
    may_decide = False
    if found.state == State.PENDING:
        membership = selectors.memberships_for([user.pk])[user.pk]
        refusal = state.decision_refusal(user.pk, membership)
        may_decide = refusal is None
    score, missing = registry_pages.completeness_of(version)
    context = {
        "req": found,
        "version": version,
        "model": version.registered_model,
        "environment": environment,
        "window": policy.describe_change_window(environment.change_window),
        "score": score,
        "missing_sections": [cards.SECTIONS.get(key, key) for key in missing],
        "rule_rows": rule_rows,
        "not_counted": not_counted,
        "policy_summary": state.summary,
        "checks": _check_rows(found),
        "diff": request_diff(user, found),
        "timeline": selectors.request_timeline(found),
        "may_decide": may_decide,
        "refusal": refusal,
        "decision_form": decision_form or DecisionForm(initial={"decision": "approve"}),
        "decision_error": decision_error,
        "may_withdraw": found.state in WITHDRAWABLE and (found.requester_id == user.pk or permissions.is_admin(user)),
        "may_submit": found.state == State.DRAFT and (found.requester_id == user.pk or permissions.is_admin(user)),
        "may_rerun_checks": found.state == State.PENDING
        and (found.requester_id == user.pk or permissions.is_admin(user)),
        "may_deploy": found.state == State.APPROVED and permissions.can_deploy(user, found),
    }
    return render(request, "deployments/request_detail.html", context, status=status)


def _check_rows(found: DeploymentRequest) -> list[dict]:
    """Each required check with its result (or none yet), then any other stored results."""
    results = {check.name: check for check in found.checks.all()}
    names = policy.required_check_names(found.environment)
    rows = []
    for name in [*names, *sorted(set(results) - set(names))]:
        check = results.get(name)
        rows.append(
            {
                "name": name,
                "check": check,
                "required": name in names,
                "evidence": _evidence_items(check.evidence if check else {}),
            }
        )
    return rows


def _evidence_items(evidence: Any) -> list[tuple[str, str]]:
    if not isinstance(evidence, dict):
        return [("value", json.dumps(evidence, default=str))]
    items = []
    for key, value in evidence.items():
        text = value if isinstance(value, str) else json.dumps(value, default=str)
        items.append((str(key), text))
    return items


# --- Endpoints -----------------------------------------------------------------------------------


@login_required
@require_GET
def endpoint_list(request: HttpRequest) -> HttpResponse:
    environment = request.GET.get("environment", "").strip()
    state = request.GET.get("state", "").strip()
    endpoints = selectors.visible_endpoints(request.user)
    if environment:
        endpoints = endpoints.filter(environment__name=environment)
    if state in Endpoint.State.values:
        endpoints = endpoints.filter(state=state)
    endpoints = (
        endpoints.select_related(
            "environment",
            "owner",
            "current_version__registered_model",
            "canary_version__registered_model",
            "live_request__deployed_by",
        )
        .prefetch_related(_approved_prefetch("live_request__approvals"))
        .order_by("name")
    )
    page = Paginator(endpoints, PER_PAGE).get_page(request.GET.get("page"))
    context = {
        "page": page,
        "environment": environment,
        "state": state,
        "states": Endpoint.State.choices,
        "environments": list(Environment.objects.order_by("display_order", "name").values_list("name", flat=True)),
    }
    return render(request, "deployments/endpoint_list.html", context)


@login_required
@require_GET
def endpoint_detail(request: HttpRequest, name: str) -> HttpResponse:
    endpoint = _endpoint_or_404(request, name)
    history = list(
        selectors.endpoint_history(endpoint).prefetch_related(_approved_prefetch("request__approvals"))[:200]
    )
    version = endpoint.current_version
    columns = registry_pages.signature_columns(version.signature_inputs) if version is not None else []
    names = [column["name"] for column in columns if column.get("name")] or ["x"]
    body = json.dumps({"dataframe_split": {"columns": names, "data": [[0] * len(names)]}})
    invoke_url = request.build_absolute_uri(reverse("serving:invocations", args=[endpoint.name]))
    curl = (
        f"curl -X POST {invoke_url} \\\n"
        '  -H "Authorization: Bearer $CAUSEWAY_TOKEN" \\\n'
        '  -H "Content-Type: application/json" \\\n'
        f"  -d '{body}'"
    )
    user = request.user
    context = {
        "endpoint": endpoint,
        "history": history,
        "curl": curl,
        "can_invoke": permissions.can_invoke(user, endpoint),
        "can_operate": endpoint.state == Endpoint.State.LIVE and permissions.can_operate_endpoint(user, endpoint),
        "can_roll_back": endpoint.previous_version_id is not None or endpoint.canary_version_id is not None,
    }
    return render(request, "deployments/endpoint_detail.html", context)


@login_required
@require_POST
def endpoint_rollback(request: HttpRequest, name: str) -> HttpResponse:
    endpoint = _endpoint_or_404(request, name)
    return _endpoint_act(request, endpoint, services.rollback_endpoint, "Rolled back.")


@login_required
@require_POST
def endpoint_retire(request: HttpRequest, name: str) -> HttpResponse:
    endpoint = _endpoint_or_404(request, name)
    return _endpoint_act(request, endpoint, services.retire_endpoint, "Endpoint retired.")


def _endpoint_act(request: HttpRequest, endpoint: Endpoint, action, done: str) -> HttpResponse:
    if not permissions.can_operate_endpoint(request.user, endpoint):
        raise PermissionDenied("You may not operate this endpoint.")
    form = ReasonForm(request.POST)
    reason = form.cleaned_data["reason"] if form.is_valid() else ""
    try:
        action(endpoint=endpoint, by=request.user, reason=reason)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, done)
    return redirect("deployments:endpoint", endpoint.name)


def _endpoint_or_404(request: HttpRequest, name: str) -> Endpoint:
    endpoint = selectors.endpoint_for(request.user, name)
    if endpoint is None:
        raise Http404("No such endpoint.")
    return endpoint


# --- Environments --------------------------------------------------------------------------------


@login_required
@require_GET
def environment_list(request: HttpRequest) -> HttpResponse:
    rows = [
        {"environment": environment, "window": policy.describe_change_window(environment.change_window)}
        for environment in selectors.environments()
    ]
    return render(
        request,
        "deployments/environment_list.html",
        {"rows": rows, "can_edit": permissions.can_edit_policy(request.user)},
    )


@login_required
@require_http_methods(["GET", "POST"])
def environment_edit(request: HttpRequest, name: str) -> HttpResponse:
    """An environment's policy and approval rules (services.update_environment_policy): admins."""
    environment = selectors.environment_by_name(name)
    if environment is None:
        raise Http404("No such environment.")
    if not permissions.can_edit_policy(request.user):
        raise PermissionDenied("Only platform admins may change environment policies.")
    form = EnvironmentPolicyForm(request.POST or None, initial=EnvironmentPolicyForm.initial_for(environment))
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            try:
                services.update_environment_policy(
                    environment=environment,
                    by=request.user,
                    rules=form.cleaned_data["rules"],
                    **form.policy_changes(),
                )
            except ValidationError as exc:
                add_service_errors(form, exc)
            else:
                messages.success(request, f"Policy of {environment.name} saved.")
                return redirect("deployments:environment_list")
    return render(
        request, "deployments/environment_edit.html", {"environment": environment, "form": form}, status=status
    )
