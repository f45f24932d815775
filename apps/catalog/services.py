"""Every write to the catalog: validates, runs in a transaction, checks permission, audits."""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.db.models import Max
from django.utils import timezone
from django.utils.text import slugify
from guardian.shortcuts import assign_perm, remove_perm

from apps.accounts.models import Team, User
from apps.audit import services as audit
from apps.catalog import permissions, search
from apps.catalog.models import AccessRequest, Column, Dataset, DatasetVersion, Domain, Tag
from apps.jobs import services as jobs

DATASET_FIELDS = [
    "name",
    "description",
    "classification",
    "visibility",
    "source_kind",
    "source_uri",
    "format",
    "documentation_links",
    "team",
    "domain",
    "steward",
    "owner",
    "external_namespace",
    "external_name",
]
PROFILE_JOB = "catalog.profile_version"


class UploadTooLarge(ValidationError):
    """The upload exceeds CATALOG_MAX_UPLOAD_BYTES (answered with HTTP 413)."""


def create_dataset(
    *,
    by: User,
    name: str,
    description: str = "",
    classification: str = Dataset.Classification.INTERNAL,
    visibility: str = Dataset.Visibility.ORGANISATION,
    team: Team | None = None,
    domain: Domain | None = None,
    tags: list[str] | None = None,
    source_kind: str = Dataset.SourceKind.UPLOAD,
    source_uri: str = "",
    format: str = Dataset.Format.CSV,
    documentation_links: list[str] | None = None,
    steward: User | None = None,
    external_namespace: str = "",
    external_name: str = "",
) -> Dataset:
    """Register a dataset owned by `by`. Content arrives as versions."""
    if not by.has_perm("catalog.add_dataset"):
        raise PermissionDenied("Your roles do not allow registering datasets.")
    name = (name or "").strip()
    if not name:
        raise ValidationError({"name": "A dataset needs a name."})
    dataset = Dataset(
        name=name[:200],
        slug=_unique_slug(name),
        description=description or "",
        owner=by,
        steward=steward,
        team=team,
        domain=domain,
        classification=classification,
        visibility=visibility,
        source_kind=source_kind,
        source_uri=source_uri or "",
        format=format,
        documentation_links=_clean_links(documentation_links),
        external_namespace=external_namespace,
        external_name=external_name,
    )
    dataset.full_clean(exclude=["slug", "current_version"])
    with transaction.atomic():
        dataset.save()
        _set_tags(dataset, tags or [])
        search.reindex(dataset)
        audit.record(actor=by, action="dataset.create", target=dataset, after=_dataset_state(dataset))
    return dataset


def update_dataset(*, dataset: Dataset, by: User, tags: list[str] | None = None, **changes: Any) -> Dataset:
    """Change a dataset's metadata (owner, steward, team lead, admins, or a `change` share)."""
    if not permissions.can_change(by, dataset):
        raise PermissionDenied("You may not change this dataset.")
    unknown = set(changes) - set(DATASET_FIELDS)
    if unknown:
        raise ValidationError(f"Unknown field(s): {', '.join(sorted(unknown))}")
    with transaction.atomic():
        dataset = Dataset.objects.select_for_update().get(pk=dataset.pk)
        before = _dataset_state(dataset)
        for field, value in changes.items():
            setattr(dataset, field, _clean_links(value) if field == "documentation_links" else value)
        dataset.full_clean(exclude=["current_version"])
        dataset.save()
        if tags is not None:
            _set_tags(dataset, tags)
        search.reindex(dataset)
        audit.record(actor=by, action="dataset.update", target=dataset, before=before, after=_dataset_state(dataset))
    return dataset


