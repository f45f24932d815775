"""The Share dialog (loaded into a Bootstrap modal with htmx, or as a page without JS) and the
bulk share form. Thin: permission via sharing.managed_object, writes via sharing.grant/revoke,
which call each app's audited share service."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from apps.accounts import sharing
from apps.accounts.forms import BulkShareForm, RevokeForm, ShareForm
from apps.accounts.manage_views import submit
from apps.accounts.models import Team, User
from apps.accounts.selectors import is_platform_admin


def _managed_or_404(request: HttpRequest, kind: str, pk: int) -> tuple[sharing.Shareable, object]:
    found = sharing.managed_object(request.user, kind, pk)
    if found is None:
        # Missing, hidden and "visible but not yours to share" all look the same.
        raise Http404("No such object.")
    return found


def _is_htmx(request: HttpRequest) -> bool:
    return request.headers.get("HX-Request") == "true"


def _render_dialog(request, shareable, obj, form, *, status: int = 200, notice: str = "", error: str = ""):
    context = {
        "shareable": shareable,
        "object": obj,
        "rows": sharing.who_has_access(shareable, obj),
        "form": form,
        "notice": notice,
        "error": error,
        "share_url": reverse("accounts:share", args=[shareable.kind, obj.pk]),
        "revoke_url": reverse("accounts:share_revoke", args=[shareable.kind, obj.pk]),
        "object_url": shareable.url(obj),
    }
    template = "partials/share_dialog.html" if _is_htmx(request) else "accounts/share_page.html"
    return render(request, template, context, status=status)


def _changed(request, shareable, obj, notice: str) -> HttpResponse:
    """After a grant or revoke: back to the page (no JS), or the refreshed dialog (htmx)."""
    if not _is_htmx(request):
        messages.success(request, notice)
        return redirect("accounts:share", shareable.kind, obj.pk)
    # Re-read (the service changed it); a manager who just removed their own view share may no
    # longer see it: the dialog then shows the object as it was loaded, not a 500.
    obj = shareable.lookup(request.user, obj.pk) or obj
    return _render_dialog(request, shareable, obj, ShareForm(shareable=shareable), notice=notice)


def _error_text(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return " ".join(exc.messages)
    return str(exc) or "Not allowed."


@login_required
@require_http_methods(["GET", "POST"])
def share(request: HttpRequest, kind: str, pk: int) -> HttpResponse:
    """GET: who has access and the grant form. POST: grant a level to users and/or teams, all
    in one transaction."""
    shareable, obj = _managed_or_404(request, kind, pk)
    if request.method == "GET":
        return _render_dialog(request, shareable, obj, ShareForm(shareable=shareable))
    form = ShareForm(request.POST, shareable=shareable)
    if not form.is_valid():
        return _render_dialog(request, shareable, obj, form, status=400)
    data = form.cleaned_data
    try:
        count = sharing.apply_many(
            by=request.user,
            targets=[(shareable, obj)],
            users=data["usernames"],
            teams=list(data["teams"]),
            level=data["level"],
            grant_access=True,
        )
    except PermissionDenied:
        raise Http404("No such object.")
    except ValidationError as exc:
        return _render_dialog(request, shareable, obj, form, status=400, error=_error_text(exc))
    return _changed(request, shareable, obj, f"Shared with {count} grantee{'s' if count != 1 else ''}.")


@login_required
@require_POST
def share_revoke(request: HttpRequest, kind: str, pk: int) -> HttpResponse:
    """Take back one grantee's explicit share (every level, or the one named)."""
    shareable, obj = _managed_or_404(request, kind, pk)
    form = RevokeForm(request.POST)
    if not form.is_valid():
        return _render_dialog(
            request, shareable, obj, ShareForm(shareable=shareable), status=400, error="Choose whom to remove."
        )
    grantee_kind, grantee_pk = form.cleaned_data["grantee"].split(":")
    model = Team if grantee_kind == "team" else User
    grantee = model.objects.filter(pk=int(grantee_pk)).first()
    if grantee is None:
        return _render_dialog(
            request, shareable, obj, ShareForm(shareable=shareable), status=400, error="No such user or team."
        )
    try:
        sharing.revoke(
            shareable=shareable,
            obj=obj,
            by=request.user,
            user=grantee if model is User else None,
            team=grantee if model is Team else None,
            level=form.cleaned_data["level"] or None,
        )
    except PermissionDenied:
        raise Http404("No such object.")
    except ValidationError as exc:
        return _render_dialog(
            request, shareable, obj, ShareForm(shareable=shareable), status=400, error=_error_text(exc)
        )
    return _changed(request, shareable, obj, f"Access of {grantee} removed.")


@login_required
@require_http_methods(["GET", "POST"])
def bulk_share(request: HttpRequest) -> HttpResponse:
    """Platform admins: grant or revoke one level for users/teams on several objects of one
    kind, in one transaction (all or nothing)."""
    if not is_platform_admin(request.user):
        raise Http404("No such page.")
    kinds = list(sharing.REGISTRY.values())
    if not kinds:
        raise Http404("Nothing is shareable yet.")
    kind = request.POST.get("kind") or request.GET.get("kind") or kinds[0].kind
    shareable = sharing.shareable_for_kind(kind)
    if shareable is None:
        raise Http404("No such kind of object.")
    # Admins see every object; the picker lists the first 1000 (search narrows it).
    objects = shareable.visible(request.user)
    form = BulkShareForm(request.POST or None, shareable=shareable, objects=objects)

    def write(data: dict) -> int:
        try:
            return sharing.apply_many(
                by=request.user,
                targets=[(shareable, obj) for obj in data["objects"]],
                users=data["usernames"],
                teams=list(data["teams"]),
                level=data["level"],
                grant_access=data["action"] == "grant",
            )
        except (ValidationError, PermissionDenied) as exc:
            raise ValidationError(_error_text(exc)) from exc  # shown above the form, as before

    done, count, status = submit(request, form, write)
    if done:
        verb = "Granted" if form.cleaned_data["action"] == "grant" else "Revoked"
        messages.success(request, f"{verb} {count} share{'s' if count != 1 else ''} in one change.")
        return redirect(f"{reverse('accounts:bulk_share')}?kind={kind}")
    choices = list(objects.order_by("pk")[:1000])
    return render(
        request,
        "accounts/bulk_share.html",
        {"form": form, "kinds": kinds, "shareable": shareable, "choices": choices},
        status=status,
    )
