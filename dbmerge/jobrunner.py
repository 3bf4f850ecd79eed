"""The one runner of a merge job's life cycle: claim, validate, merge, finish.

Called by the Celery task and by ``manage.py merge_external_databases`` alike. Every state
change is a conditional update, so a redelivered message or a second worker never runs a
job twice, and a job whose worker died is recognised by its stale heartbeat: a thread of the
runner writes it for as long as the runner holds the job, whatever the merge is doing.
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

from celery.exceptions import SoftTimeLimitExceeded
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from dbmerge.choices import RUNNING, JobKind, JobState, MergeDatabaseType
from dbmerge.engines import MergeCancelled, MergeError, MergeHooks
from dbmerge.models import MergeCheck, MergeJob, MergeLogEntry
from dbmerge.validation import Validator, engine_database

logger = logging.getLogger("dbmerge.job")

# The runner writes the heartbeat about every second while it holds a job; a job whose
# heartbeat is older than this lost its worker.
HEARTBEAT_EVERY = 1.0
HEARTBEAT_STALE_AFTER = timedelta(seconds=60)
WORKER_LOST_REASON = (
    "The worker running this job stopped (no heartbeat for {seconds} s). The destination was left as it was, "
    "because the merge commits only when it completes; run the merge again."
)
TIME_LIMIT_REASON = "The job ran past its time limit{limit}; the destination was left as it was."


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
        except SoftTimeLimitExceeded:
            raise  # the time limit may strike while a line is stored; it must still end the job
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


class Heartbeat(threading.Thread):
    """Writes the job's heartbeat every ``every`` seconds until stopped, on its own database
    connection, independent of progress: one dblink ``INSERT ... SELECT`` of a big table or
    one set-based step of the merge reports nothing for longer than the stale job check waits
    (AWX keeps its instance heartbeat the same way, apart from the work).

    It is also the cancel watch: when Cancel was pressed it interrupts the merge through
    ``hooks`` (cancelling the statement each of the engine's connections runs), every beat
    until the job ends, so a Cancel is honoured within about ``every`` seconds whatever the
    merge is doing."""

    def __init__(self, job_id: int, every: float, hooks: MergeHooks | None = None) -> None:
        super().__init__(name=f"merge-job-{job_id}-heartbeat", daemon=True)
        self.job_id = job_id
        self.every = every
        self.hooks = hooks
        self.stopped = threading.Event()

    def run(self) -> None:
        try:
            while not self.stopped.wait(self.every):
                running = MergeJob.objects.filter(pk=self.job_id, state__in=RUNNING)
                try:
                    beating = running.update(heartbeat=timezone.now())
                except DatabaseError as exc:  # a busy config database: write it next time
                    logger.warning("Merge job %s: heartbeat not written: %s", self.job_id, exc)
                    beating = True
                if not beating:  # no longer running: nothing left to vouch for
                    return
                # Read apart from the write: a config DB too busy to take the heartbeat can
                # still be read, and a Cancel must not wait for the next beat that is written.
                if self.hooks is not None and self._cancel_requested(running):
                    self.hooks.interrupt()
        finally:
            connection.close()  # this thread's own connection

    def _cancel_requested(self, running) -> bool:
        try:
            return running.filter(cancel_requested=True).exists()
        except DatabaseError as exc:
            logger.warning("Merge job %s: Cancel not read: %s", self.job_id, exc)
            return False

    def stop(self) -> None:
        self.stopped.set()
        self.join()


@contextmanager
def heartbeat(job_id: int, hooks: MergeHooks | None = None) -> Iterator[None]:
    beat = Heartbeat(job_id, HEARTBEAT_EVERY, hooks)
    beat.start()
    try:
        yield
    finally:
        beat.stop()


def _limit_words(seconds: float) -> str:
    seconds = int(seconds)
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{seconds // 3600} hours"
    if seconds >= 60 and seconds % 60 == 0:
        return f"{seconds // 60} minutes"
    return f"{seconds} s"


def move_job(job_id: int, from_states: set | JobState, **fields) -> bool:
    """Update the job only if it is still in one of ``from_states``; True if it was."""
    states = {from_states} if isinstance(from_states, str) else from_states
    return MergeJob.objects.filter(pk=job_id, state__in=states).update(**fields) == 1


def request_cancel(job: MergeJob) -> bool:
    """Cancel: a pending job ends at once, a running one when its worker next checks."""
    if move_job(
        job.pk,
        JobState.PENDING,
        state=JobState.CANCELLED,
        finished=timezone.now(),
        reason="Cancelled before a worker started it.",
    ):
        return True
    return MergeJob.objects.filter(pk=job.pk, state__in=RUNNING).update(cancel_requested=True) == 1


def delete_finished(job: MergeJob) -> bool:
    """Delete a job that is not pending or running (False otherwise). Its report stays in the
    audit trail (``dbmerge.audit``), and the databases it named can be deleted afterwards."""
    with transaction.atomic():
        current = MergeJob.objects.select_for_update().filter(pk=job.pk).first()
        if current is None or current.is_active:
            return False
        current.delete()
    return True


def mark_stale_jobs(stale_after: timedelta | None = None) -> int:
    """Fail the running jobs whose worker stopped writing the heartbeat; return how many."""
    stale_after = stale_after or HEARTBEAT_STALE_AFTER
    cutoff = timezone.now() - stale_after
    stale = MergeJob.objects.filter(state__in=RUNNING, heartbeat__lt=cutoff)
    # Pages call this on every view: look first, so a page takes the config DB's write lock
    # (SQLite: one writer at a time, behind every merge's progress writes) only to fail a job.
    if not stale.exists():
        return 0
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
        self.still_ours = self._still_ours

    def _progress(self, table: str, done: int, total: int) -> None:
        self.state[table] = {"done": done, "total": total}
        MergeJob.objects.filter(pk=self.job_id).update(progress=self.state)
        if self.echo:
            self.echo(f"{table}: {done} of {total} rows")

    def _should_cancel(self) -> bool:
        return MergeJob.objects.filter(pk=self.job_id, cancel_requested=True).exists()

    def _still_ours(self) -> bool:
        return MergeJob.objects.filter(pk=self.job_id, state=JobState.MERGING).exists()


def run_job(job_id: int, echo: Callable[[str], None] | None = None, time_limit: float | None = None) -> MergeJob | None:
    """Run a pending job to its end. Returns the job, or None when it was not ours to run.

    ``time_limit`` is the soft time limit (seconds) of the Celery task running it, named in
    the reason when the limit ends the job.
    """
    now = timezone.now()
    worker = f"{socket.gethostname()}:{os.getpid()}"
    if not move_job(
        job_id,
        JobState.PENDING,
        state=JobState.VALIDATING,
        started=now,
        heartbeat=now,
        worker=worker,
        cancel_requested=False,
    ):
        logger.warning("Merge job %s is not pending; this delivery is ignored.", job_id)
        return None
    job = MergeJob.objects.select_related("source_1", "source_2", "target").get(pk=job_id)
    hooks = _JobHooks(job_id, echo)
    with heartbeat(job_id, hooks), job_logging(job_id):
        try:
            _run(job, hooks, echo)
        except SoftTimeLimitExceeded:
            # An Exception subclass: caught before the catch-all, or the job would end Errored.
            reason = TIME_LIMIT_REASON.format(limit=f" of {_limit_words(time_limit)}" if time_limit else "")
            logger.error("%s", reason)
            move_job(job_id, RUNNING, state=JobState.FAILED, finished=timezone.now(), reason=reason)
        except MergeCancelled as exc:
            logger.info("%s", exc)
            move_job(job_id, RUNNING, state=JobState.CANCELLED, finished=timezone.now(), reason=str(exc))
        except MergeError as exc:
            logger.error("%s", exc)
            move_job(job_id, RUNNING, state=JobState.FAILED, finished=timezone.now(), reason=str(exc))
        except Exception as exc:
            logger.exception("Unexpected error")
            move_job(
                job_id,
                RUNNING | {JobState.VALIDATED},
                state=JobState.ERRORED,
                finished=timezone.now(),
                reason=f"Unexpected error: {type(exc).__name__}: {exc}",
                traceback=traceback.format_exc(),
            )
    job.refresh_from_db()
    return job


def _run(job: MergeJob, hooks: _JobHooks, echo: Callable[[str], None] | None) -> None:
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
            warning=outcome.warning,
            message=outcome.message,
            duration=outcome.duration,
        )
        position += 1
        if echo:
            result = "FAIL" if not outcome.passed else "WARN" if outcome.warning else "PASS"
            echo(f"[{result}] {outcome.name.label} {outcome.subject}: {outcome.message}")

    validator = Validator(job, on_check, hooks)
    validator.run()
    if not validator.passed:
        failed = [o for o in validator.outcomes if not o.passed]
        # Each message is a sentence; joined with "; ", their own full stops would read ".;".
        reasons = "; ".join(f"{o.name.label} – {o.message.rstrip('.')}" for o in failed)
        reason = f"{len(failed)} check(s) failed: {reasons}."
        logger.warning("Validation failed.")
        move_job(job.pk, JobState.VALIDATING, state=JobState.VALIDATION_FAILED, finished=timezone.now(), reason=reason)
        return
    logger.info("Validation passed.")
    if job.kind == JobKind.PREVIEW:
        _preview(job, hooks)
        return
    if job.kind != JobKind.MERGE:
        move_job(job.pk, JobState.VALIDATING, state=JobState.VALIDATED, finished=timezone.now())
        return
    if not move_job(job.pk, JobState.VALIDATING, state=JobState.MERGING, heartbeat=timezone.now()):
        return
    logger.info("Merging with the %s method.", job.method)
    report = _merge(job, hooks)
    logger.info("Merge completed: %s rows written.", report.rows_written)
    if not move_job(
        job.pk, JobState.MERGING, state=JobState.COMPLETED, finished=timezone.now(), report=report.as_dict()
    ):
        # Only in the instant between the engine's last look and its commit.
        logger.error("Merge job %s was given up while its merge committed; its state was left as it was.", job.pk)


def _preview(job: MergeJob, hooks: MergeHooks) -> None:
    """Preview the validated merge, store what it would do, and leave the job Validated."""
    from dbmerge.preview import preview_job

    if not move_job(job.pk, JobState.VALIDATING, state=JobState.PREVIEWING, heartbeat=timezone.now()):
        return
    logger.info("Previewing the merge (nothing is written).")
    preview = preview_job(job, hooks)
    logger.info("Preview completed: the merge would write %s rows.", preview["rows_written"])
    move_job(job.pk, JobState.PREVIEWING, state=JobState.VALIDATED, finished=timezone.now(), preview=preview)


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