def add_version_from_upload(*, dataset: Dataset, by: User, upload: UploadedFile, note: str = "") -> DatasetVersion:
    """Store an uploaded file as a new version and queue its profiling job."""
    from apps.catalog.profiling import ProfileError, detect_format

    _require_change(by, dataset)
    if upload.size is not None and upload.size > settings.CATALOG_MAX_UPLOAD_BYTES:
        raise UploadTooLarge(
            f"The file is larger than the {settings.CATALOG_MAX_UPLOAD_BYTES // (1024 * 1024)} MB limit."
        )
    if not upload.size:
        raise ValidationError({"file": "The file is empty."})
    try:
        fmt = detect_format(upload.name or "")
    except ProfileError as exc:
        raise ValidationError({"file": str(exc)}) from exc
    with transaction.atomic():
        version = _new_version(dataset=dataset, by=by, fmt=fmt, note=note)
        # A generated name: the user's file name never reaches the filesystem.
        version.file.save(f"{dataset.slug}-v{version.number}-{uuid.uuid4().hex[:8]}.{fmt}", upload, save=True)
        _queue_profile(version=version, by=by)
    return version


def add_version_from_path(*, dataset: Dataset, by: User, path: str, note: str = "") -> DatasetVersion:
    """Register a file already on the server, under CATALOG_DATA_ROOT only."""
    from apps.catalog.profiling import ProfileError, detect_format

    _require_change(by, dataset)
    resolved = resolve_server_path(path)
    try:
        fmt = detect_format(resolved.name)
    except ProfileError as exc:
        raise ValidationError({"path": str(exc)}) from exc
    with transaction.atomic():
        version = _new_version(dataset=dataset, by=by, fmt=fmt, note=note, source_uri=str(resolved))
        _queue_profile(version=version, by=by)
    return version


def add_external_version(
    *,
    dataset: Dataset,
    by: User | None,
    uri: str = "",
    columns: list[dict] | None = None,
    content_hash: str = "",
    row_count: int | None = None,
    produced_by=None,
    note: str = "",
) -> DatasetVersion:
    """Record a version whose content lives elsewhere (s3://…, a database table): metadata only."""
    with transaction.atomic():
        version = _new_version(
            dataset=dataset, by=by, fmt=dataset.format, note=note, source_uri=uri, status=DatasetVersion.Status.EXTERNAL
        )
        version.content_hash, version.row_count, version.produced_by = content_hash, row_count, produced_by
        version.save(update_fields=["content_hash", "row_count", "produced_by"])
        _write_columns(version, [_column_from_schema(version, i, c) for i, c in enumerate(columns or [])])
        _make_current(version)
        audit.record(
            actor=by, action="dataset.version.external", target=dataset, after={"version": version.number, "uri": uri}
        )
    return version


def request_profile(*, version: DatasetVersion, by: User) -> None:
    """Profile a version again (after a fix of the file on the server, or a failed run)."""
    _require_change(by, version.dataset)
    external = version.status == DatasetVersion.Status.EXTERNAL  # a URI recorded elsewhere, not a server file
    if not (version.file or (version.source_uri.startswith("/") and not external)):
        raise ValidationError("Only uploaded files and server paths can be profiled.")
    with transaction.atomic():
        DatasetVersion.objects.filter(pk=version.pk).update(status=DatasetVersion.Status.PENDING, error="")
        _queue_profile(version=version, by=by)


def mark_profiling(*, version: DatasetVersion) -> None:
    DatasetVersion.objects.filter(pk=version.pk).update(status=DatasetVersion.Status.PROFILING, error="")


