"""Platform admins' pages: users (search, role filter, invite, deactivate, roles), teams
(create, members, lead) and the per-user access report. Others get 404: these pages do not
exist for them. Team leads may add and remove their own team's members."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse, reverse_lazy
from django.views.decorators.http import require_http_methods, require_POST

from apps.accounts import selectors, services, sharing
from apps.accounts.forms import InviteForm, RolesForm, TeamCreateForm, TeamMemberForm, UserFilterForm
from apps.accounts.models import Team, User
from apps.audit import services as audit
from apps.core.forms import add_service_errors


def _require_admin(request: HttpRequest) -> None:
    if not selectors.is_platform_admin(request.user):
        raise Http404("No such page.")


def submit(request: HttpRequest, form, write: Callable[[dict], Any]) -> tuple[bool, Any, int]:
    """The POST half of a form page: (done, the service's result, status). On GET nothing is
    written (200); on POST a valid form goes to `write(cleaned_data)` (a service call), and an
    invalid form or a ValidationError from the service puts the errors on the form (400)."""
    if request.method != "POST":
        return False, None, 200
    if form.is_valid():
        try:
            return True, write(form.cleaned_data), 200
        except ValidationError as exc:
            add_service_errors(form, exc)
    return False, None, 400


@login_required
def user_list(request: HttpRequest) -> HttpResponse:
    _require_admin(request)
    filters = UserFilterForm(request.GET or None)
    data = filters.cleaned_data if filters.is_valid() else {}
    users = selectors.users_for_admin(text=data.get("q", ""), role=data.get("role", ""), status=data.get("status", ""))
    page = Paginator(users, 50).get_page(request.GET.get("page"))
    return render(request, "accounts/manage/user_list.html", {"filters": filters, "page": page})


@login_required
@require_http_methods(["GET", "POST"])
def user_invite(request: HttpRequest) -> HttpResponse:
    _require_admin(request)
    form = InviteForm(request.POST or None)
    done, user, status = submit(
        request,
        form,
        lambda data: services.invite_user(
            username=data["username"],
            email=data["email"],
            display_name=data["display_name"],
            roles=data["roles"],
            teams=list(data["teams"]),
            by=request.user,
            set_password_url=lambda uid, token: request.build_absolute_uri(
                reverse("accounts:set_password", args=[uid, token])
            ),
        ),
    )
    if done:
        messages.success(request, f"{user.username} invited: a link to choose a password was e-mailed.")
        return redirect("accounts:manage_user", user.pk)
    return render(request, "accounts/manage/user_invite.html", {"form": form}, status=status)


@login_required
def user_detail(request: HttpRequest, pk: int) -> HttpResponse:
    _require_admin(request)
    person = get_object_or_404(User, pk=pk)
    roles_form = RolesForm(initial={"roles": selectors.roles_of(person)})
    return render(
        request,
        "accounts/manage/user_detail.html",
        {
            "person": person,
            "roles_form": roles_form,
            "teams": selectors.teams_of(person),
            "tokens": selectors.tokens_of(person)[:20],
        },
    )


@login_required
@require_POST
def user_roles(request: HttpRequest, pk: int) -> HttpResponse:
    _require_admin(request)
    person = get_object_or_404(User, pk=pk)
    form = RolesForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Unknown role.")
        return redirect("accounts:manage_user", pk)
    services.set_roles(user=person, roles=form.cleaned_data["roles"], by=request.user)
    messages.success(request, f"Roles of {person.username} saved.")
    return redirect("accounts:manage_user", pk)


@login_required
@require_POST
def user_active(request: HttpRequest, pk: int) -> HttpResponse:
    _require_admin(request)
    person = get_object_or_404(User, pk=pk)
    action = request.POST.get("action")
    if action not in ("deactivate", "reactivate"):
        return HttpResponse("action must be deactivate or reactivate", status=400, content_type="text/plain")
    try:
        services.set_active(user=person, active=action == "reactivate", by=request.user)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect("accounts:manage_user", pk)
    messages.success(request, f"{person.username} {action}d.")
    return redirect("accounts:manage_user", pk)


@login_required
def user_access(request: HttpRequest, pk: int) -> HttpResponse:
    """What the user can reach (every governed kind) and why."""
    _require_admin(request)
    person = get_object_or_404(User, pk=pk)
    return render(
        request,
        "accounts/manage/access_report.html",
        {"person": person, "sections": sharing.access_report(person), "roles": selectors.roles_of(person)},
    )


@login_required
@require_http_methods(["GET", "POST"])
def team_create(request: HttpRequest) -> HttpResponse:
    _require_admin(request)
    form = TeamCreateForm(request.POST or None)
    done, team, status = submit(
        request,
        form,
        lambda data: services.create_team(
            name=data["name"], description=data["description"], lead=data["lead"], by=request.user
        ),
    )
    if done:
        messages.success(request, f"Team {team.name} created.")
        return redirect("accounts:team_detail", team.slug)
    return render(request, "accounts/manage/team_create.html", {"form": form}, status=status)


@login_required
@require_POST
def team_member(request: HttpRequest, slug: str) -> HttpResponse:
    """Add or remove a member (admins and the team's lead) or name the lead (admins)."""
    team = get_object_or_404(Team.objects.select_related("lead"), slug=slug)
    if not selectors.can_manage_team(request.user, team):
        raise Http404("No such page.")
    form = TeamMemberForm(request.POST)
    if not form.is_valid():
        messages.error(request, " ".join(error for errors in form.errors.values() for error in errors))
        return redirect("accounts:team_detail", slug)
    person, action = form.cleaned_data["username"], form.cleaned_data["action"]
    try:
        if action == "add":
            services.add_team_member(team=team, user=person, by=request.user)
        elif action == "remove":
            services.remove_team_member(team=team, user=person, by=request.user)
        else:
            services.set_team_lead(team=team, lead=person, by=request.user)
    except PermissionDenied as exc:
        messages.error(request, str(exc))
        return redirect("accounts:team_detail", slug)
    messages.success(request, {"add": "Member added.", "remove": "Member removed.", "lead": "Lead named."}[action])
    return redirect("accounts:team_detail", slug)


class SetPasswordView(auth_views.PasswordResetConfirmView):
    """The invitation link: Django's reset-token check (single use, expiring), then the
    password policy's validators."""

    template_name = "accounts/set_password.html"
    success_url = reverse_lazy("login")
    post_reset_login = False

    def form_valid(self, form):
        with transaction.atomic():
            response = super().form_valid(form)
            audit.record(actor=form.user, action="user.set_password", target=form.user, after={"via": "invitation"})
        messages.success(self.request, "Password set. Sign in with it now.")
        return response
