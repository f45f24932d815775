"""Catalog pages. Thin: permission-filtered reads from selectors, writes through services.
A dataset the user may not see answers 404 everywhere."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db import transaction
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from apps.catalog import charts, permissions, selectors, services
from apps.catalog.forms import AccessRequestForm, DatasetForm, DecisionForm, VersionUploadForm
from apps.catalog.models import AccessRequest, Column, Dataset
from apps.core.forms import add_service_errors
from apps.core.uploads import request_too_large


@login_required
def dataset_list(request: HttpRequest) -> HttpResponse:
    filters = {facet: request.GET.getlist(facet) for facet in selectors.FACETS}
    result = selectors.search_datasets(
        request.user, text=request.GET.get("q", ""), filters=filters, sort=request.GET.get("sort", ""), listed=True
    )
    page = Paginator(result.datasets, 25).get_page(request.GET.get("page"))
    context = {
        "page": page,
        "facets": _with_checked(result.facets, filters),
        "q": request.GET.get("q", ""),
        "capped": result.capped,
    }
    template = "catalog/_results.html" if request.headers.get("HX-Request") else "catalog/list.html"
    return render(request, template, context)


def _with_checked(facets: dict[str, list[dict]], filters: dict[str, list[str]]) -> dict[str, list[dict]]:
    """Facet values marked with whether they are among the chosen filters (so the template does
    not search the filters once per value)."""
    chosen = {facet: set(values) for facet, values in filters.items()}
    return {
        facet: [{**item, "checked": item["value"] in chosen.get(facet, ())} for item in items]
        for facet, items in facets.items()
    }


@login_required
def dataset_detail(request: HttpRequest, slug: str) -> HttpResponse:
    dataset = _visible_or_404(request, slug)
    version = dataset.current_version
    columns = selectors.columns_of(version)
    # Each permission is worked out once per page (they cost guardian and access-request queries).
    content_visible = permissions.can_see_content(request.user, dataset)
    column_stats = selectors.column_stats_for(request.user, dataset, columns, content_visible=content_visible)
    latest = dataset.versions.order_by("-number").first()
    context = {
        "dataset": dataset,
        "version": version,
        "columns": columns,
        "column_stats": column_stats,
        "figures": charts.profile_figures(columns, column_stats),
        "latest_version": latest,
        "latest_job": selectors.latest_profile_job(latest),
        "sample_rows": (
            selectors.sample_rows_for(request.user, dataset, version, content_visible=content_visible)
            if version
            else None
        ),
        "versions": selectors.versions_of(dataset)[:20],
        "can_change": permissions.can_change(request.user, dataset),
        "can_see_content": content_visible,
        "can_decide": permissions.can_decide_access(request.user, dataset),
        "access_requests": selectors.access_requests_for_dataset(request.user, dataset)[:20],
        "is_following": dataset.followers.filter(pk=request.user.pk).exists(),
        "access_form": AccessRequestForm(),
        "upload_form": VersionUploadForm(),
    }
    return render(request, "catalog/detail.html", context)


@login_required
def dataset_create(request: HttpRequest) -> HttpResponse:
    if not request.user.has_perm("catalog.add_dataset"):
        raise PermissionDenied
    if request.method == "POST" and request_too_large(request, settings.CATALOG_MAX_UPLOAD_BYTES):
        return _too_large(request)
    form = DatasetForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            with transaction.atomic():
                dataset = services.create_dataset(
                    by=request.user,
                    name=data["name"],
                    description=data["description"],
                    classification=data["classification"],
                    visibility=data["visibility"],
                    team=data["team"],
                    domain=data["domain"],
                    tags=data["tags"],
                    source_kind=data["source_kind"],
                    source_uri=data["source_uri"],
                    format=data["format"],
                    documentation_links=data["documentation_links"],
                )
                if data["file"]:
                    services.add_version_from_upload(dataset=dataset, by=request.user, upload=data["file"])
                elif data["server_path"]:
                    services.add_version_from_path(dataset=dataset, by=request.user, path=data["server_path"])
        except services.UploadTooLarge:
            return _too_large(request)
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(request, f"Dataset “{dataset.name}” registered.")
            return redirect("catalog:dataset", slug=dataset.slug)
    return render(request, "catalog/form.html", {"form": form}, status=400 if form.errors else 200)


@login_required
@require_POST
def version_add(request: HttpRequest, slug: str) -> HttpResponse:
    dataset = _visible_or_404(request, slug)
    if request_too_large(request, settings.CATALOG_MAX_UPLOAD_BYTES):
        return _too_large(request)
    form = VersionUploadForm(request.POST, request.FILES)
    if form.is_valid():
        try:
            if form.cleaned_data["file"]:
                services.add_version_from_upload(
                    dataset=dataset, by=request.user, upload=form.cleaned_data["file"], note=form.cleaned_data["note"]
                )
            else:
                services.add_version_from_path(
                    dataset=dataset,
                    by=request.user,
                    path=form.cleaned_data["server_path"],
                    note=form.cleaned_data["note"],
                )
        except services.UploadTooLarge:
            return _too_large(request)
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        else:
            messages.success(request, "New version received; profiling has started.")
    else:
        messages.error(request, _form_errors(form))
    return redirect("catalog:dataset", slug=dataset.slug)


@login_required
def version_diff(request: HttpRequest, slug: str) -> HttpResponse:
    dataset = _visible_or_404(request, slug)
    versions = {
        v.number: v
        for v in dataset.versions.filter(number__in=[_int(request.GET.get("a")), _int(request.GET.get("b"))])
    }
    old, new = versions.get(_int(request.GET.get("a"))), versions.get(_int(request.GET.get("b")))
    if old is None or new is None:
        raise Http404
    return render(
        request,
        "catalog/diff.html",
        {"dataset": dataset, "old": old, "new": new, "diff": selectors.schema_diff(old, new)},
    )


@login_required
def version_download(request: HttpRequest, slug: str, number: int) -> HttpResponse:
    dataset = _visible_or_404(request, slug)
    if not permissions.can_see_content(request.user, dataset):
        raise PermissionDenied("Downloading this dataset needs an approved access request.")
    version = get_object_or_404(dataset.versions, number=number)
    if not version.file:
        raise Http404
    response = FileResponse(
        version.file.open("rb"), as_attachment=True, filename=f"{dataset.slug}-v{number}.{version.format}"
    )
    response["Content-Type"] = "application/octet-stream"
    response["X-Content-Type-Options"] = "nosniff"
    return response


@login_required
@require_POST
def column_update(request: HttpRequest, slug: str, column_id: int) -> HttpResponse:
    """Describe a column or flag it as PII (owners, stewards, team leads, admins)."""
    dataset = _visible_or_404(request, slug)
    column = get_object_or_404(Column, pk=column_id, version__dataset=dataset)
    services.set_column_metadata(
        column=column,
        by=request.user,
        description=request.POST.get("description", "")[:5000],
        is_pii=request.POST.get("is_pii") == "on",
    )
    messages.success(request, f"Column “{column.name}” updated.")
    return redirect(f"{reverse('catalog:dataset', kwargs={'slug': dataset.slug})}#tab-schema")


@login_required
@require_POST
def follow(request: HttpRequest, slug: str) -> HttpResponse:
    dataset = _visible_or_404(request, slug)
    services.set_following(dataset=dataset, user=request.user, follow=request.POST.get("follow") == "1")
    return redirect("catalog:dataset", slug=dataset.slug)


@login_required
@require_POST
def access_request_create(request: HttpRequest, slug: str) -> HttpResponse:
    dataset = _visible_or_404(request, slug)
    form = AccessRequestForm(request.POST)
    if form.is_valid():
        try:
            services.request_access(dataset=dataset, by=request.user, **form.cleaned_data)
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        else:
            messages.success(request, "Access requested. It waits in the access inbox of the owner and the steward.")
    else:
        messages.error(request, _form_errors(form))
    return redirect("catalog:dataset", slug=dataset.slug)


@login_required
def access_inbox(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "catalog/access_inbox.html",
        {"inbox": selectors.access_inbox(request.user), "mine": selectors.access_requests_of(request.user)[:50]},
    )


@login_required
@require_POST
def access_decide(request: HttpRequest, request_id: int) -> HttpResponse:
    access_request = get_object_or_404(AccessRequest.objects.select_related("dataset"), pk=request_id)
    if not permissions.can_view(request.user, access_request.dataset):
        raise Http404
    form = DecisionForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose approve or reject.")
        return redirect("catalog:access_inbox")
    try:
        if request.POST.get("revoke"):
            services.revoke_access(access_request=access_request, by=request.user, comment=form.cleaned_data["comment"])
        else:
            services.decide_access_request(
                access_request=access_request,
                by=request.user,
                approve=form.cleaned_data["decision"] == "approve",
                comment=form.cleaned_data["comment"],
            )
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, "Decision recorded.")
    return redirect(
        request.POST.get("next") if request.POST.get("next", "").startswith("/catalog/") else "catalog:access_inbox"
    )


def _visible_or_404(request: HttpRequest, slug: str) -> Dataset:
    dataset = selectors.dataset_for(request.user, slug)
    if dataset is None:
        raise Http404
    return dataset


def _form_errors(form) -> str:
    return " ".join(error for errors in form.errors.values() for error in errors)


def _too_large(request: HttpRequest) -> HttpResponse:
    limit = settings.CATALOG_MAX_UPLOAD_BYTES // (1024 * 1024)
    return render(request, "errors/413.html", {"limit_mb": limit}, status=413)


def _int(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
