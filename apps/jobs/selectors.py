"""Reads of jobs, filtered by who may see them: ops and admins see every job, everyone else
the jobs they asked for."""

from __future__ import annotations

from django.db.models import Count, QuerySet

from apps.jobs.models import Job, JobLogEntry


def jobs_visible_to(user) -> QuerySet[Job]:
    if not user.is_authenticated:
        return Job.objects.none()
    jobs = Job.objects.select_related("requested_by", "target_type")
    if user.has_perm("jobs.view_job"):
        return jobs
    return jobs.filter(requested_by=user)


def job_for(user, job_id) -> Job | None:
    return jobs_visible_to(user).filter(pk=job_id).first()


def log_of(job: Job, limit: int = 500) -> list[JobLogEntry]:
    return list(job.log_entries.order_by("-at", "-id")[:limit])[::-1]


def status_counts(user) -> dict[str, int]:
    rows = jobs_visible_to(user).order_by().values("status").annotate(n=Count("pk"))
    counts = {status: 0 for status in Job.Status.values}
    counts.update({row["status"]: row["n"] for row in rows})
    return counts
