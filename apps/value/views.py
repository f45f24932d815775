"""Value pages: the portfolio (with CSV export and a printable version), the use-case page, its
forms (details, stage, links, cost and value entries, CSV import) and the business owner's home
card. Thin: permission-filtered reads from selectors, every write through services, whose
refusals come back inline. A use case the user may not see answers 404; one they see but may
not change, 403."""

from __future__ import annotations

import csv
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from apps.accounts.models import Team
from apps.accounts.selectors import teams_of
from apps.core.forms import add_service_errors
from apps.core.uploads import request_too_large
from apps.value import charts, permissions, roi, selectors, services
from apps.value.forms import CostForm, ImportForm, LinksForm, PortfolioFilterForm, StageForm, UseCaseForm, ValueForm
from apps.value.models import STAGE_ORDER, CostEntry, Stage, UseCase, ValueEntry


def _use_case_or_404(request: HttpRequest, slug: str) -> UseCase:
    use_case = selectors.use_case_for(request.user, slug)
    if use_case is None:
        raise Http404("No such use case.")
    return use_case


def _teams_for(user, use_case: UseCase | None = None):
    teams = Team.objects.all() if permissions.is_admin(user) else teams_of(user)
    if use_case is not None and use_case.team_id:
        teams = teams | Team.objects.filter(pk=use_case.team_id)
    return teams.distinct().order_by("name")


# --- Portfolio ----------------------------------------------------------------------------------


def _portfolio_for(request: HttpRequest) -> tuple[selectors.Portfolio, dict]:
    choice = PortfolioFilterForm(request.GET).values()
    figures = selectors.portfolio(
        request.user,
        team=choice["team"],
        stage=choice["stage"],
        search=choice["q"],
        start=choice["start"],
        end=choice["end"],
    )
    return figures, choice


def _query_string(choice: dict) -> str:
    params = {
        "q": choice["q"],
        "team": choice["team"].slug if choice["team"] else "",
        "stage": choice["stage"],
        "start": choice["start"].isoformat() if choice["start"] else "",
        "end": choice["end"].isoformat() if choice["end"] else "",
    }
    return urlencode({key: value for key, value in params.items() if value})


@login_required
@require_GET
def portfolio(request: HttpRequest) -> HttpResponse:
    figures, choice = _portfolio_for(request)
    currencies = list(figures.totals)
    context = {
        "portfolio": figures,
        "choice": choice,
        "query": _query_string(choice),
        "teams": Team.objects.order_by("name"),
        "stages": Stage.choices,
        "may_create": permissions.may_create(request.user),
        "funnel_figure": charts.funnel_figure(figures.funnel),
        "value_figures": [fig for fig in (charts.value_vs_cost_figure(figures.rows, c) for c in currencies) if fig],
        "roi_figure": charts.roi_ranking_figure(figures.ranked),
        "ttp_figure": charts.time_to_production_figure(figures.rows),
    }
    return render(request, "value/portfolio.html", context)


@login_required
@require_GET
def portfolio_print(request: HttpRequest) -> HttpResponse:
    figures, choice = _portfolio_for(request)
    return render(
        request,
        "value/portfolio_print.html",
        {"portfolio": figures, "choice": choice, "printed_at": timezone.now()},
    )


@login_required
@require_GET
def portfolio_csv(request: HttpRequest) -> HttpResponse:
    """The portfolio's rows as CSV (the same filters, the same visibility)."""
    figures, choice = _portfolio_for(request)
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="use-cases-{timezone.localdate().isoformat()}.csv"'
    response["X-Content-Type-Options"] = "nosniff"
    writer = csv.writer(response)
    writer.writerow(
        [
            "use_case",
            "stage",
            "owner",
            "team",
            "currency",
            "period_start",
            "period_end",
            "cost",
            "value",
            "net",
            "roi",
            "payback_date",
            "payback_days",
            "forecast_value",
            "days_to_production",
        ]
    )
    for row in figures.ranked:
        summary = row.summary
        writer.writerow(
            [
                _csv_safe(row.use_case.name),
                row.use_case.stage,
                row.use_case.owner.username,
                _csv_safe(row.use_case.team.name) if row.use_case.team else "",
                row.use_case.currency,
                choice["start"] or "",
                choice["end"] or "",
                summary.cost if summary else "",
                summary.value if summary else "",
                summary.net if summary else "",
                summary.roi if summary and summary.roi is not None else "n/a",
                summary.payback_date if summary and summary.payback_date else "",
                summary.payback_days if summary and summary.payback_days is not None else "",
                summary.forecast_value if summary and summary.forecast_value is not None else "",
                row.days_to_production if row.days_to_production is not None else "",
            ]
        )
    return response


