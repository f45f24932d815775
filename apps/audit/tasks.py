from apps.audit.selectors import verify_chain
from apps.jobs.runner import JobContext, job_task


@job_task(kind="audit.verify_chain", label="Verify the audit chain")
def verify_audit_chain(*, job, ctx: JobContext) -> dict:
    """Walk the whole audit chain; the job fails if any event was edited or deleted."""
    ctx.progress(5, "Walking the audit chain")
    report = verify_chain(
        progress=lambda done, total: ctx.progress(5 + int(90 * done / max(total, 1)), f"{done} of {total} events")
    )
    if not report.ok:
        raise ValueError("Audit chain broken: " + "; ".join(report.problems[:20]))
    return {"events_checked": report.checked}
