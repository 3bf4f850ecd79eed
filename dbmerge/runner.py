"""The one runner of a merge job's life cycle: claim, validate, merge, finish.

Called by the Celery task and by ``manage.py merge_external_databases`` alike. Every state
change is a conditional update, so a redelivered message or a second worker never runs a
job twice, and a job whose worker died is recognised by its stale heartbeat.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from dbmerge.choices import RUNNING, JobKind, JobState, MergeDatabaseType
from dbmerge.engines import MergeCancelled, MergeError, MergeHooks
from dbmerge.models import MergeCheck, MergeJob, MergeLogEntry
from dbmerge.validation import Validator, engine_database

logger = logging.getLogger("dbmerge.job")

# The worker writes the heartbeat about every second while it holds a job; a job whose
# heartbeat is older than this lost its worker.
HEARTBEAT_EVERY = 1.0
HEARTBEAT_STALE_AFTER = timedelta(seconds=60)
WORKER_LOST_REASON = (
    "The worker running this job stopped (no heartbeat for {seconds} s). The destination was left as it was, "
    "because the merge commits only when it completes; run the merge again."
)


class JobLogHandler(logging.Handler):
    """Stores the log records of the thread running a job as entries on the job."""

    def __init__(self, job_id: int) -> None:
        super().__init__(level=logging.INFO)
        self.job_id = job_id
        self.thread = threading.get_ident()

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread != self.thread:
            return
        try:
            MergeLogEntry.objects.create(job_id=self.job_id, level=record.levelname, message=record.getMessage())
        except Exception:  # a log line must never break the job
            self.handleError(record)


@contextmanager
def job_logging(job_id: int) -> Iterator[None]:
    handler = JobLogHandler(job_id)
    root = logging.getLogger("dbmerge")
    root.addHandler(handler)
    previous = root.level
    if root.getEffectiveLevel() > logging.INFO:
        root.setLevel(logging.INFO)
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)


def _move(job_id: int, from_states: set | JobState, **fields) -> bool:
    states = {from_states} if isinstance(from_states, str) else from_states
    return MergeJob.objects.filter(pk=job_id, state__in=states).update(**fields) == 1


def enqueue(job: MergeJob) -> None:
    """Hand the saved job to a Celery worker once the surrounding transaction commits."""
    from dbmerge.tasks import run_merge_job

    transaction.on_commit(lambda: run_merge_job.delay(job.pk))


def request_merge(job: MergeJob) -> bool:
    """Turn a validated job into a merge (Merge Selected Tables); False if it is not validated."""
    if not _move(job.pk, JobState.VALIDATED, state=JobState.PENDING, kind=JobKind.MERGE, finished=None, reason=""):
        return False
    job.refresh_from_db()
    enqueue(job)
    return True


def request_cancel(job: MergeJob) -> bool:
    """Cancel: a pending job ends at once, a running one when its worker next checks."""
    if _move(
        job.pk,
        JobState.PENDING,
        state=JobState.CANCELLED,
        finished=timezone.now(),
        reason="Cancelled before a worker started it.",
    ):
        return True
    return MergeJob.objects.filter(pk=job.pk, state__in=RUNNING).update(cancel_requested=True) == 1


def mark_stale_jobs(stale_after: timedelta | None = None) -> int:
    """Fail the running jobs whose worker stopped writing the heartbeat; return how many."""
    stale_after = stale_after or HEARTBEAT_STALE_AFTER
    cutoff = timezone.now() - stale_after
    stale = MergeJob.objects.filter(state__in=RUNNING, heartbeat__lt=cutoff)
    return stale.update(
        state=JobState.FAILED,
        finished=timezone.now(),
        reason=WORKER_LOST_REASON.format(seconds=int(stale_after.total_seconds())),
    )


class _JobHooks(MergeHooks):
    def __init__(self, job_id: int, echo: Callable[[str], None] | None) -> None:
        super().__init__(poll_seconds=HEARTBEAT_EVERY)
        self.job_id = job_id
        self.echo = echo
        self.state: dict[str, dict[str, int]] = {}
        self.progress = self._progress
        self.should_cancel = self._should_cancel

    def _progress(self, table: str, done: int, total: int) -> None:
        self.state[table] = {"done": done, "total": total}
        MergeJob.objects.filter(pk=self.job_id).update(progress=self.state, heartbeat=timezone.now())
        if self.echo:
            self.echo(f"{table}: {done} of {total} rows")

    def _should_cancel(self) -> bool:
        return MergeJob.objects.filter(pk=self.job_id, cancel_requested=True).exists()


def run_job(job_id: int, echo: Callable[[str], None] | None = None) -> MergeJob | None:
    """Run a pending job to its end. Returns the job, or None when it was not ours to run."""
    now = timezone.now()
    worker = f"{socket.gethostname()}:{os.getpid()}"
    if not _move(job_id, JobState.PENDING, state=JobState.VALIDATING, started=now, heartbeat=now, worker=worker):
        logger.warning("Merge job %s is not pending; this delivery is ignored.", job_id)
        return None
    job = MergeJob.objects.select_related("source_1", "source_2", "target").get(pk=job_id)
    with job_logging(job_id):
        try:
            _run(job, echo)
        except MergeCancelled as exc:
            logger.info("%s", exc)
            _move(job_id, RUNNING, state=JobState.CANCELLED, finished=timezone.now(), reason=str(exc))
        except MergeError as exc:
            logger.error("%s", exc)
            _move(job_id, RUNNING, state=JobState.FAILED, finished=timezone.now(), reason=str(exc))
        except Exception as exc:
            logger.exception("Unexpected error")
            _move(
                job_id,
                RUNNING | {JobState.VALIDATED},
                state=JobState.ERRORED,
                finished=timezone.now(),
                reason=f"Unexpected error: {type(exc).__name__}: {exc}",
                traceback=traceback.format_exc(),
            )
    job.refresh_from_db()
    return job


def _run(job: MergeJob, echo: Callable[[str], None] | None) -> None:
    position = MergeCheck.objects.filter(job=job).count()
    MergeCheck.objects.filter(job=job).delete()
    logger.info("Validating the selection: %s and %s into %s.", job.source_1, job.source_2, job.target)

    def on_check(outcome) -> None:
        nonlocal position
        MergeCheck.objects.create(
            job=job,
            position=position,
            name=outcome.name,
            subject=outcome.subject[:255],
            passed=outcome.passed,
            message=outcome.message,
            duration=outcome.duration,
        )
        position += 1
        MergeJob.objects.filter(pk=job.pk).update(heartbeat=timezone.now())
        if echo:
            echo(f"[{'PASS' if outcome.passed else 'FAIL'}] {outcome.name.label} {outcome.subject}: {outcome.message}")

    validator = Validator(job, on_check)
    validator.run()
    if not validator.passed:
        failed = [o for o in validator.outcomes if not o.passed]
        reason = f"{len(failed)} check(s) failed: " + "; ".join(f"{o.name.label} – {o.message}" for o in failed)
        logger.warning("Validation failed.")
        _move(job.pk, JobState.VALIDATING, state=JobState.VALIDATION_FAILED, finished=timezone.now(), reason=reason)
        return
    logger.info("Validation passed.")
    if job.kind != JobKind.MERGE:
        _move(job.pk, JobState.VALIDATING, state=JobState.VALIDATED, finished=timezone.now())
        return
    if not _move(job.pk, JobState.VALIDATING, state=JobState.MERGING, heartbeat=timezone.now()):
        return
    hooks = _JobHooks(job.pk, echo)
    logger.info("Merging with the %s method.", job.method)
    report = _merge(job, hooks)
    logger.info("Merge completed: %s rows written.", report.rows_written)
    _move(job.pk, JobState.MERGING, state=JobState.COMPLETED, finished=timezone.now(), report=report.as_dict())


def _merge(job: MergeJob, hooks: MergeHooks):
    databases = [job.source_1, job.source_2]
    if job.db_type == MergeDatabaseType.ORACLE:
        from dbmerge.engines import oracle

        return oracle.merge(
            oracle.database_settings(job.target), [oracle.database_settings(db) for db in databases], hooks, job.pk
        )
    from dbmerge.engines import postgres

    return postgres.merge(
        engine_database(job.target), [engine_database(db) for db in databases], job.method, hooks, job.pk
    )