def _csv_safe(text: str) -> str:
    # A cell starting with = + - @ is a formula to spreadsheets: keep names from running.
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


# --- One use case ---------------------------------------------------------------------------------


def _alerts_url(endpoint_name: str) -> str | None:
    try:
        return reverse("alerting:endpoint_alerts_fragment", kwargs={"name": endpoint_name})
    except NoReverseMatch:
        return None


def _detail_context(request: HttpRequest, use_case: UseCase, **extra) -> dict:
    choice = PortfolioFilterForm(request.GET).values()
    costs, values = selectors.costs_of(use_case), selectors.values_of(use_case)
    error = ""
    try:
        summary = selectors.summary_of(use_case, costs=costs, values=values, start=choice["start"], end=choice["end"])
        figure = charts.cumulative_figure(use_case, costs, values, summary, start=choice["start"], end=choice["end"])
    except roi.MixedCurrencyError as exc:
        summary, figure, error = None, None, str(exc)
    linked = selectors.linked_objects(request.user, use_case)
    for endpoint in linked["endpoints"]:
        endpoint.alerts_url = _alerts_url(endpoint.name)
    may_change = permissions.can_change(request.user, use_case)
    context = {
        "use_case": use_case,
        "summary": summary,
        "currency_error": error,
        "figure": figure,
        "costs": costs,
        "values": values,
        "history": selectors.stage_history(use_case),
        "linked": linked,
        "choice": choice,
        "may_change": may_change,
        "may_manage": permissions.can_manage(request.user, use_case),
        "stages": [(value, Stage(value).label) for value in STAGE_ORDER],
        "cost_form": CostForm(),
        "value_form": ValueForm(),
        "stage_form": StageForm(initial={"stage": use_case.stage}),
        "import_form": ImportForm(),
        "today": timezone.localdate(),
    }
    if may_change and "links_form" not in extra:
        direct_endpoints = _direct_endpoint_ids(use_case)
        context["links_form"] = LinksForm(
            choices=selectors.linkable_choices(request.user),
            initial={
                "datasets": linked["datasets"],
                "experiments": linked["experiments"],
                "registered_models": linked["models"],
                "endpoints": [e for e in linked["endpoints"] if e.pk in direct_endpoints],
            },
        )
    context.update(extra)
    return context


def _direct_endpoint_ids(use_case: UseCase) -> set[int]:
    return set(use_case.endpoints.values_list("pk", flat=True))


def _detail_page(request: HttpRequest, use_case: UseCase, status: int = 200, **extra) -> HttpResponse:
    return render(request, "value/use_case_detail.html", _detail_context(request, use_case, **extra), status=status)


@login_required
@require_GET
def use_case_detail(request: HttpRequest, slug: str) -> HttpResponse:
    return _detail_page(request, _use_case_or_404(request, slug))


