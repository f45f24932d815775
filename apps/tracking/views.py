"""Experiment tracking pages. Thin: permission-filtered reads from selectors, charts from
charts.py. An experiment or run the user may not see answers 404 everywhere."""

from __future__ import annotations

from datetime import UTC, datetime

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, reverse
from django.views.decorators.http import require_GET

from apps.tracking import artifacts, charts, permissions, selectors, services
from apps.tracking.errors import TrackingError
from apps.tracking.forms import (
    ATTRIBUTE_SORTS,
    ExperimentListForm,
    ExperimentSettingsForm,
    ExperimentShareForm,
    RunTableForm,
    chosen_columns,
    order_by_clause,
)
from apps.tracking.models import Experiment, Run
from apps.tracking.search import SearchError, filter_runs, order_runs

EXPERIMENTS_PER_PAGE = 25
RUNS_PER_PAGE = 50
COMPARE_MIN_RUNS, COMPARE_MAX_RUNS = 2, 10
# The mlflow.* tags the run page shows in its header rather than among the system tags.
SOURCE_TAGS = {
    "mlflow.source.name": "source",
    "mlflow.source.type": "source_type",
    "mlflow.source.git.commit": "git_commit",
    "mlflow.source.git.branch": "git_branch",
    "mlflow.source.git.repoURL": "git_repo",
    "mlflow.project.entryPoint": "entry_point",
    "mlflow.parentRunId": "parent_run_id",
    "mlflow.note.content": "note",
}


@login_required
@require_GET
def experiment_list(request: HttpRequest) -> HttpResponse:
    form = ExperimentListForm(request.GET)
    choice = form.values()
    page = Paginator(selectors.experiments_for_list(request.user, **choice), EXPERIMENTS_PER_PAGE).get_page(
        request.GET.get("page")
    )
    for experiment in page:
        experiment.last_activity_at = _when(experiment.last_activity)
    context = {"page": page, "choice": choice, "sorts": selectors.EXPERIMENT_SORTS}
    if request.headers.get("HX-Request"):
        return render(request, "tracking/_experiment_results.html", context)
    return render(request, "tracking/experiment_list.html", context | selectors.experiment_list_choices(request.user))


@login_required
@require_GET
def experiment_detail(request: HttpRequest, experiment_id: int) -> HttpResponse:
    experiment = _experiment_or_404(request, experiment_id)
    choice = RunTableForm(request.GET).values()
    keys = selectors.run_column_keys(experiment)
    columns = chosen_columns(request.GET, keys)
    runs = selectors.runs_of_experiment(experiment, lifecycle=choice["lifecycle"])
    error = None
    if choice["filter"]:
        try:
            runs = filter_runs(runs, choice["filter"], experiment_ids=[experiment.pk])
        except SearchError as exc:
            error = str(exc)
    sort = choice["sort"]
    if sort:
        try:
            runs = order_runs(
                runs, [order_by_clause(sort, descending=choice["descending"])], experiment_ids=[experiment.pk]
            )
        except SearchError as exc:
            error, sort = error or str(exc), None
    page = Paginator(runs, RUNS_PER_PAGE).get_page(request.GET.get("page"))
    values = selectors.run_column_values(page.object_list, columns)
    context = {
        "experiment": experiment,
        "page": page,
        "rows": [_run_row(run, columns, values.get(run.pk, {})) for run in page.object_list],
        "keys": keys,
        "columns": [_column_header(column, sort, choice["descending"]) for column in columns],
        "attribute_columns": [
            _column_header(("attributes", key), sort, choice["descending"]) for key in ATTRIBUTE_SORTS
        ],
        "chosen": {f"{kind}.{key}" for kind, key in columns},
        "choice": choice,
        "error": error,
        "compare_max": COMPARE_MAX_RUNS,
    }
    if request.headers.get("HX-Request"):
        return render(request, "tracking/_runs_table.html", context)
    context["tags"] = list(experiment.tags.order_by("key"))
    context["can_manage"] = permissions.can_manage(request.user, experiment)
    context["created_at"] = _when(experiment.creation_time)
    context["updated_at"] = _when(experiment.last_update_time)
    return render(request, "tracking/experiment_detail.html", context)


