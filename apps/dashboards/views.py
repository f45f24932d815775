from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe

from apps.dashboards import selectors

# The session remembers the last home a user switched to, so "/" keeps showing it.
SESSION_KEY = "dashboards.home_role"


@login_required
@require_safe
def home(request: HttpRequest) -> HttpResponse:
    """The home of the user's role; `?role=<slug>` switches to another role they hold. A role
    they do not hold is refused (403, 400 for a word that is no role) and their current home is
    shown with the reason, the remembered choice unchanged."""
    remembered = request.session.get(SESSION_KEY)
    requested = request.GET.get("role") or None
    refusal, status = "", 200
    try:
        role = selectors.choose_home_role(request.user, requested=requested, remembered=remembered)
    except selectors.UnknownRole:
        refusal, status = f"“{requested[:40]}” is not a role.", 400
        role = selectors.choose_home_role(request.user, remembered=remembered)
    except selectors.RoleNotHeld:
        label = selectors.ROLE_LABELS[requested]
        refusal, status = f"You do not hold the {label} role, so its home is not yours to open.", 403
        role = selectors.choose_home_role(request.user, remembered=remembered)
    else:
        if requested and role != remembered:
            request.session[SESSION_KEY] = role
    context = selectors.home_for(request.user, role) | {"refusal": refusal}
    return render(request, "dashboards/home.html", context, status=status)
