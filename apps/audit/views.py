from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from apps.audit import selectors
from apps.audit.filters import AuditEventFilter


@login_required
def audit_log(request: HttpRequest) -> HttpResponse:
    if not selectors.can_view_audit_log(request.user):
        raise Http404
    filterset = AuditEventFilter(request.GET, queryset=selectors.events_for_log(request.user))
    page = Paginator(filterset.qs, 50).get_page(request.GET.get("page"))
    template = "audit/_event_table.html" if request.headers.get("HX-Request") else "audit/log.html"
    return render(request, template, {"filter": filterset, "page": page})


@login_required
def object_history(request: HttpRequest, object_type: str, object_id: str) -> HttpResponse:
    """One object's history; 404 for those who may not see the object."""
    if not selectors.can_view_object_history(request.user, object_type, object_id):
        raise Http404
    events = selectors.events_for_object(object_type=object_type, object_id=object_id)
    page = Paginator(events, 50).get_page(request.GET.get("page"))
    template = "audit/_event_table.html" if request.headers.get("HX-Request") else "audit/object_history.html"
    return render(request, template, {"page": page, "object_type": object_type, "object_id": object_id})
