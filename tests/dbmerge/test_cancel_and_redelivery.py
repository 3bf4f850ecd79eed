"""Cancel inside a long statement, and a message redelivered after its worker was killed:
real Celery workers, real Redis, real PostgreSQL databases large enough for long statements."""

from __future__ import annotations

import json
import os
import signal
import uuid

import pytest
from django.conf import settings
from django.urls import reverse
from kombu import Connection

from dbmerge import jobrunner as runner
from dbmerge.choices import TERMINAL, JobState
from dbmerge.models import MergeJob
from dbmerge.tasks import run_merge_job
from tests.conftest import celery_process, wait_for, worker_arguments, worker_log
from tests.dbmerge.conftest import fill_generated
from tests.dbmerge.test_engine_postgres import has_merge_record

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

ROWS = 400_000
# The cancel test's sources: enough that the archive's duplicate check, the statement it
# cancels, runs for seconds even on a quiet machine (the heartbeat reads Cancel once a second;
# at 400,000 rows the staged check could end before the Cancel reached it).
LONGEST_STATEMENT_ROWS = 1_000_000


def state_of(job_id: int) -> str:
    return MergeJob.objects.get(pk=job_id).state


def merge_job(a, b, target) -> MergeJob:
    entries = (a.external(), b.external(), target.external())
    return MergeJob.objects.create(
        db_type="postgres",
        source_1=entries[0],
        source_2=entries[1],
        target=entries[2],
        database_name=target.name,
        kind="merge",
    )


def running_statement(database, pattern: str, at_least: float = 1.0) -> str | None:
    """The text of a statement of ``database`` matching ``pattern`` (SQL LIKE) that has been
    running (state active) for ``at_least`` seconds, as pg_stat_activity shows it."""
    with database.factory.connect(database.name, autocommit=True) as conn:
        row = conn.execute(
            "SELECT query FROM pg_stat_activity WHERE datname = %s AND state = 'active' AND query LIKE %s "
            "AND now() - query_start > make_interval(secs => %s)",
            (database.name, pattern, at_least),
        ).fetchone()
    return row[0] if row else None


def test_cancel_inside_the_longest_statement_ends_the_job_cancelled_and_the_destination_untouched(
    chat_db, operator_client, celery_worker
):
    """The slowest phase of this merge is the archive's duplicate check: source 2 is a copy of
    source 1, so every archive row it brings collides and is an exact duplicate; they are
    staged and compared with the destination's in one INSERT ... WHERE NOT EXISTS, a statement
    of many seconds on these data."""
    a, b, target = chat_db(), chat_db(), chat_db()
    fill_generated(a, LONGEST_STATEMENT_ROWS)
    fill_generated(b, LONGEST_STATEMENT_ROWS)
    target.room("keep@conf.example.com")
    before = target.rows()
    job = merge_job(a, b, target)
    run_merge_job.delay(job.pk)

    statement = wait_for(
        lambda: running_statement(target, "INSERT INTO tc_msgarchive % NOT EXISTS %", at_least=0.2),
        timeout=600,
        interval=0.05,
        what="the archive's duplicate check to be running",
    )
    assert "imp_stage_archive" in statement
    response = operator_client.post(reverse("dbmerge:mergejob_cancel", args=[job.pk]))
    assert response.status_code == 302

    wait_for(lambda: state_of(job.pk) in TERMINAL, timeout=60, what="the job to end")
    job.refresh_from_db()
    assert job.state == JobState.CANCELLED, (job.reason, worker_log(celery_worker))
    assert job.reason == "Cancelled by the administrator; the destination was left as it was."
    # The statement itself was stopped, not merely the next one refused.
    stopped = job.log_entries.filter(message__startswith="Cancel stopped the statement running in").get()
    assert "INSERT INTO tc_msgarchive" in stopped.message
    assert running_statement(target, "%", at_least=0) is None  # nothing left running there
    assert target.rows() == before
    assert not has_merge_record(target)
    page = operator_client.get(job.get_absolute_url()).content.decode()
    assert "Cancelled" in page and "cancelling…" not in page


