from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from apps.jobs import registry, selectors, services
from apps.jobs.filters import JobFilter


@login_required
def job_list(request: HttpRequest) -> HttpResponse:
    filterset = JobFilter(request.GET, queryset=selectors.jobs_visible_to(request.user))
    page = Paginator(filterset.qs, 50).get_page(request.GET.get("page"))
    context = {
        "filter": filterset,
        "page": page,
        "counts": selectors.status_counts(request.user),
        "kinds": registry.known_kinds(),
        "any_active": any(job.status in ("queued", "running") for job in page),
    }
    template = "jobs/_job_rows.html" if request.headers.get("HX-Request") else "jobs/list.html"
    return render(request, template, context)


@login_required
def job_detail(request: HttpRequest, job_id) -> HttpResponse:
    job = selectors.job_for(request.user, job_id)
    if job is None:
        raise Http404
    context = {"job": job, "log": selectors.log_of(job), "kind_label": registry.label_for(job.kind)}
    template = "jobs/_job_status.html" if request.headers.get("HX-Request") else "jobs/detail.html"
    return render(request, template, context)


@login_required
@require_POST
def job_cancel(request: HttpRequest, job_id) -> HttpResponse:
    return _act(request, job_id, services.cancel_job, "Job cancelled.")


@login_required
@require_POST
def job_retry(request: HttpRequest, job_id) -> HttpResponse:
    return _act(request, job_id, services.retry_job, "Job queued again.")


def _act(request: HttpRequest, job_id, service, done_message: str) -> HttpResponse:
    job = selectors.job_for(request.user, job_id)
    if job is None:
        raise Http404
    try:
        service(job=job, by=request.user)
    except (ValidationError, PermissionDenied) as exc:
        messages.error(request, " ".join(getattr(exc, "messages", [str(exc)])))
    else:
        messages.success(request, done_message)
    return redirect("jobs:detail", job_id=job.pk)
