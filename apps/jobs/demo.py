"""Demo: one real job (verifying the audit chain) so the jobs page has something to show."""

from apps.jobs import services
from apps.jobs.models import Job


def load(context: dict) -> None:
    if not Job.objects.filter(kind="audit.verify_chain").exists():
        services.enqueue_job(kind="audit.verify_chain", requested_by=context.get("admin"))