@login_required
@require_GET
def run_detail(request: HttpRequest, experiment_id: int, run_uuid: str) -> HttpResponse:
    run = _run_or_404(request, experiment_id, run_uuid)
    tags = selectors.tags_of_run(run)
    source = {SOURCE_TAGS[tag.key]: tag.value for tag in tags if tag.key in SOURCE_TAGS}
    history, truncated = selectors.metric_history_by_run([run])
    run_history = history.get(run.pk, {})
    metrics = []
    for key, latest in selectors.latest_metrics_by_run([run]).get(run.pk, {}).items():
        values = [value for _, _, value in run_history.get(key, []) if value is not None]
        metrics.append(
            {
                "metric": latest,
                "latest": _metric_display(latest),
                "points": len(run_history.get(key, [])),
                "min": _number(min(values)) if values else "—",
                "max": _number(max(values)) if values else "—",
            }
        )
    inputs = selectors.inputs_of_run(request.user, run)
    logged_models = [(model, _when(model.creation_timestamp)) for model in selectors.logged_models_of_run(run)]
    context = {
        "run": run,
        "experiment": run.experiment,
        "started_at": _when(run.start_time),
        "ended_at": _when(run.end_time),
        "duration": _duration(run),
        "source": source,
        "user_tags": [tag for tag in tags if not tag.key.startswith(selectors.SYSTEM_TAG_PREFIX)],
        "system_tags": [tag for tag in tags if tag.key.startswith(selectors.SYSTEM_TAG_PREFIX)],
        "params": selectors.params_by_run([run]).get(run.pk, {}),
        "metrics": metrics,
        "inputs": inputs,
        "logged_models": logged_models,
        "linked_count": len(inputs) + len(logged_models),
        "has_artifacts": bool(selectors.run_artifact_root(run)),
        # The registry (downstream) lists the versions registered from this run in a fragment.
        "registered_versions_url": _optional_url("registry:run_versions", run.run_uuid),
    } | _chart_context(run_history, truncated, request.GET.get("x"))
    return render(request, "tracking/run_detail.html", context)


@login_required
@require_GET
def run_charts(request: HttpRequest, experiment_id: int, run_uuid: str) -> HttpResponse:
    """The run's metric charts with the chosen x axis (an htmx fragment of the run page)."""
    run = _run_or_404(request, experiment_id, run_uuid)
    history, truncated = selectors.metric_history_by_run([run])
    context = {"run": run, "experiment": run.experiment} | _chart_context(
        history.get(run.pk, {}), truncated, request.GET.get("x")
    )
    return render(request, "tracking/_run_charts.html", context)


@login_required
@require_GET
def run_artifacts(request: HttpRequest, experiment_id: int, run_uuid: str) -> HttpResponse:
    """One folder of the run's artifacts (an htmx fragment of the run page)."""
    run = _run_or_404(request, experiment_id, run_uuid)
    path = _artifact_path_or_404(request)
    root = selectors.run_artifact_root(run)
    entries = artifacts.list_entries(root, path) if root else []
    crumbs, prefix = [], ""
    for part in path.split("/") if path else []:
        prefix = f"{prefix}/{part}" if prefix else part
        crumbs.append({"name": part, "path": prefix})
    context = {
        "run": run,
        "experiment": run.experiment,
        "path": path,
        "crumbs": crumbs,
        "entries": [(entry, entry.path.rsplit("/", 1)[-1]) for entry in entries],
    }
    return render(request, "tracking/_artifacts.html", context)


@login_required
@require_GET
def run_artifact_preview(request: HttpRequest, experiment_id: int, run_uuid: str) -> HttpResponse:
    """A preview of one artifact file (an htmx fragment of the artifact browser)."""
    run = _run_or_404(request, experiment_id, run_uuid)
    path = _artifact_path_or_404(request)
    try:
        preview = selectors.artifact_preview(run, path)
    except FileNotFoundError:
        raise Http404("No such artifact.")
    context = {
        "run": run,
        "experiment": run.experiment,
        "preview": preview,
        "max_rows": selectors.PREVIEW_MAX_ROWS,
        "max_kb": selectors.PREVIEW_MAX_BYTES // 1024,
    }
    return render(request, "tracking/_artifact_preview.html", context)


