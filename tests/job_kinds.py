"""Job kinds used only by tests, registered before the test worker starts."""

from apps.jobs.runner import JobContext, RetryableJobError, job_task


@job_task(kind="tests.count_to", label="Count to N (test)")
def count_to(*, job, ctx: JobContext) -> dict:
    steps = int(job.params.get("steps", 4))
    for step in range(1, steps + 1):
        ctx.log(f"step {step}")
        ctx.progress(int(step * 100 / steps), f"step {step} of {steps}")
    return {"counted": steps}


@job_task(kind="tests.explode", label="Always fails (test)")
def explode(*, job, ctx: JobContext) -> None:
    ctx.progress(10, "about to fail")
    raise ValueError("the input file is malformed at line 3")


@job_task(kind="tests.flaky", label="Fails once, then succeeds (test)")
def flaky(*, job, ctx: JobContext) -> dict:
    if job.attempts < 2:
        raise RetryableJobError("service busy")
    return {"attempts": job.attempts}