def apply_profile(*, version: DatasetVersion, profile: dict, content_hash: str, size_bytes: int) -> DatasetVersion:
    """Store a finished profile: columns (carrying descriptions and PII flags over from the
    previous version), row count, statistics and samples; the version becomes current."""
    with transaction.atomic():
        version = DatasetVersion.objects.select_for_update().select_related("dataset").get(pk=version.pk)
        previous = {c.name: c for c in _previous_columns(version)}
        columns = []
        for position, col in enumerate(profile.get("columns", [])):
            before = previous.get(col["name"])
            columns.append(
                Column(
                    version=version,
                    position=position,
                    name=col["name"][:300],
                    type=col.get("type", "other"),
                    physical_type=str(col.get("physical_type", ""))[:100],
                    nullable=bool(col.get("nullable", True)),
                    description=before.description if before else "",
                    is_pii=before.is_pii if before else False,
                    stats=col,
                )
            )
        _write_columns(version, columns)
        version.row_count = profile.get("row_count")
        version.profile = {k: v for k, v in profile.items() if k != "sample_rows"}
        version.sample_rows = profile.get("sample_rows") or []
        version.content_hash, version.size_bytes = content_hash, size_bytes
        version.status, version.error, version.profiled_at = DatasetVersion.Status.READY, "", timezone.now()
        version.save()
        _make_current(version)
        audit.record(
            actor=None,
            action="dataset.version.profiled",
            target=version.dataset,
            after={"version": version.number, "rows": version.row_count, "sha256": content_hash},
        )
    return version


def mark_profile_failed(*, version: DatasetVersion, error: str) -> None:
    """The version failed; the dataset keeps its previous good version as current."""
    with transaction.atomic():
        DatasetVersion.objects.filter(pk=version.pk).update(status=DatasetVersion.Status.FAILED, error=error[:5000])
        audit.record(
            actor=None,
            action="dataset.version.failed",
            target=version.dataset,
            after={"version": version.number, "error": error[:500]},
        )


def set_column_metadata(
    *, column: Column, by: User, description: str | None = None, is_pii: bool | None = None
) -> Column:
    dataset = column.version.dataset
    _require_change(by, dataset)
    with transaction.atomic():
        before = {"description": column.description, "is_pii": column.is_pii}
        if description is not None:
            column.description = description
        if is_pii is not None:
            column.is_pii = is_pii
        column.save(update_fields=["description", "is_pii"])
        audit.record(
            actor=by,
            action="dataset.column.update",
            target=dataset,
            object_label=f"{dataset.name}.{column.name}",
            before=before,
            after={"description": column.description, "is_pii": column.is_pii},
        )
    return column


def set_following(*, dataset: Dataset, user: User, follow: bool) -> None:
    with transaction.atomic():
        if follow:
            dataset.followers.add(user)
        else:
            dataset.followers.remove(user)
        audit.record(actor=user, action="dataset.follow" if follow else "dataset.unfollow", target=dataset)


def request_access(*, dataset: Dataset, by: User, purpose: str, duration_days: int = 90) -> AccessRequest:
    """Ask for the content of a confidential or PII dataset."""
    if not permissions.can_view(by, dataset):
        raise PermissionDenied("No such dataset.")
    if not dataset.is_restricted:
        raise ValidationError("This dataset is not restricted: its content is open to everyone who can see it.")
    purpose = (purpose or "").strip()
    if len(purpose) < 10:
        raise ValidationError({"purpose": "Say what you need the data for (at least 10 characters)."})
    if not 1 <= int(duration_days) <= settings.CATALOG_MAX_ACCESS_DAYS:
        raise ValidationError({"duration_days": f"Between 1 and {settings.CATALOG_MAX_ACCESS_DAYS} days."})
    with transaction.atomic():
        open_request = AccessRequest.objects.select_for_update().filter(
            dataset=dataset, requester=by, status=AccessRequest.Status.PENDING
        )
        if open_request.exists():
            raise ValidationError("You already have a pending request for this dataset.")
        access_request = AccessRequest.objects.create(
            dataset=dataset, requester=by, purpose=purpose, duration_days=duration_days
        )
        audit.record(
            actor=by,
            action="access.request",
            target=dataset,
            after={"request": access_request.pk, "purpose": purpose, "days": duration_days},
        )
    return access_request


