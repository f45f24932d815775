"""Model registry pages and card exports. Thin: permission-filtered reads from selectors and
page_selectors, every write through services (their messages shown inline). A model the user
may not see answers 404 everywhere, its versions, cards and exports included."""

from __future__ import annotations

from datetime import UTC, datetime

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from apps.registry import cards, exports, page_selectors, permissions, selectors, services
from apps.registry.forms import (
    EDITABLE_SECTIONS,
    AliasForm,
    ModelListForm,
    ModelSettingsForm,
    ModelShareForm,
    RegisterVersionForm,
    SliceImportForm,
    StageTransitionForm,
    section_changes,
    section_fields,
    section_initial,
)
from apps.registry.models import ModelVersion, RegisteredModel
from apps.tracking import charts
from apps.tracking import selectors as tracking_selectors
from apps.tracking.errors import AlreadyExists, TrackingError

MODELS_PER_PAGE = 25


@login_required
@require_GET
def model_list(request: HttpRequest) -> HttpResponse:
    choice = ModelListForm(request.GET).values()
    page = Paginator(page_selectors.models_for_list(request.user, **choice), MODELS_PER_PAGE).get_page(
        request.GET.get("page")
    )
    newest = page_selectors.newest_versions_by_model(page.object_list)
    rows = []
    for model in page.object_list:
        version = newest.get(model.pk)
        score = page_selectors.completeness_of(version)[0] if version is not None else None
        rows.append(
            {"model": model, "newest": version, "score": score, "updated_at": _when(model.last_updated_timestamp)}
        )
    context = {"page": page, "rows": rows, "choice": choice, "sorts": page_selectors.MODEL_SORTS}
    if request.headers.get("HX-Request"):
        return render(request, "registry/_model_results.html", context)
    return render(request, "registry/model_list.html", context | page_selectors.model_list_choices(request.user))


@login_required
@require_GET
def model_detail(request: HttpRequest, model: str) -> HttpResponse:
    registered = _model_or_404(request, model)
    versions = page_selectors.versions_for_model_page(registered)
    runs = [version.run for version in versions if version.run_id]
    visible_runs = page_selectors.visible_run_ids(request.user, runs)
    inputs = page_selectors.training_datasets_of_runs(request.user, [run for run in runs if run.pk in visible_runs])
    rows, lineage = [], []
    for version in versions:
        score, missing = page_selectors.completeness_of(version)
        run_visible = version.run_id in visible_runs
        rows.append(
            {
                "version": version,
                "score": score,
                "missing": len(missing),
                "run_visible": run_visible,
                "created_at": _when(version.creation_timestamp),
            }
        )
        lineage.append(
            {
                "version": version,
                "run_visible": run_visible,
                "inputs": inputs.get(version.run_id, []) if run_visible else [],
            }
        )
    context = {
        "model": registered,
        "rows": rows,
        "lineage": lineage,
        "aliases": list(registered.aliases.select_related("model_version").order_by("alias")),
        "tags": list(registered.tags.order_by("key")),
        "created_at": _when(registered.creation_timestamp),
        "updated_at": _when(registered.last_updated_timestamp),
        "can_change": permissions.can_change(request.user, registered),
        "can_manage": permissions.can_manage(request.user, registered),
        "alias_form": AliasForm(),
    }
    return render(request, "registry/model_detail.html", context)


@login_required
@require_GET
def version_detail(request: HttpRequest, model: str, version: int) -> HttpResponse:
    registered, found = _version_or_404(request, model, version)
    if request.GET.get("print") == "1":
        return _print_response(request, exports.card_document(request.user, registered, found))
    return _version_page(request, registered, found)