def test_cancel_while_validating_waits_for_no_lock_and_ends_the_job_cancelled(chat_db, operator_client, celery_worker):
    from tests.dbmerge.test_job_flow import holding_lock, waiting_for_a_lock

    a, b, target = chat_db(), chat_db(), chat_db()
    fill_generated(a, 100)
    fill_generated(b, 100)
    job = merge_job(a, b, target)
    # Validation measures each source's TC tables: an exclusive lock on one makes it wait.
    with holding_lock(a, "LOCK TABLE tc_timelog IN ACCESS EXCLUSIVE MODE"):
        run_merge_job.delay(job.pk)
        wait_for(lambda: waiting_for_a_lock(a), timeout=60.0, what="the validation to wait for source 1")
        assert state_of(job.pk) == JobState.VALIDATING
        operator_client.post(reverse("dbmerge:mergejob_cancel", args=[job.pk]))
        # Ends while the lock is still held: the waiting statement was cancelled.
        wait_for(lambda: state_of(job.pk) in TERMINAL, timeout=30, what="the job to end")
        assert not waiting_for_a_lock(a)
    job.refresh_from_db()
    assert job.state == JobState.CANCELLED, job.reason
    assert job.reason == "Cancelled by the administrator; the destination was left as it was."


# --- A message redelivered after its worker was killed --------------------------------------


def unacknowledged(prefix: str) -> list[dict]:
    """The messages Redis holds as delivered but not acknowledged, under ``prefix``."""
    with Connection(settings.CELERY_BROKER_URL) as conn:
        client = conn.default_channel.client
        return [json.loads(value)[0] for value in client.hvals(f"{prefix}unacked")]


def test_a_message_redelivered_after_its_worker_was_killed_is_acknowledged_and_does_nothing(
    chat_db, transactional_db, tmp_path, monkeypatch
):
    prefix = f"imp-test-{uuid.uuid4().hex[:8]}-"
    env = {"CELERY_VISIBILITY_TIMEOUT": "3", "CELERY_BROKER_KEYPREFIX": prefix}
    options = {**settings.CELERY_BROKER_TRANSPORT_OPTIONS, "visibility_timeout": 3, "global_keyprefix": prefix}
    a, b, target = chat_db(), chat_db(), chat_db()
    fill_generated(a, ROWS)
    fill_generated(b, ROWS, offset=ROWS)
    before = target.rows()
    job = merge_job(a, b, target)

    with celery_process(tmp_path, "worker-1", *worker_arguments("solo"), env=env) as first:
        with Connection(settings.CELERY_BROKER_URL, transport_options=options) as conn:
            task_id = run_merge_job.apply_async((job.pk,), connection=conn).id
        wait_for(
            lambda: MergeJob.objects.get(pk=job.pk).progress.get("tc_messages", {}).get("done", 0) > 0,
            timeout=300,
            what="the merge to copy rows",
        )
        os.kill(first.pid, signal.SIGKILL)
        first.wait(timeout=10)
    assert [m["headers"]["id"] for m in unacknowledged(prefix)] == [task_id]  # taken, never acknowledged

    # The stale job check fails the job whose worker died.
    monkeypatch.setattr(runner, "HEARTBEAT_STALE_AFTER", runner.timedelta(seconds=2))
    wait_for(lambda: runner.mark_stale_jobs() and True, timeout=30, interval=0.5, what="the stale heartbeat")
    job.refresh_from_db()
    assert job.state == JobState.FAILED
    finished = job.finished

    with celery_process(tmp_path, "worker-2", *worker_arguments("solo"), env=env) as second:
        ignored = f"Merge job {job.pk} is not pending; this delivery is ignored."
        wait_for(lambda: ignored in worker_log(second), timeout=60, what="the redelivered message")
        wait_for(lambda: not unacknowledged(prefix), timeout=30, what="the redelivery to be acknowledged")
        assert f"Task dbmerge.run_merge_job[{task_id}] succeeded" in worker_log(second, tail=20000)

    job.refresh_from_db()
    assert (job.state, job.finished) == (JobState.FAILED, finished)
    assert job.reason.startswith("The worker running this job stopped")
    assert target.rows() == before
    assert not has_merge_record(target)
    with Connection(settings.CELERY_BROKER_URL) as conn:
        assert conn.default_channel.client.llen(f"{prefix}{settings.CELERY_TASK_DEFAULT_QUEUE}") == 0
