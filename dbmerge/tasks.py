"""Celery tasks of merge jobs, and the enqueueing of a saved job. The task gets the job's id only;
the job row holds the rest."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings
from django.db import transaction

from dbmerge import jobrunner
from dbmerge.choices import JobKind, JobState
from dbmerge.models import MergeJob
from imp_admin.celery import app

# A merge of large databases takes hours; never inherit a short global limit.
SOFT_TIME_LIMIT = 12 * 3600
TIME_LIMIT = SOFT_TIME_LIMIT + 600


@shared_task(
    bind=True, name="dbmerge.run_merge_job", acks_late=True, soft_time_limit=SOFT_TIME_LIMIT, time_limit=TIME_LIMIT
)
def run_merge_job(self, job_id: int) -> None:
    """Run a merge job. acks_late is safe: a redelivered message finds the job claimed.

    The runner ends the job Failed when the soft time limit strikes (a limit given with
    ``apply_async`` overrides the task's own).
    """
    _hard, soft = self.request.timelimit or (None, None)
    jobrunner.run_job(job_id, time_limit=soft or self.soft_time_limit)


@shared_task(name="dbmerge.mark_stale_jobs", soft_time_limit=60, time_limit=120)
def mark_stale_jobs() -> int:
    """Fail jobs whose worker died (a periodic check; pages also run it)."""
    return jobrunner.mark_stale_jobs()


@app.on_after_finalize.connect
def schedule_stale_job_check(sender, **kwargs) -> None:
    # Without it, a job whose worker died stays Merging until someone opens a job page.
    interval = settings.MERGE_STALE_CHECK_INTERVAL
    if interval:
        sender.add_periodic_task(interval, mark_stale_jobs.s(), name="stale merge jobs")


def enqueue(job: MergeJob) -> None:
    """Hand the saved job to a Celery worker once the surrounding transaction commits."""
    transaction.on_commit(lambda: run_merge_job.delay(job.pk))


def request_merge(job: MergeJob) -> bool:
    """Turn a validated job into a merge (Merge Selected Tables); False if it is not validated.

    A Cancel pressed while the job was validating is spent: it must not cancel this merge.
    """
    if not jobrunner.move_job(
        job.pk,
        JobState.VALIDATED,
        state=JobState.PENDING,
        kind=JobKind.MERGE,
        finished=None,
        reason="",
        cancel_requested=False,
    ):
        return False
    job.refresh_from_db()
    enqueue(job)
    return True


def request_preview(selection: dict, **fields) -> MergeJob:
    """Create a Preview job for ``selection`` (values of SELECTION_FIELDS) and queue it; the
    worker validates it, previews the merge and leaves it Validated, ready to merge."""
    with transaction.atomic():
        job = MergeJob.objects.create(**selection, **fields, kind=JobKind.PREVIEW)
        enqueue(job)
    return job