def _version_page(
    request: HttpRequest,
    registered: RegisteredModel,
    found: ModelVersion,
    *,
    stage_form: StageTransitionForm | None = None,
    stage_error: str | None = None,
    status: int = 200,
) -> HttpResponse:
    document = exports.card_document(request.user, registered, found)
    run_visible = bool(found.run_id) and bool(page_selectors.visible_run_ids(request.user, [found.run]))
    figures, truncated = [], False
    if run_visible:
        history, truncated = tracking_selectors.metric_history_by_run([found.run])
        figures = charts.run_metric_figures(history.get(found.run_id, {}))
    context = {
        "model": registered,
        "version": found,
        "doc": document,
        "metric_rows": exports.metric_rows(document) if document else [],
        "run_visible": run_visible,
        "figures": figures,
        "history_truncated": truncated,
        "created_at": _when(found.creation_timestamp),
        "can_change": permissions.can_change(request.user, registered),
        "can_manage": permissions.can_manage(request.user, registered),
        "stage_form": stage_form or StageTransitionForm(initial={"stage": found.current_stage}),
        "stage_error": stage_error,
        "sections": [(key, cards.SECTIONS[key]) for key in EDITABLE_SECTIONS],
        "other_versions": list(
            ModelVersion.objects.filter(registered_model=registered, is_deleted=False)
            .exclude(pk=found.pk)
            .order_by("-version")
            .values_list("version", flat=True)[:200]
        ),
        "slice_form": SliceImportForm(),
        "signature_parts": [
            ("Inputs", page_selectors.signature_columns(found.signature_inputs)),
            ("Outputs", page_selectors.signature_columns(found.signature_outputs)),
        ],
    }
    return render(request, "registry/version_detail.html", context, status=status)


@login_required
@require_POST
def version_stage(request: HttpRequest, model: str, version: int) -> HttpResponse:
    """Move a version to a stage (services.transition_stage); errors back on the version page."""
    registered, found = _version_or_404(request, model, version)
    if not permissions.can_change(request.user, registered):
        raise PermissionDenied("You may not change this model's versions.")
    form = StageTransitionForm(request.POST)
    error = None
    if not form.is_valid():
        error = "Choose one of the stages None, Staging, Production or Archived."
    else:
        try:
            services.transition_stage(
                by=request.user,
                version=found,
                stage=form.cleaned_data["stage"],
                archive_existing_versions=form.cleaned_data["archive_existing_versions"],
            )
        except TrackingError as exc:
            error = exc.message
    if error is None:
        messages.success(request, f"Version {found.version} moved to {found.current_stage}.")
        return redirect("registry:version", registered.name, found.version)
    found = page_selectors.version_page_data(registered, found.version)
    return _version_page(request, registered, found, stage_form=form, stage_error=error, status=400)


@login_required
@require_POST
def version_delete(request: HttpRequest, model: str, version: int) -> HttpResponse:
    """Delete a version (services.delete_model_version: hidden for good, its number never
    reused, its aliases dropped). The owner, the team lead and admins."""
    registered, found = _version_or_404(request, model, version)
    if not permissions.can_manage(request.user, registered):
        raise PermissionDenied("Only the owner, the team lead or an admin may delete versions.")
    try:
        services.delete_model_version(by=request.user, version=found)
    except TrackingError as exc:
        messages.error(request, exc.message)
        return redirect("registry:version", registered.name, found.version)
    messages.success(request, f"Version {found.version} of {registered.name} deleted.")
    return redirect("registry:model", registered.name)


@login_required
@require_http_methods(["GET", "POST"])
def model_settings(request: HttpRequest, model: str) -> HttpResponse:
    """Rename, describe, change visibility or team, share and delete a model: the owner, the
    team lead and admins. Others who can see the model get 403; the rest 404. Every write goes
    through services; errors come back inline and nothing is saved then."""
    registered = _model_or_404(request, model)
    if not permissions.can_manage(request.user, registered):
        raise PermissionDenied("Only the owner, the team lead or an admin may change this model's settings.")
    teams = selectors.teams_for_model_settings(request.user, registered)
    settings_form = ModelSettingsForm(
        initial={
            "name": registered.name,
            "description": registered.description,
            "visibility": registered.visibility,
            "team": registered.team_id,
        },
        teams=teams,
    )
    share_form = ModelShareForm(initial={"level": "view"})
    delete_error = None
    if request.method == "POST":
        action = request.POST.get("action", "")
        if action == "update":
            settings_form = ModelSettingsForm(request.POST, teams=teams)
            if settings_form.is_valid():
                data = settings_form.cleaned_data
                try:
                    services.update_model_settings(
                        by=request.user,
                        model=registered,
                        name=data["name"],
                        description=data["description"],
                        visibility=data["visibility"],
                        team=data["team"],
                    )
                except AlreadyExists as exc:
                    settings_form.add_error("name", exc.message)
                except TrackingError as exc:
                    settings_form.add_error(None, exc.message)
                else:
                    messages.success(request, "Model updated.")
                    return redirect("registry:model_settings", registered.name)
        elif action in ("share", "unshare"):
            share_form = ModelShareForm(request.POST, active_only=action == "share")
            if share_form.is_valid():
                data = share_form.cleaned_data
                try:
                    if action == "share":
                        services.share_model_at_level(
                            by=request.user,
                            model=registered,
                            level=data.get("level") or "view",
                            user=data.get("user"),
                            team=data.get("team"),
                        )
                    else:
                        services.unshare_model(
                            by=request.user, model=registered, user=data.get("user"), team=data.get("team")
                        )
                except TrackingError as exc:
                    share_form.add_error(None, exc.message)
                else:
                    messages.success(request, "Sharing updated.")
                    return redirect("registry:model_settings", registered.name)
        elif action == "delete":
            try:
                services.delete_registered_model(by=request.user, model=registered)
            except TrackingError as exc:
                delete_error = exc.message
            else:
                messages.success(request, f"Model {registered.name} deleted with its versions.")
                return redirect("registry:model_list")
        else:
            return HttpResponseBadRequest("Unknown action.")
    context = {
        "model": registered,
        "settings_form": settings_form,
        "share_form": share_form,
        "access": selectors.model_access(registered),
        "delete_error": delete_error,
        "version_count": ModelVersion.objects.filter(registered_model=registered, is_deleted=False).count(),
    }
    return render(request, "registry/model_settings.html", context, status=400 if request.method == "POST" else 200)


