"""Every read of experiments and runs, filtered by what the user may see. Visibility is one
indexed query: owner / team / organisation-wide columns plus direct-FK guardian shares, the same
shape as the catalog's."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import posixpath
from collections import defaultdict

from django.db import connection
from django.db.models import Count, F, Max, Q, QuerySet
from django.db.models.functions import Coalesce, Greatest

from apps.accounts.models import Team, User
from apps.accounts.selectors import cached_team_ids
from apps.accounts.sharing import Grant, read_grants, shareable_for_object
from apps.catalog.selectors import visible_datasets
from apps.core.rows import RowLoader, fetch_one
from apps.tracking import artifacts, permissions
from apps.tracking.models import (
    Experiment,
    ExperimentGroupObjectPermission,
    ExperimentUserObjectPermission,
    LatestMetric,
    Lifecycle,
    LoggedModel,
    Metric,
    Param,
    Run,
    RunInput,
    RunTag,
)


def visible_experiments(user, *, include_deleted: bool = True) -> QuerySet[Experiment]:
    """Experiments `user` knows exist (deleted ones too unless asked otherwise: MLflow's API
    answers for them and the UI shows them in a trash view)."""
    if not user.is_authenticated:
        return Experiment.objects.none()
    queryset = Experiment.objects.all()
    if not include_deleted:
        queryset = queryset.filter(lifecycle_stage=Lifecycle.ACTIVE)
    if permissions.is_admin(user):
        return queryset
    shared_to_user = ExperimentUserObjectPermission.objects.filter(
        user=user, permission__codename="view_experiment"
    ).values("content_object_id")
    shared_to_groups = ExperimentGroupObjectPermission.objects.filter(
        group__user=user, permission__codename="view_experiment"
    ).values("content_object_id")
    return queryset.filter(
        Q(visibility=Experiment.Visibility.ORGANISATION)
        | Q(owner=user)
        | Q(team_id__in=cached_team_ids(user))
        | Q(pk__in=shared_to_user)
        | Q(pk__in=shared_to_groups)
    )


def visible_runs(user) -> QuerySet[Run]:
    return Run.objects.filter(experiment__in=visible_experiments(user).values("pk"))


def experiment_for(user, experiment_id: int | str) -> Experiment | None:
    if not str(experiment_id).isdigit():
        return None
    return visible_experiments(user).select_related("owner", "team").filter(pk=int(experiment_id)).first()


def experiment_by_name(user, name: str) -> Experiment | None:
    return visible_experiments(user).select_related("owner", "team").filter(name=name).first()


def run_for(user, run_uuid: str) -> Run | None:
    """The run with its experiment, or None when it does not exist or is hidden from `user`."""
    if not run_uuid or len(run_uuid) > 32:
        return None
    run = _run_by_uuid(run_uuid)
    if run is None or not permissions.can_view(user, run.experiment):
        return None
    return run


_RUN_ROW = RowLoader(Run, "r")
_EXPERIMENT_ROW = RowLoader(Experiment, "e")
_USER_ROW = RowLoader(User, "u")


def _run_by_uuid(run_uuid: str) -> Run | None:
    """`Run.objects.select_related("experiment", "user").filter(run_uuid=…).first()`, hand-written:
    every MLflow write (one per `log_metric` point) makes it (apps/core/rows.py)."""
    quote = connection.ops.quote_name
    found = fetch_one(
        connection,
        f"FROM {quote(Run._meta.db_table)} r "
        f"INNER JOIN {quote(Experiment._meta.db_table)} e ON e.{quote('id')} = r.{quote('experiment_id')} "
        f"INNER JOIN {quote(User._meta.db_table)} u ON u.{quote('id')} = r.{quote('user_id')} "
        f"WHERE r.{quote('run_uuid')} = %s",
        [run_uuid],
        [_RUN_ROW, _EXPERIMENT_ROW, _USER_ROW],
    )
    if found is None:
        return None
    run, experiment, user = found
    run.experiment, run.user = experiment, user
    return run


def can_view_experiment_id(user, object_id: str) -> bool:
    """For the audit history pages (registered in TrackingConfig.ready)."""
    return str(object_id).isdigit() and visible_experiments(user).filter(pk=int(object_id)).exists()


# --- Reads for the HTML pages ------------------------------------------------------------------
# Imported here, after the API's reads, so the two halves of this file can grow independently.

SYSTEM_TAG_PREFIX = "mlflow."
# One chart page never ships more points than this (a run can log millions).
MAX_HISTORY_POINTS = 100_000
# The column chooser lists at most this many keys of each kind.
MAX_COLUMN_KEYS = 300

EXPERIMENT_SORTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "activity": ("Last activity", ("-last_activity", "-pk")),
    "name": ("Name A–Z", ("name",)),
    "-name": ("Name Z–A", ("-name",)),
    "created": ("Newest", ("-creation_time", "-pk")),
    "runs": ("Most runs", ("-run_count", "-pk")),
}


def experiments_for_list(
    user,
    *,
    text: str = "",
    owner_id: int | None = None,
    team_id: int | None = None,
    show_deleted: bool = False,
    sort: str = "activity",
) -> QuerySet[Experiment]:
    """The experiments list: what `user` may see, each with its number of active runs and its
    last activity (the latest run start or end, or the experiment's own last update) worked out
    in the same query, so the page costs the same for 10 experiments or 10,000."""
    queryset = visible_experiments(user, include_deleted=show_deleted)
    if text:
        queryset = queryset.filter(name__icontains=text)
    if owner_id:
        queryset = queryset.filter(owner_id=owner_id)
    if team_id:
        queryset = queryset.filter(team_id=team_id)
    queryset = queryset.annotate(
        run_count=Count("runs", filter=Q(runs__lifecycle_stage=Lifecycle.ACTIVE)),
        last_run_time=Max(Coalesce("runs__end_time", "runs__start_time")),
    ).annotate(last_activity=Greatest(F("last_update_time"), Coalesce(F("last_run_time"), F("last_update_time"))))
    order = EXPERIMENT_SORTS.get(sort, EXPERIMENT_SORTS["activity"])[1]
    return queryset.select_related("owner", "team").prefetch_related("tags").order_by(*order)


def experiment_list_choices(user) -> dict[str, QuerySet]:
    """The owners and teams of the experiments `user` may see, for the list's filters."""
    visible = visible_experiments(user).values("pk")
    owners = User.objects.filter(experiments_owned__in=visible).distinct().order_by("username")
    teams = Team.objects.filter(experiments__in=visible).distinct().order_by("name")
    return {"owners": owners, "teams": teams}


def run_column_keys(experiment: Experiment) -> dict[str, list[str]]:
    """The param, metric and (non-system) tag keys the experiment's runs use, for the runs
    table's column chooser: three queries."""
    params = Param.objects.filter(run__experiment=experiment).order_by("key").values_list("key", flat=True)
    metrics = LatestMetric.objects.filter(run__experiment=experiment).order_by("key").values_list("key", flat=True)
    tags = (
        RunTag.objects.filter(run__experiment=experiment)
        .exclude(key__startswith=SYSTEM_TAG_PREFIX)
        .order_by("key")
        .values_list("key", flat=True)
    )
    return {
        "params": list(params.distinct()[:MAX_COLUMN_KEYS]),
        "metrics": list(metrics.distinct()[:MAX_COLUMN_KEYS]),
        "tags": list(tags.distinct()[:MAX_COLUMN_KEYS]),
    }


_COLUMN_MODELS = {"params": Param, "metrics": LatestMetric, "tags": RunTag}


def run_column_values(runs, columns: list[tuple[str, str]]) -> dict[int, dict[tuple[str, str], object]]:
    """The values of the chosen columns, `(kind, key)` with kind params / metrics / tags, for
    a page of runs: `{run id: {(kind, key): value}}`. One query per kind of column chosen,
    however many runs the page has. Metric values are the latest ones (None for NaN)."""
    values: dict[int, dict[tuple[str, str], object]] = defaultdict(dict)
    run_ids = [run.pk for run in runs]
    if not run_ids:
        return values
    for kind, model in _COLUMN_MODELS.items():
        keys = [key for column_kind, key in columns if column_kind == kind]
        if not keys:
            continue
        rows = model.objects.filter(run_id__in=run_ids, key__in=keys).values_list("run_id", "key", "value")
        for run_id, key, value in rows:
            values[run_id][(kind, key)] = value
    return values


def params_by_run(runs) -> dict[int, dict[str, str]]:
    """Every param of the given runs, `{run id: {key: value}}`, in one query."""
    result: dict[int, dict[str, str]] = defaultdict(dict)
    for run_id, key, value in Param.objects.filter(run__in=runs).order_by("key").values_list("run_id", "key", "value"):
        result[run_id][key] = value
    return result


def latest_metrics_by_run(runs) -> dict[int, dict[str, LatestMetric]]:
    """The latest value of every metric of the given runs, `{run id: {key: LatestMetric}}`,
    in one query."""
    result: dict[int, dict[str, LatestMetric]] = defaultdict(dict)
    for metric in LatestMetric.objects.filter(run__in=runs).order_by("key"):
        result[metric.run_id][metric.key] = metric
    return result


def metric_history_by_run(runs, *, limit: int = MAX_HISTORY_POINTS) -> tuple[dict[int, dict[str, list]], bool]:
    """Every logged point of the given runs in one query, `{run id: {key: [(step, timestamp,
    value or None), …]}}` ordered by step then time, and whether the `limit` cut it short."""
    rows = (
        Metric.objects.filter(run__in=runs)
        .order_by("run_id", "key", "step", "timestamp")
        .values_list("run_id", "key", "step", "timestamp", "value", "is_nan")[: limit + 1]
    )
    history: dict[int, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    truncated = False
    for index, (run_id, key, step, timestamp, value, is_nan) in enumerate(rows):
        if index == limit:
            truncated = True
            break
        history[run_id][key].append((step, timestamp, None if is_nan else value))
    return history, truncated


def tags_of_run(run: Run) -> list[RunTag]:
    return list(run.tags.order_by("key"))


def inputs_of_run(user, run: Run) -> list[tuple[RunInput, object | None]]:
    """The run's inputs, each with the catalog dataset of its matched version when `user` may
    see that dataset (None otherwise): two queries."""
    inputs = list(run.inputs.select_related("dataset_version__dataset").order_by("context", "name"))
    dataset_ids = {i.dataset_version.dataset_id for i in inputs if i.dataset_version_id}
    visible_ids = (
        set(visible_datasets(user).filter(pk__in=dataset_ids).values_list("pk", flat=True)) if dataset_ids else set()
    )
    return [
        (i, i.dataset_version.dataset if i.dataset_version_id and i.dataset_version.dataset_id in visible_ids else None)
        for i in inputs
    ]


def logged_models_of_run(run: Run) -> list[LoggedModel]:
    return list(run.logged_models.filter(lifecycle_stage=Lifecycle.ACTIVE).order_by("-creation_timestamp"))


def runs_of_experiment(experiment: Experiment, *, lifecycle: str = "active") -> QuerySet[Run]:
    """The runs table's base queryset (the caller has checked the experiment is visible):
    active, deleted or all runs, with their users."""
    runs = Run.objects.filter(experiment=experiment).select_related("user")
    if lifecycle == "active":
        return runs.filter(lifecycle_stage=Lifecycle.ACTIVE)
    if lifecycle == "deleted":
        return runs.filter(lifecycle_stage=Lifecycle.DELETED)
    return runs


def runs_for_compare(user, run_uuids: list[str]) -> list[Run] | None:
    """The runs named, in the order given, or None when any of them does not exist or is
    hidden from `user` (the compare page then answers 404 as if none existed)."""
    runs = {
        run.run_uuid: run
        for run in visible_runs(user).filter(run_uuid__in=run_uuids).select_related("experiment", "user")
    }
    if len(runs) != len(set(run_uuids)):
        return None
    return [runs[uuid] for uuid in run_uuids]


# --- Artifact previews -------------------------------------------------------------------------
PREVIEW_MAX_BYTES = 256 * 1024
PREVIEW_MAX_ROWS = 100
# Shown inline by the raw view; everything else (SVG included: it can carry script) downloads.
INLINE_IMAGE_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
}
_TEXT_NAMES = {"MLmodel", "Dockerfile", "LICENSE", "README", "Makefile"}
_TEXT_SUFFIXES = {
    ".txt", ".log", ".yaml", ".yml", ".json", ".py", ".cfg", ".ini", ".toml", ".sql", ".sh", ".r", ".xml",
    ".html", ".htm", ".js", ".css", ".ipynb", ".jsonl", ".properties", ".env", ".conf", ".rst",
}  # fmt: skip
_TABLE_SUFFIXES = {".csv": ",", ".tsv": "\t"}


def run_artifact_root(run: Run) -> str:
    """The storage key under which the run's artifacts live, or '' when its artifact URI is
    not one this server issued for the run's own experiment (nothing to browse then)."""
    root = artifacts.root_key(run.artifact_uri)
    return root if root and artifacts.experiment_id_of_key(root) == run.experiment_id else ""


def artifact_kind(path: str) -> str:
    """How the page shows a file: image, svg, markdown, json, table, text or binary."""
    name = posixpath.basename(path)
    suffix = posixpath.splitext(name)[1].lower()
    if suffix in INLINE_IMAGE_TYPES:
        return "image"
    if suffix == ".svg":
        return "svg"
    if suffix == ".md":
        return "markdown"
    if suffix == ".json":
        return "json"
    if suffix in _TABLE_SUFFIXES:
        return "table"
    if suffix in _TEXT_SUFFIXES or name in _TEXT_NAMES or name.startswith("requirements"):
        return "text"
    return "binary"


def artifact_preview(run: Run, path: str) -> dict:
    """What the artifact browser shows for one file: its kind, size and, for text-like files,
    the first PREVIEW_MAX_BYTES (JSON pretty-printed when whole, CSV as its first
    PREVIEW_MAX_ROWS rows). Raises FileNotFoundError when there is no such file."""
    root = run_artifact_root(run)
    if not root or not path:
        raise FileNotFoundError(path)
    try:
        file_size = artifacts.size(root, path)
    except (OSError, NotImplementedError) as exc:
        raise FileNotFoundError(path) from exc
    kind = artifact_kind(path)
    preview = {
        "path": path,
        "name": posixpath.basename(path),
        "kind": kind,
        "size": file_size,
        "truncated": file_size > PREVIEW_MAX_BYTES,
    }
    try:
        # Opened even when nothing is read: a folder's path must not pass for a file.
        with artifacts.open_file(root, path) as handle:
            head = b"" if kind in ("image", "svg", "binary") else handle.read(PREVIEW_MAX_BYTES)
    except OSError as exc:
        raise FileNotFoundError(path) from exc
    if kind in ("image", "svg", "binary"):
        return preview
    if b"\x00" in head[:8192]:
        preview["kind"] = "binary"
        return preview
    text = head.decode("utf-8", errors="replace")
    if kind == "json" and not preview["truncated"]:
        with contextlib.suppress(ValueError):
            text = json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    if kind == "table":
        if preview["truncated"]:
            text = text.rsplit("\n", 1)[0]  # the last line may be cut short
        reader = csv.reader(io.StringIO(text), delimiter=_TABLE_SUFFIXES[posixpath.splitext(path)[1].lower()])
        rows = []
        try:
            for row in reader:
                rows.append(row)
                if len(rows) > PREVIEW_MAX_ROWS:
                    break
        except csv.Error:
            preview["kind"] = "text"
        else:
            preview["header"], preview["rows"] = (rows[0], rows[1 : PREVIEW_MAX_ROWS + 1]) if rows else ([], [])
            preview["more_rows"] = len(rows) > PREVIEW_MAX_ROWS or preview["truncated"]
    preview["text"] = text
    return preview


def can_view_run_id(user, object_id: str) -> bool:
    """For the audit history of runs (registered in TrackingConfig.ready)."""
    return str(object_id).isdigit() and visible_runs(user).filter(pk=int(object_id)).exists()


def experiment_shares(experiment: Experiment) -> list[Grant]:
    """Who the experiment is explicitly shared with, at which levels (view, change): users
    then teams, as the Share dialog reads them (two queries)."""
    return read_grants(shareable_for_object(experiment), experiment)


def teams_for_experiment_settings(user, experiment: Experiment) -> QuerySet[Team]:
    """Teams an experiment may be given to: the manager's own (all for admins), plus its current one."""
    teams = Team.objects.all() if permissions.is_admin(user) else Team.objects.filter(group__user=user)
    if experiment.team_id:
        teams = teams | Team.objects.filter(pk=experiment.team_id)
    return teams.distinct().order_by("name")