def decide_access_request(
    *, access_request: AccessRequest, by: User, approve: bool, comment: str = ""
) -> AccessRequest:
    """Approve (for the requested duration) or reject. Owners, stewards and admins decide;
    nobody decides their own request."""
    if not permissions.can_decide_access(by, access_request.dataset):
        raise PermissionDenied("Only the dataset's owner, its steward or an admin may decide.")
    if access_request.requester_id == by.pk:
        raise PermissionDenied("You cannot decide your own access request.")
    with transaction.atomic():
        access_request = AccessRequest.objects.select_for_update().get(pk=access_request.pk)
        if access_request.status != AccessRequest.Status.PENDING:
            raise ValidationError(f"This request is already {access_request.status}.")
        now = timezone.now()
        access_request.status = AccessRequest.Status.APPROVED if approve else AccessRequest.Status.REJECTED
        access_request.decided_by, access_request.decided_at = by, now
        access_request.decision_comment = comment
        access_request.expires_at = now + timedelta(days=access_request.duration_days) if approve else None
        access_request.save()
        audit.record(
            actor=by,
            action="access.approve" if approve else "access.reject",
            target=access_request.dataset,
            before={"status": "pending"},
            after={
                "status": access_request.status,
                "request": access_request.pk,
                "requester": access_request.requester.username,
                "expires_at": access_request.expires_at,
            },
        )
    return access_request


def revoke_access(*, access_request: AccessRequest, by: User, comment: str = "") -> AccessRequest:
    if not permissions.can_decide_access(by, access_request.dataset):
        raise PermissionDenied("Only the dataset's owner, its steward or an admin may revoke access.")
    with transaction.atomic():
        access_request = AccessRequest.objects.select_for_update().get(pk=access_request.pk)
        if access_request.status != AccessRequest.Status.APPROVED:
            raise ValidationError("Only approved access can be revoked.")
        access_request.status = AccessRequest.Status.REVOKED
        access_request.decision_comment = comment or access_request.decision_comment
        access_request.save(update_fields=["status", "decision_comment"])
        audit.record(
            actor=by,
            action="access.revoke",
            target=access_request.dataset,
            before={"status": "approved"},
            after={"status": "revoked", "requester": access_request.requester.username},
        )
    return access_request


def share_dataset(
    *,
    dataset: Dataset,
    by: User,
    permission: str,
    user: User | None = None,
    team: Team | None = None,
    grant: bool = True,
) -> None:
    """Grant (or take back) view/change on one dataset to a user or a team (guardian)."""
    if permission not in ("view_dataset", "change_dataset", "view_dataset_content"):
        raise ValidationError({"permission": "One of view_dataset, change_dataset, view_dataset_content."})
    if (user is None) == (team is None):
        raise ValidationError("Share with exactly one user or one team.")
    _require_change(by, dataset)
    grantee = user if user is not None else team.group
    with transaction.atomic():
        (assign_perm if grant else remove_perm)(f"catalog.{permission}", grantee, dataset)
        audit.record(
            actor=by,
            action="dataset.share" if grant else "dataset.unshare",
            target=dataset,
            after={
                "permission": permission,
                "user": user.username if user else None,
                "team": team.name if team else None,
            },
        )


def resolve_server_path(path: str) -> Path:
    """A file under CATALOG_DATA_ROOT, or a ValidationError. Rejects `..`, other roots and links
    that lead outside."""
    root = Path(settings.CATALOG_DATA_ROOT).resolve()
    raw = (path or "").strip()
    if not raw or "\x00" in raw:
        raise ValidationError({"path": "Give a path under the data root."})
    if ".." in Path(raw).parts:
        raise ValidationError({"path": "Paths may not contain '..'."})
    candidate = Path(raw) if Path(raw).is_absolute() else root / raw
    resolved = candidate.resolve()
    if not resolved.is_relative_to(root):
        raise ValidationError({"path": f"The path must be under the data root {root}."})
    if not resolved.is_file():
        raise ValidationError({"path": "No such file under the data root."})
    return resolved


def get_or_create_tag(name: str) -> Tag:
    slug = slugify(name)[:60]
    if not slug:
        raise ValidationError({"tags": f"{name!r} is not a usable tag."})
    return Tag.objects.get_or_create(name=slug)[0]