@login_required
@require_GET
def version_print(request: HttpRequest, model: str, version: int) -> HttpResponse:
    registered, found = _version_or_404(request, model, version)
    return _print_response(request, exports.card_document(request.user, registered, found))


@login_required
@require_http_methods(["GET", "POST"])
def card_section(request: HttpRequest, model: str, version: int, section: str) -> HttpResponse:
    """One card section: GET its form (htmx swaps it into the card), POST it through
    services.update_card. Errors come back inline in the form; nothing is saved then."""
    registered, found = _version_or_404(request, model, version)
    if section not in EDITABLE_SECTIONS:
        raise Http404("No such card section.")
    if not permissions.can_change(request.user, registered):
        return HttpResponse("You may not change this model's card.", status=403)
    document = exports.card_document(request.user, registered, found)
    if document is None:
        raise Http404("This version has no card.")
    error = None
    values = section_initial(section, document.card)
    if request.method == "POST":
        values = {item["name"]: request.POST.get(item["name"], "") for item in section_fields(section, {})}
        try:
            changes = section_changes(section, request.POST)
            services.update_card(by=request.user, card=document.card, changes=changes)
        except (cards.CardInputError, TrackingError) as exc:
            error = getattr(exc, "message", None) or str(exc)
        else:
            messages.success(request, f"Saved the card's {cards.SECTIONS[section].lower()}.")
            # A query string as well as the anchor, so htmx's redirect reloads the page.
            url = (
                reverse("registry:version", args=[registered.name, found.version]) + f"?saved={section}#card-{section}"
            )
            if request.headers.get("HX-Request"):
                response = HttpResponse(status=204)
                response["HX-Redirect"] = url
                return response
            return redirect(url)
    context = {
        "model": registered,
        "version": found,
        "section": section,
        "section_label": cards.SECTIONS[section],
        "fields": section_fields(section, values),
        "error": error,
    }
    if request.headers.get("HX-Request"):
        # htmx swaps only 2xx answers: the form with its inline error comes back as 200.
        return render(request, "registry/_card_section_form.html", context)
    return render(request, "registry/card_section.html", context, status=400 if error else 200)


@login_required
@require_POST
def slice_import(request: HttpRequest, model: str, version: int) -> HttpResponse:
    registered, found = _version_or_404(request, model, version)
    document = exports.card_document(request.user, registered, found)
    if document is None:
        raise Http404("This version has no card.")
    form = SliceImportForm(request.POST, request.FILES)
    error = None
    if not form.is_valid():
        error = "Choose a CSV or JSON file to import."
    else:
        try:
            services.import_slice_table(
                by=request.user,
                card=document.card,
                content=form.cleaned_data["file"].read(cards.MAX_SLICE_TABLE_BYTES + 1),
                fmt=form.fmt(),
                replace=form.cleaned_data.get("mode") != "append",
            )
        except TrackingError as exc:
            error = exc.message
    if error is None:
        return redirect(
            reverse("registry:version", args=[registered.name, found.version]) + "#card-quantitative_analysis"
        )
    context = {"model": registered, "version": found, "error": error, "slice_form": form}
    return render(request, "registry/slice_import_error.html", context, status=400)