@login_required
@require_http_methods(["GET", "POST"])
def use_case_new(request: HttpRequest) -> HttpResponse:
    if not permissions.may_create(request.user):
        raise PermissionDenied("Only business owners and admins may start a use case.")
    form = UseCaseForm(request.POST or None, teams=_teams_for(request.user))
    if request.method == "POST" and form.is_valid():
        data = dict(form.cleaned_data)
        try:
            use_case = services.create_use_case(
                by=request.user,
                name=data.pop("name"),
                team=data.pop("team"),
                visibility=data.pop("visibility"),
                **data,
            )
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(request, "Use case created.")
            return redirect("value:use_case", use_case.slug)
    status = 400 if request.method == "POST" else 200
    return render(request, "value/use_case_form.html", {"form": form, "use_case": None}, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def use_case_edit(request: HttpRequest, slug: str) -> HttpResponse:
    use_case = _use_case_or_404(request, slug)
    if not permissions.can_change(request.user, use_case):
        raise PermissionDenied("You may not change this use case.")
    form = UseCaseForm(request.POST or None, instance=use_case, teams=_teams_for(request.user, use_case))
    if not permissions.can_manage(request.user, use_case):
        for name in ("team", "visibility"):
            form.fields[name].disabled = True
    if request.method == "POST" and form.is_valid():
        changes = {name: form.cleaned_data[name] for name in form.changed_data}
        try:
            services.update_use_case(use_case=_use_case_or_404(request, slug), by=request.user, **changes)
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(request, "Use case saved.")
            return redirect("value:use_case", use_case.slug)
    status = 400 if request.method == "POST" else 200
    return render(request, "value/use_case_form.html", {"form": form, "use_case": use_case}, status=status)


def _act(request: HttpRequest, use_case: UseCase, success: str, action, /, **kwargs) -> HttpResponse:
    try:
        action(**kwargs)
    except ValidationError as exc:
        return _detail_page(request, use_case, status=400, action_error=_text(exc))
    messages.success(request, success)
    return redirect("value:use_case", use_case.slug)


def _text(exc: ValidationError) -> str:
    if hasattr(exc, "error_dict"):
        return " ".join(f"{field.replace('_', ' ')}: {' '.join(m)}" for field, m in exc.message_dict.items())
    return " ".join(exc.messages)


def _changeable(request: HttpRequest, slug: str) -> UseCase:
    use_case = _use_case_or_404(request, slug)
    if not permissions.can_change(request.user, use_case):
        raise PermissionDenied("You may not change this use case.")
    return use_case


@login_required
@require_POST
def use_case_stage(request: HttpRequest, slug: str) -> HttpResponse:
    use_case = _changeable(request, slug)
    form = StageForm(request.POST)
    if not form.is_valid():
        return _detail_page(request, use_case, status=400, action_error="Choose a stage.")
    return _act(
        request,
        use_case,
        f"Moved to {Stage(form.cleaned_data['stage']).label.lower()}.",
        services.change_stage,
        use_case=use_case,
        by=request.user,
        stage=form.cleaned_data["stage"],
        note=form.cleaned_data["note"],
    )


@login_required
@require_POST
def use_case_links(request: HttpRequest, slug: str) -> HttpResponse:
    use_case = _changeable(request, slug)
    form = LinksForm(request.POST, choices=selectors.linkable_choices(request.user))
    if not form.is_valid():
        return _detail_page(
            request, use_case, status=400, links_form=form, action_error="Link only objects you can see."
        )
    return _act(
        request, use_case, "Links saved.", services.set_links, use_case=use_case, by=request.user, **form.cleaned_data
    )


@login_required
@require_POST
def cost_add(request: HttpRequest, slug: str) -> HttpResponse:
    use_case = _changeable(request, slug)
    form = CostForm(request.POST)
    if not form.is_valid():
        return _detail_page(request, use_case, status=400, cost_form=form, action_error="The cost has errors.")
    return _act(
        request, use_case, "Cost recorded.", services.add_cost, use_case=use_case, by=request.user, **form.cleaned_data
    )


@login_required
@require_POST
def value_add(request: HttpRequest, slug: str) -> HttpResponse:
    use_case = _changeable(request, slug)
    form = ValueForm(request.POST)
    if not form.is_valid():
        return _detail_page(request, use_case, status=400, value_form=form, action_error="The value entry has errors.")
    return _act(
        request,
        use_case,
        "Value recorded.",
        services.add_value,
        use_case=use_case,
        by=request.user,
        **form.cleaned_data,
    )


@login_required
@require_POST
def entry_delete(request: HttpRequest, slug: str, kind: str, pk: int) -> HttpResponse:
    use_case = _changeable(request, slug)
    model = {"costs": CostEntry, "values": ValueEntry}.get(kind)
    entry = model.objects.filter(use_case=use_case, pk=pk).first() if model else None
    if entry is None:
        raise Http404("No such entry.")
    entry.use_case = use_case
    return _act(request, use_case, "Entry removed.", services.delete_entry, entry=entry, by=request.user)


@login_required
@require_POST
def entries_import(request: HttpRequest, slug: str, kind: str) -> HttpResponse:
    if kind not in ("costs", "values"):
        raise Http404
    if request_too_large(request, services.max_import_bytes() + 64 * 1024):
        return HttpResponse(
            f"The file is larger than {services.max_import_bytes() // 1024} KiB.", status=413, content_type="text/plain"
        )
    use_case = _changeable(request, slug)
    form = ImportForm(request.POST, request.FILES)
    if not form.is_valid():
        return _detail_page(request, use_case, status=400, action_error="Choose a CSV file to import.")
    upload = form.cleaned_data["file"]
    try:
        # The service refuses a file over the limit (request_too_large above bounds the read).
        count = services.import_entries(use_case=use_case, by=request.user, kind=kind, content=upload.read())
    except services.ImportRejected as exc:
        return _detail_page(request, use_case, status=400, import_errors=exc.errors_by_line, import_kind=kind)
    except ValidationError as exc:
        return _detail_page(request, use_case, status=400, import_errors=[_text(exc)], import_kind=kind)
    messages.success(
        request, f"Imported {count} {'cost' if kind == 'costs' else 'value'} entr{'y' if count == 1 else 'ies'}."
    )
    return redirect("value:use_case", use_case.slug)


@login_required
@require_GET
def import_template(request: HttpRequest, kind: str) -> HttpResponse:
    """An example CSV to fill in."""
    first = timezone.localdate().replace(day=1)
    last = first.replace(day=28)
    if kind == "costs":
        body = "period_start,period_end,category,amount,currency,note\n"
        body += f"{first},{last},people,12000.00,,Two analysts\n"
    elif kind == "values":
        body = "period_start,period_end,amount,currency,evidence,evidence_url\n"
        body += f"{first},{last},8000.00,,Churn saved (finance report),https://example.org/report\n"
    else:
        raise Http404
    response = HttpResponse(body, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{kind}-template.csv"'
    return response


# --- Home page card ---------------------------------------------------------------------------


@login_required
@require_GET
def home_widget(request: HttpRequest) -> HttpResponse:
    """The business owner's portfolio KPIs card (an htmx fragment for the role home page)."""
    return render(request, "value/_home_widget.html", selectors.home_widget(request.user))


# --- Compute rates ------------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def compute_rates(request: HttpRequest) -> HttpResponse:
    """What an hour of compute costs per environment (and by default): everyone may read them,
    platform admins set them."""
    from apps.deployments.models import Environment
    from apps.value.models import ComputeRate

    environments = list(Environment.objects.order_by("display_order", "name"))
    error = ""
    if request.method == "POST":
        if not permissions.is_admin(request.user):
            raise PermissionDenied("Only platform admins set compute rates.")
        name = request.POST.get("environment", "")
        environment = next((env for env in environments if env.name == name), None)
        if name and environment is None:
            raise Http404("No such environment.")
        try:
            services.set_compute_rate(
                by=request.user,
                environment=environment,
                endpoint_hour_rate=request.POST.get("endpoint_hour_rate", ""),
                job_hour_rate=request.POST.get("job_hour_rate", ""),
            )
        except ValidationError as exc:
            error = _text(exc)
        else:
            messages.success(request, f"Rates for {environment or 'the default'} saved.")
            return redirect("value:compute_rates")
    rates = {rate.environment_id: rate for rate in ComputeRate.objects.all()}
    rows = [{"environment": None, "rate": rates.get(None)}] + [
        {"environment": environment, "rate": rates.get(environment.pk)} for environment in environments
    ]
    return render(
        request,
        "value/compute_rates.html",
        {"rows": rows, "error": error, "may_edit": permissions.is_admin(request.user)},
        status=400 if error else 200,
    )