# --- helpers -----------------------------------------------------------------------------


def _require_change(by: User, dataset: Dataset) -> None:
    if not permissions.can_view(by, dataset):
        raise PermissionDenied("No such dataset.")
    if not permissions.can_change(by, dataset):
        raise PermissionDenied("You may not add versions to this dataset.")


def _new_version(
    *,
    dataset: Dataset,
    by: User | None,
    fmt: str,
    note: str,
    source_uri: str = "",
    status: str = DatasetVersion.Status.PENDING,
) -> DatasetVersion:
    # Lock the dataset row so two uploads never take the same number.
    Dataset.objects.select_for_update().filter(pk=dataset.pk).first()
    number = (dataset.versions.aggregate(n=Max("number"))["n"] or 0) + 1
    version = DatasetVersion.objects.create(
        dataset=dataset,
        number=number,
        format=fmt,
        note=note[:500],
        source_uri=source_uri,
        created_by=by if getattr(by, "is_authenticated", False) else None,
        status=status,
    )
    audit.record(actor=by, action="dataset.version.create", target=dataset, after={"version": number, "format": fmt})
    return version


def _queue_profile(*, version: DatasetVersion, by: User) -> None:
    jobs.enqueue_job(kind=PROFILE_JOB, requested_by=by, target=version, params={"version_id": version.pk})


def _previous_columns(version: DatasetVersion) -> list[Column]:
    previous = (
        DatasetVersion.objects.filter(dataset_id=version.dataset_id, number__lt=version.number)
        .exclude(status=DatasetVersion.Status.FAILED)
        .order_by("-number")
        .first()
    )
    return list(previous.columns.all()) if previous else []


def _write_columns(version: DatasetVersion, columns: list[Column]) -> None:
    version.columns.all().delete()
    Column.objects.bulk_create(columns, batch_size=1000)


def _make_current(version: DatasetVersion) -> None:
    dataset = Dataset.objects.select_for_update().get(pk=version.dataset_id)
    current = dataset.current_version
    if current is None or current.number <= version.number:
        dataset.current_version = version
        dataset.save(update_fields=["current_version", "updated_at"])
        search.reindex(dataset)


def _column_from_schema(version: DatasetVersion, position: int, field: dict) -> Column:
    name = str(field.get("name", f"column_{position}"))[:300]
    return Column(
        version=version,
        position=position,
        name=name,
        type=_map_type(str(field.get("type", ""))),
        physical_type=str(field.get("type", ""))[:100],
        description=str(field.get("description", "") or ""),
    )


def _map_type(physical: str) -> str:
    lowered = physical.lower()
    for needle, kind in (
        ("int", "integer"),
        ("float", "float"),
        ("double", "float"),
        ("decimal", "float"),
        ("numeric", "float"),
        ("bool", "boolean"),
        ("timestamp", "timestamp"),
        ("date", "date"),
        ("char", "string"),
        ("text", "string"),
        ("string", "string"),
    ):
        if needle in lowered:
            return kind
    return "other"


def _set_tags(dataset: Dataset, names: list[str]) -> None:
    dataset.tags.set([get_or_create_tag(n) for n in names if n and n.strip()])


def _clean_links(links: Any) -> list[str]:
    cleaned = []
    for link in links or []:
        link = str(link).strip()
        if not link:
            continue
        if not link.startswith(("https://", "http://")):
            raise ValidationError({"documentation_links": f"{link!r} is not an http(s) link."})
        cleaned.append(link[:1000])
    return cleaned


def _dataset_state(dataset: Dataset) -> dict:
    state = audit.snapshot(dataset, DATASET_FIELDS)
    state["tags"] = sorted(dataset.tags.values_list("name", flat=True)) if dataset.pk else []
    return state


def _unique_slug(name: str) -> str:
    base = slugify(name)[:180] or "dataset"
    slug, n = base, 2
    while Dataset.objects.filter(slug=slug).exists():
        slug, n = f"{base}-{n}", n + 1
    return slug