@login_required
@require_POST
def alias_set(request: HttpRequest, model: str) -> HttpResponse:
    """Set or move an alias to one of the model's versions (services.set_alias)."""
    registered = _model_or_404(request, model)
    form = AliasForm(request.POST)
    error = None
    if not form.is_valid():
        error = "Give an alias name and a version number."
    else:
        target = selectors.version_of(registered, form.cleaned_data["version"])
        if target is None:
            error = f"Version {form.cleaned_data['version']} of {registered.name} does not exist."
        else:
            try:
                services.set_alias(by=request.user, model=registered, alias=form.cleaned_data["alias"], version=target)
            except TrackingError as exc:
                error = exc.message
    if error is None:
        return redirect(reverse("registry:model", args=[registered.name]) + "#aliases")
    context = {"model": registered, "alias_form": form, "error": error}
    return render(request, "registry/alias_error.html", context, status=400)


@login_required
@require_http_methods(["GET", "POST"])
def register_version(request: HttpRequest, model: str) -> HttpResponse:
    """A new version from a run the user can see (`runs:/<run>/<artifact path>`)."""
    registered = _model_or_404(request, model)
    if not permissions.can_change(request.user, registered):
        return HttpResponse("You may not register versions of this model.", status=403)
    form = RegisterVersionForm(request.POST or None, initial={"run": request.GET.get("run", "")})
    error = None
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            created = services.create_model_version(
                by=request.user,
                model=registered,
                source=f"runs:/{data['run'].strip()}/{data['path'].strip().strip('/')}",
                description=data.get("description") or "",
            )
        except TrackingError as exc:
            error = exc.message
        else:
            return redirect("registry:version", registered.name, created.version)
    context = {
        "model": registered,
        "form": form,
        "error": error,
        "runs": page_selectors.registrable_runs(request.user),
    }
    return render(request, "registry/register_version.html", context, status=400 if error else 200)


@login_required
@require_GET
def compare_versions(request: HttpRequest, model: str) -> HttpResponse:
    """Two versions of one model side by side: card fields, training data, params, metrics."""
    registered = _model_or_404(request, model)
    numbers = [request.GET.get("a", ""), request.GET.get("b", "")]
    if not all(number.isdigit() for number in numbers):
        context = {"model": registered, "versions": _version_numbers(registered)}
        return render(request, "registry/compare_pick.html", context, status=200 if not any(numbers) else 400)
    sides = []
    for number in numbers:
        found = page_selectors.version_page_data(registered, int(number))
        if found is None:
            raise Http404("No such version.")
        sides.append(found)
    documents = [exports.card_document(request.user, registered, side) for side in sides]
    runs = [side.run for side in sides if side.run_id]
    visible = page_selectors.visible_run_ids(request.user, runs)
    shown_runs = [run for run in runs if run.pk in visible]
    params = tracking_selectors.params_by_run(shown_runs)
    metrics = tracking_selectors.latest_metrics_by_run(shown_runs)
    param_values = [params.get(side.run_id, {}) if side.run_id in visible else {} for side in sides]
    metric_values = [
        {key: _metric_text(item) for key, item in metrics.get(side.run_id, {}).items()}
        if side.run_id in visible
        else {}
        for side in sides
    ]
    card_rows = []
    for key, label, getter in _CARD_COMPARE_FIELDS:
        values = [getter(document) if document else "" for document in documents]
        card_rows.append({"label": label, "key": key, "values": values, "differs": values[0] != values[1]})
    context = {
        "model": registered,
        "sides": [
            {
                "version": side,
                "doc": doc,
                "run_visible": side.run_id in visible,
                "created_at": _when(side.creation_timestamp),
            }
            for side, doc in zip(sides, documents, strict=True)
        ],
        "card_rows": card_rows,
        "param_rows": _diff_rows(param_values),
        "metric_rows": _diff_rows(metric_values),
        "versions": _version_numbers(registered),
        "a": int(numbers[0]),
        "b": int(numbers[1]),
    }
    return render(request, "registry/compare.html", context)


# --- Exports ------------------------------------------------------------------------------------


@login_required
@require_GET
def export_markdown(request: HttpRequest, model: str, version: int) -> HttpResponse:
    document = _document_or_404(request, model, version)
    return _download(exports.model_card_markdown(document), "text/markdown; charset=utf-8", document, "md")