@login_required
@require_GET
def run_artifact_raw(request: HttpRequest, experiment_id: int, run_uuid: str) -> HttpResponse:
    """The bytes of one artifact. Only raster images are served inline (for previews); every
    other file, SVG included, downloads as application/octet-stream, never sniffed."""
    run = _run_or_404(request, experiment_id, run_uuid)
    path = _artifact_path_or_404(request)
    root = selectors.run_artifact_root(run)
    if not root or not path:
        raise Http404("No such artifact.")
    try:
        handle = artifacts.open_file(root, path)
    except OSError:
        raise Http404("No such artifact.")
    name = path.rsplit("/", 1)[-1]
    image_type = selectors.INLINE_IMAGE_TYPES.get("." + name.rsplit(".", 1)[-1].lower()) if "." in name else None
    if image_type and request.GET.get("download") != "1":
        response = FileResponse(handle, content_type=image_type, as_attachment=False, filename=name)
    else:
        response = FileResponse(handle, content_type="application/octet-stream", as_attachment=True, filename=name)
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, no-store"
    return response


@login_required
@require_GET
def compare_runs(request: HttpRequest) -> HttpResponse:
    """Two to ten runs side by side, from any experiments the user may see."""
    run_uuids = list(dict.fromkeys(uuid.strip() for uuid in request.GET.getlist("runs") if uuid.strip()))
    if not COMPARE_MIN_RUNS <= len(run_uuids) <= COMPARE_MAX_RUNS:
        context = {"count": len(run_uuids), "min": COMPARE_MIN_RUNS, "max": COMPARE_MAX_RUNS}
        return render(request, "tracking/compare_invalid.html", context, status=400)
    if any(len(uuid) > 32 for uuid in run_uuids):
        raise Http404
    runs = selectors.runs_for_compare(request.user, run_uuids)
    if runs is None:
        raise Http404
    params = selectors.params_by_run(runs)
    metrics = selectors.latest_metrics_by_run(runs)
    history, truncated = selectors.metric_history_by_run(runs)
    param_keys = sorted({key for run in runs for key in params.get(run.pk, {})})
    metric_keys = sorted({key for run in runs for key in metrics.get(run.pk, {})})
    x_key = request.GET.get("x") if request.GET.get("x") in metric_keys else (metric_keys[:1] or [None])[0]
    y_key = request.GET.get("y") if request.GET.get("y") in metric_keys else (metric_keys[1:2] or [x_key])[0]
    x_axis = "time" if request.GET.get("axis") == "time" else "step"
    context = {
        "runs": [(run, charts.run_colour(index), _when(run.start_time)) for index, run in enumerate(runs)],
        "run_uuids": run_uuids,
        "param_rows": _diff_rows(param_keys, [params.get(run.pk, {}) for run in runs]),
        "metric_rows": [
            {"key": key, "values": [_metric_display(metrics.get(run.pk, {}).get(key)) for run in runs]}
            for key in metric_keys
        ],
        "metric_keys": metric_keys,
        "x_key": x_key,
        "y_key": y_key,
        "x_axis": x_axis,
        "curves": charts.compare_metric_figures(runs, history, x_axis=x_axis),
        "history_truncated": truncated,
        "parallel_json": charts.parallel_coordinates_figure(runs, params, metrics),
        "scatter_json": charts.scatter_figure(runs, metrics, x_key=x_key, y_key=y_key) if x_key else None,
    }
    return render(request, "tracking/compare.html", context)


# --- helpers -----------------------------------------------------------------------------------


@login_required
def experiment_settings(request: HttpRequest, experiment_id: int) -> HttpResponse:
    """Rename, describe, change visibility or team, share, delete and restore: the owner, the
    team lead and admins. Others who can see the experiment get 403; the rest 404."""
    experiment = _experiment_or_404(request, experiment_id)
    if not permissions.can_manage(request.user, experiment):
        raise PermissionDenied("Only the owner, the team lead or an admin may change this experiment.")
    teams = selectors.teams_for_experiment_settings(request.user, experiment)
    settings_form = ExperimentSettingsForm(
        initial={
            "name": experiment.name,
            "description": experiment.description,
            "visibility": experiment.visibility,
            "team": experiment.team_id,
        },
        teams=teams,
    )
    share_form = ExperimentShareForm()
    if request.method == "POST":
        action = request.POST.get("action", "")
        try:
            if action == "update":
                settings_form = ExperimentSettingsForm(request.POST, teams=teams)
                if settings_form.is_valid():
                    data = settings_form.cleaned_data
                    services.update_experiment(
                        by=request.user,
                        experiment=experiment,
                        name=data["name"],
                        description=data["description"],
                        visibility=data["visibility"],
                        team=data["team"],
                        clear_team=data["team"] is None,
                    )
                    messages.success(request, "Experiment updated.")
                    return redirect("tracking:experiment_settings", experiment.pk)
            elif action in ("share", "unshare"):
                share_form = ExperimentShareForm(request.POST)
                if share_form.is_valid():
                    data = share_form.cleaned_data
                    services.share_experiment(
                        by=request.user,
                        experiment=experiment,
                        permission=data["permission"],
                        user=data.get("user"),
                        team=data.get("team"),
                        grant=action == "share",
                    )
                    messages.success(request, "Sharing updated.")
                    return redirect("tracking:experiment_settings", experiment.pk)
            elif action == "delete":
                services.delete_experiment(by=request.user, experiment=experiment)
                messages.success(request, "Experiment deleted; restore it from this page.")
                return redirect("tracking:experiment_settings", experiment.pk)
            elif action == "restore":
                services.restore_experiment(by=request.user, experiment=experiment)
                messages.success(request, "Experiment restored.")
                return redirect("tracking:experiment_settings", experiment.pk)
            else:
                return HttpResponseBadRequest("Unknown action.")
        except TrackingError as exc:
            messages.error(request, exc.message)
    context = {
        "experiment": experiment,
        "settings_form": settings_form,
        "share_form": share_form,
        "shares": selectors.experiment_shares(experiment),
    }
    return render(
        request, "tracking/experiment_settings.html", context, status=400 if request.method == "POST" else 200
    )


