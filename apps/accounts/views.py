from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from apps.accounts import selectors, services
from apps.accounts.forms import TeamMemberForm, TokenCreateForm
from apps.accounts.models import PersonalAccessToken, Team


@login_required
def profile(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "accounts/profile.html",
        {
            "roles": selectors.roles_of(request.user),
            "teams": selectors.teams_of(request.user),
            "tokens": selectors.tokens_of(request.user),
            "token_form": TokenCreateForm(),
        },
    )


@login_required
@require_POST
def token_create(request: HttpRequest) -> HttpResponse:
    form = TokenCreateForm(request.POST)
    if form.is_valid():
        try:
            token, raw = services.create_token(
                user=request.user,
                name=form.cleaned_data["name"],
                expires_in_days=form.cleaned_data["expires_in_days"],
            )
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            # The secret is shown on this response only; it is not stored anywhere.
            return render(request, "accounts/token_created.html", {"token": token, "raw_token": raw})
    return render(
        request,
        "accounts/profile.html",
        {
            "roles": selectors.roles_of(request.user),
            "teams": selectors.teams_of(request.user),
            "tokens": selectors.tokens_of(request.user),
            "token_form": form,
        },
        status=400,
    )


@login_required
@require_POST
def token_revoke(request: HttpRequest, token_id: int) -> HttpResponse:
    token = get_object_or_404(PersonalAccessToken, pk=token_id, user=request.user)
    services.revoke_token(token=token, by=request.user)
    messages.success(request, f"Token “{token.name}” revoked.")
    return redirect("accounts:profile")


@login_required
def team_list(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "accounts/team_list.html",
        {"teams": selectors.teams_with_counts(), "is_admin": selectors.is_platform_admin(request.user)},
    )


@login_required
def team_detail(request: HttpRequest, slug: str) -> HttpResponse:
    team = get_object_or_404(Team.objects.select_related("lead"), slug=slug)
    return render(
        request,
        "accounts/team_detail.html",
        {
            "team": team,
            "members": selectors.team_members(team),
            "can_manage": selectors.can_manage_team(request.user, team),
            "is_admin": selectors.is_platform_admin(request.user),
            "member_form": TeamMemberForm(),
        },
    )