@login_required
@require_GET
def export_json(request: HttpRequest, model: str, version: int) -> HttpResponse:
    import json

    document = _document_or_404(request, model, version)
    body = json.dumps(exports.model_card_json(document, base_url=request.build_absolute_uri("/")[:-1]), indent=2)
    return _download(body, "application/json", document, "json")


@login_required
@require_GET
def export_html(request: HttpRequest, model: str, version: int) -> HttpResponse:
    document = _document_or_404(request, model, version)
    return _download(exports.model_card_html(document, request=request), "text/html; charset=utf-8", document, "html")


# --- helpers -----------------------------------------------------------------------------------


@login_required
@require_GET
def run_versions(request: HttpRequest, run_uuid: str) -> HttpResponse:
    """The model versions registered from a run (an htmx fragment of the tracking run page)."""
    run = tracking_selectors.run_for(request.user, run_uuid)
    if run is None:
        raise Http404("No such run.")
    versions = list(selectors.versions_of_run(request.user, run))
    return render(request, "registry/_run_versions.html", {"run": run, "versions": versions})


def _model_or_404(request: HttpRequest, key: str) -> RegisteredModel:
    found = page_selectors.model_by_name_or_id(request.user, key)
    if found is None:
        raise Http404("No such model.")
    return found


def _version_or_404(request: HttpRequest, key: str, number: int) -> tuple[RegisteredModel, ModelVersion]:
    registered = _model_or_404(request, key)
    found = page_selectors.version_page_data(registered, number)
    if found is None:
        raise Http404("No such version.")
    return registered, found


def _document_or_404(request: HttpRequest, key: str, number: int) -> exports.CardDocument:
    registered, found = _version_or_404(request, key, number)
    document = exports.card_document(request.user, registered, found)
    if document is None:
        raise Http404("This version has no card.")
    return document


def _print_response(request: HttpRequest, document) -> HttpResponse:
    if document is None:
        raise Http404("This version has no card.")
    return HttpResponse(exports.model_card_html(document, request=request, standalone=False))


def _download(body: str, content_type: str, document, extension: str) -> HttpResponse:
    response = HttpResponse(body, content_type=content_type)
    safe_name = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in document.model.name)
    response["Content-Disposition"] = (
        f'attachment; filename="{safe_name}-v{document.version.version}-model-card.{extension}"'
    )
    response["X-Content-Type-Options"] = "nosniff"
    return response


def _version_numbers(model: RegisteredModel) -> list[int]:
    return list(
        ModelVersion.objects.filter(registered_model=model, is_deleted=False)
        .order_by("-version")
        .values_list("version", flat=True)[:500]
    )


def _when(milliseconds: int | None) -> datetime | None:
    return None if milliseconds is None else datetime.fromtimestamp(milliseconds / 1000, tz=UTC)


def _metric_text(metric) -> str:
    if metric is None:
        return ""
    if metric.is_nan or metric.value is None:
        return "NaN"
    return f"{metric.value:.6g}"


def _diff_rows(values_by_side: list[dict]) -> list[dict]:
    keys = sorted({key for values in values_by_side for key in values})
    rows = []
    for key in keys:
        values = [values.get(key, "") for values in values_by_side]
        rows.append({"key": key, "values": values, "differs": values[0] != values[1]})
    return rows


def _datasets_text(document) -> str:
    labels = [item["label"] for item in document.datasets]
    notes = document.card.training_data_notes.strip()
    return "; ".join(labels) + (f" — {notes}" if notes else "") if labels else notes


_CARD_COMPARE_FIELDS = [
    ("completeness", "Completeness", lambda d: f"{d.score}%"),
    ("overview", "Overview", lambda d: d.details["overview"]),
    ("owners", "Owners", lambda d: d.details["owners"]),
    ("license", "License", lambda d: d.details["license"]),
    ("primary_uses", "Primary uses", lambda d: d.intended_use["primary_uses"]),
    ("out_of_scope_uses", "Out-of-scope uses", lambda d: d.intended_use["out_of_scope_uses"]),
    ("training_data", "Training data", _datasets_text),
    ("pipeline_source", "Pipeline source", lambda d: d.procedure["pipeline_source"]),
    ("code_version", "Code version", lambda d: d.procedure["code_version"]),
    ("evaluation_data", "Evaluation data", lambda d: d.card.evaluation_data),
    ("factors", "Factors", lambda d: d.card.factors),
    *[
        (key, cards.SECTIONS[key], (lambda k: lambda d: getattr(d.card, k))(key))
        for key in cards.CONSIDERATION_SECTIONS
    ],
]