def _optional_url(name: str, *args) -> str | None:
    """A downstream app's page, when that app is installed (tracking does not import it)."""
    try:
        return reverse(name, args=args)
    except NoReverseMatch:
        return None


def _experiment_or_404(request: HttpRequest, experiment_id: int) -> Experiment:
    experiment = selectors.experiment_for(request.user, experiment_id)
    if experiment is None:
        raise Http404("No such experiment.")
    return experiment


def _run_or_404(request: HttpRequest, experiment_id: int, run_uuid: str) -> Run:
    run = selectors.run_for(request.user, run_uuid)
    if run is None or run.experiment_id != experiment_id:
        raise Http404("No such run.")
    return run


def _artifact_path_or_404(request: HttpRequest) -> str:
    try:
        return artifacts.clean_relative_path(request.GET.get("path", ""))
    except artifacts.UnsafeArtifactPath:
        raise Http404("No such artifact.")


def _chart_context(history: dict, truncated: bool, x_axis: str | None) -> dict:
    x_axis = "time" if x_axis == "time" else "step"
    return {
        "figures": charts.run_metric_figures(history, x_axis=x_axis),
        "x_axis": x_axis,
        "history_truncated": truncated,
        "max_figures": charts.MAX_METRIC_FIGURES,
    }


def _when(milliseconds: int | None) -> datetime | None:
    return None if milliseconds is None else datetime.fromtimestamp(milliseconds / 1000, tz=UTC)


def _duration(run: Run) -> str:
    if run.end_time is None or run.end_time < run.start_time:
        return ""
    seconds = (run.end_time - run.start_time) / 1000
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, seconds = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {seconds} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if hours < 48 else f"{hours // 24} d {hours % 24} h"


def _number(value) -> str:
    if value is None:
        return "NaN"
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def _metric_display(metric) -> str:
    if metric is None:
        return ""
    return "NaN" if metric.is_nan else _number(metric.value)


def _run_row(run: Run, columns: list[tuple[str, str]], values: dict) -> dict:
    cells = []
    for column in columns:
        value = values.get(column)
        if column not in values:
            cells.append({"text": "", "numeric": column[0] == "metrics"})
        elif column[0] == "metrics":
            cells.append({"text": _number(value), "numeric": True})
        else:
            cells.append({"text": value, "numeric": False})
    return {
        "run": run,
        "cells": cells,
        "started_at": _when(run.start_time),
        "duration": _duration(run),
    }


def _column_header(column: tuple[str, str], sort: tuple[str, str] | None, descending: bool) -> dict:
    kind, key = column
    active = sort == column
    return {
        "kind": kind,
        "key": key,
        "label": ATTRIBUTE_SORTS.get(key, key) if kind == "attributes" else key,
        "sort_value": f"{kind}.{key}",
        "active": active,
        "descending": descending,
        # The first click sorts largest first, as MLflow's UI does; the next one flips it.
        "next_dir": ("asc" if descending else "desc") if active else "desc",
    }


def _diff_rows(keys: list[str], values_by_run: list[dict]) -> list[dict]:
    rows = []
    for key in keys:
        values = [values.get(key) for values in values_by_run]
        rows.append({"key": key, "values": values, "differs": len(set(values)) > 1})
    return rows
