"""Catalog jobs: profiling a dataset version."""

from __future__ import annotations

from pathlib import Path

from django.core.exceptions import ValidationError

from apps.catalog import services
from apps.catalog.models import DatasetVersion
from apps.jobs.runner import JobContext, job_task


def source_path(version: DatasetVersion) -> Path:
    """The file to profile: the stored upload, or a server path checked again against
    CATALOG_DATA_ROOT (the root may have moved; a recorded URI is never opened as a file)."""
    if version.file:
        return Path(version.file.path)
    return services.resolve_server_path(version.source_uri)


@job_task(kind=services.PROFILE_JOB, label="Profile a dataset version")
def profile_version(*, job, ctx: JobContext) -> dict:
    """Hash and profile a version's file, streaming; a malformed file fails the version (with
    the line and reason) and leaves the dataset on its previous good version."""
    from apps.catalog.profiling import ProfileError, profile_file, sha256_file

    version = DatasetVersion.objects.select_related("dataset").get(pk=job.params["version_id"])
    services.mark_profiling(version=version)
    try:
        path = source_path(version)
        ctx.progress(2, "Hashing the file")
        digest, size = sha256_file(path)
        ctx.progress(10, "Profiling")
        profile = profile_file(path, version.format, progress=lambda pct, msg: ctx.progress(10 + int(pct * 0.85), msg))
    except (ProfileError, OSError, ValidationError) as exc:
        services.mark_profile_failed(version=version, error=" ".join(getattr(exc, "messages", None) or [str(exc)]))
        raise
    ctx.progress(97, "Saving the profile")
    version = services.apply_profile(version=version, profile=profile.to_dict(), content_hash=digest, size_bytes=size)
    return {"version": version.number, "rows": version.row_count, "columns": len(profile.columns), "sha256": digest}
