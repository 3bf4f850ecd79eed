"""Merge jobs end to end through a real Celery worker subprocess, real Redis and real
PostgreSQL databases: validate, merge, cancel, a worker killed mid-merge, a second merge."""

from __future__ import annotations

import os
import signal
from contextlib import contextmanager
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from dbmerge import jobrunner
from dbmerge.choices import TERMINAL, JobState
from dbmerge.engines.base import NO_LONGER_OURS
from dbmerge.models import MergeJob
from dbmerge.tasks import run_merge_job
from messaging.models import PersistentChatAssignment
from tests.conftest import wait_for, worker_log
from tests.dbmerge.conftest import fill_generated, tc_stopped_on
from tests.dbmerge.test_engine_postgres import fill_two_sources, has_merge_record

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def state_of(job_id: int) -> str:
    return MergeJob.objects.get(pk=job_id).state


def add_form(a, b, target) -> dict:
    return {
        "db_type": "postgres",
        "source_1": a.pk,
        "source_2": b.pk,
        "target": target.pk,
        "feature_tables": ["tc"],
        "method": "copy",
    }


@pytest.fixture
def three(chat_db, build):
    """Two filled sources and an empty destination, each an External Database, and the two
    nodes of a redundancy group that used the sources, reporting TC stopped."""
    a, b, target = chat_db(), chat_db(), chat_db()
    fill_two_sources(a, b)
    entries = (a.external(), b.external(), target.external())
    cluster = build.cluster()
    for name, entry in (("imp-1a", entries[0]), ("imp-1b", entries[1])):
        node = build.node(name, cluster)
        PersistentChatAssignment.objects.create(node=node, database=entry)
        tc_stopped_on(node)
    return (a, b, target), entries


def test_operator_validates_then_merges_and_sees_report_and_next_steps(three, operator_client, celery_worker):
    (_a, _b, target), entries = three
    response = operator_client.post(reverse("dbmerge:mergejob_add"), {**add_form(*entries), "action": "validate"})
    job = MergeJob.objects.get()
    assert response.status_code == 302 and response["Location"] == job.get_absolute_url()
    wait_for(lambda: state_of(job.pk) not in (JobState.PENDING, JobState.VALIDATING), 60.0, "validation")
    job.refresh_from_db()
    assert job.state == JobState.VALIDATED, job.reason

    page = operator_client.get(job.get_absolute_url()).content.decode()
    assert "Validated" in page and "Merge Selected Tables" in page
    assert (
        "Cisco requires at least one persistent room in the destination; imp-admin accepts an empty destination" in page
    )
    assert "Text Conference Manager is stopped on imp-1a" in page

    response = operator_client.post(reverse("dbmerge:mergejob_add"), {**add_form(*entries), "action": "merge"})
    assert response.status_code == 302
    wait_for(lambda: state_of(job.pk) in (JobState.COMPLETED, JobState.FAILED, JobState.ERRORED), 60.0, "merge")
    job.refresh_from_db()
    assert job.state == JobState.COMPLETED, job.reason

    status = operator_client.get(reverse("dbmerge:mergejob_status", args=[job.pk]))
    assert status.status_code == 286  # htmx stops polling
    page = status.content.decode()
    assert "Next steps" in page and reverse("topology:controlcenter_network") in page
    assert reverse("messaging:chatsettings_edit") in page
    assert "lobby@conf.example.com" in page  # the shared room is listed in the report
    assert [r[0] for r in target.rows()["tc_msgarchive"]] == [1, 2, 3, 4, 5, 6, 7, 8]
    assert job.progress["tc_msgarchive"] == {"done": 8, "total": 8}
    assert job.log_entries.filter(message__startswith="Merge completed").exists()
    assert job.started and job.finished and job.heartbeat


def test_running_the_same_merge_again_is_refused_by_the_destination_record(three, operator_client, celery_worker):
    (_a, _b, target), entries = three
    for attempt in range(2):
        operator_client.post(reverse("dbmerge:mergejob_add"), {**add_form(*entries), "action": "validate"})
        job = MergeJob.objects.order_by("-pk").first()
        wait_for(lambda job=job: state_of(job.pk) not in (JobState.PENDING, JobState.VALIDATING), 60.0, "validation")
        if attempt == 0:
            operator_client.post(reverse("dbmerge:mergejob_merge", args=[job.pk]))
            wait_for(lambda job=job: state_of(job.pk) == JobState.COMPLETED, 60.0, "first merge")
    after_first = target.rows()
    job.refresh_from_db()
    assert job.state == JobState.VALIDATION_FAILED
    check = job.checks.get(name="not_merged_before")
    assert not check.passed
    assert "already holds the merge of these two sources" in check.message
    assert job.reason == f"1 check(s) failed: Not merged before – {check.message}"
    assert operator_client.post(reverse("dbmerge:mergejob_merge", args=[job.pk])).status_code == 302
    assert state_of(job.pk) == JobState.VALIDATION_FAILED
    assert target.rows() == after_first


def _start_big_merge(chat_db, rows: int = 400_000):
    a, b, target = chat_db(), chat_db(), chat_db()
    fill_generated(a, rows)
    fill_generated(b, rows, offset=rows)
    target.room("keep@conf.example.com")
    entries = (a.external(), b.external(), target.external())
    job = MergeJob.objects.create(
        db_type="postgres",
        source_1=entries[0],
        source_2=entries[1],
        target=entries[2],
        database_name=target.name,
        kind="merge",
    )
    run_merge_job.delay(job.pk)
    return target, job


def _copying(job_id: int) -> bool:
    job = MergeJob.objects.get(pk=job_id)
    return job.state == JobState.MERGING and job.progress.get("tc_messages", {}).get("done", 0) > 0


def test_cancel_stops_the_merge_between_batches_and_leaves_the_destination(chat_db, operator_client, celery_worker):
    target, job = _start_big_merge(chat_db)
    before = target.rows()
    wait_for(lambda: _copying(job.pk), 60.0, "copying")

    response = operator_client.post(reverse("dbmerge:mergejob_cancel", args=[job.pk]))
    assert response.status_code == 302
    wait_for(lambda: state_of(job.pk) not in (JobState.MERGING,), 60.0, "cancel")
    job.refresh_from_db()
    assert job.state == JobState.CANCELLED
    assert job.reason == "Cancelled by the administrator; the destination was left as it was."
    assert target.rows() == before


def test_a_worker_killed_mid_merge_leaves_the_job_failed_and_the_destination_untouched(
    chat_db, operator_client, celery_worker, monkeypatch
):
    target, job = _start_big_merge(chat_db)
    before = target.rows()
    wait_for(lambda: _copying(job.pk), 60.0, "copying")

    os.kill(celery_worker.pid, signal.SIGKILL)
    celery_worker.wait(timeout=10)
    monkeypatch.setattr(jobrunner, "HEARTBEAT_STALE_AFTER", jobrunner.timedelta(seconds=3))
    wait_for(
        lambda: operator_client.get(job.get_absolute_url()) and state_of(job.pk) == JobState.FAILED,
        60.0,
        "the stale heartbeat to be noticed",
        interval=0.5,
    )
    job.refresh_from_db()
    assert job.reason.startswith("The worker running this job stopped (no heartbeat for 3 s).")
    page = operator_client.get(job.get_absolute_url()).content.decode()
    assert "The worker running this job stopped" in page
    assert wait_for(lambda: target.rows() == before, 30, "the destination to be as before")


def test_celery_beat_fails_a_job_whose_worker_stopped_without_anyone_opening_a_page(chat_db, celery_beat):
    from django.utils import timezone

    a, b, target = (chat_db().external() for _ in range(3))
    now = timezone.now()

    def merging(heartbeat):
        return MergeJob.objects.create(
            db_type="postgres",
            source_1=a,
            source_2=b,
            target=target,
            database_name=target.database_name,
            kind="merge",
            state=JobState.MERGING,
            started=now - jobrunner.timedelta(minutes=10),
            heartbeat=heartbeat,
            worker="a-host-that-died:4242",
        )

    # As a worker killed mid-merge leaves its job: Merging, heartbeat written 5 minutes ago.
    orphan = merging(now - jobrunner.timedelta(minutes=5))
    # A job whose worker is alive: its heartbeat stays fresh however long the wait below takes.
    alive = merging(now + jobrunner.timedelta(minutes=5))

    wait_for(lambda: state_of(orphan.pk) == JobState.FAILED, 60, "beat's stale job check", interval=0.5)

    orphan.refresh_from_db()
    assert orphan.reason == (
        "The worker running this job stopped (no heartbeat for 60 s). The destination was left as it was, "
        "because the merge commits only when it completes; run the merge again."
    )
    assert orphan.finished is not None
    assert state_of(alive.pk) == JobState.MERGING


# --- A worker blocked in one long statement: heartbeat, a job given up, the time limit -----

MERGED_ARCHIVE_IDS = [1, 2, 3, 4, 5, 6, 7, 8]


@contextmanager
def holding_lock(database, statement: str):
    """Another session of ``database`` holds the lock ``statement`` takes until the block ends:
    a merge or validation needing a conflicting lock waits in one statement meanwhile."""
    with database.factory.connect(database.name) as conn:
        conn.execute(statement)
        try:
            yield
        finally:
            conn.rollback()


def waiting_for_a_lock(database) -> bool:
    with database.factory.connect(database.name, autocommit=True) as conn:
        waiting = conn.execute(
            "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = %s AND wait_event_type = 'Lock'", (database.name,)
        ).fetchone()[0]
    return waiting > 0


def merge_job(entries) -> MergeJob:
    source_1, source_2, target = entries
    return MergeJob.objects.create(
        db_type="postgres",
        source_1=source_1,
        source_2=source_2,
        target=target,
        database_name=target.database_name,
        kind="merge",
    )


def ended(job_id: int) -> bool:
    return state_of(job_id) in TERMINAL


# The merge locks the destination's TC tables (SHARE ROW EXCLUSIVE) before copying a row;
# a SHARE lock held by another session makes it wait, for up to its lock timeout (10 s).
LOCK_DESTINATION = "LOCK TABLE tc_msgarchive IN SHARE MODE"


def test_a_merge_waiting_in_one_long_statement_keeps_its_heartbeat_fresh_and_is_not_marked_stale(three, celery_worker):
    (_a, _b, target), entries = three
    job = merge_job(entries)
    stale_after = timedelta(seconds=2)
    with holding_lock(target, LOCK_DESTINATION):
        run_merge_job.delay(job.pk)
        wait_for(lambda: waiting_for_a_lock(target), 60.0, "the merge to wait for the destination's lock")
        blocked_since = timezone.now()

        def heartbeat_past(moment) -> bool:
            assert jobrunner.mark_stale_jobs(stale_after=stale_after) == 0
            return MergeJob.objects.get(pk=job.pk).heartbeat > moment

        # Twice the stale period in one statement, without a progress report: the stale job
        # check never fires while the worker's heartbeat moves on.
        wait_for(
            lambda: heartbeat_past(blocked_since + 2 * stale_after),
            60.0,
            "the heartbeat to move on for twice the stale period while the merge waits",
            interval=0.2,
        )
        assert waiting_for_a_lock(target)
        job.refresh_from_db()
        assert job.state == JobState.MERGING
        assert job.progress == {}  # nothing reported meanwhile
        assert job.heartbeat > blocked_since + stale_after
    wait_for(lambda: ended(job.pk), 60.0, "the merge to end")
    job.refresh_from_db()
    assert job.state == JobState.COMPLETED, job.reason
    assert [r[0] for r in target.rows()["tc_msgarchive"]] == MERGED_ARCHIVE_IDS


def test_a_job_marked_failed_mid_merge_is_not_committed_and_the_destination_stays_as_it_was(
    three, celery_worker, operator_client
):
    (_a, _b, target), entries = three
    job = merge_job(entries)
    before = target.rows()
    with holding_lock(target, LOCK_DESTINATION):
        run_merge_job.delay(job.pk)
        wait_for(lambda: waiting_for_a_lock(target), 60.0, "the merge to wait for the destination's lock")
        # The stale job check, with a period shorter than the heartbeat's, gives the job up.
        assert jobrunner.mark_stale_jobs(stale_after=timedelta(milliseconds=1)) == 1
    wait_for(
        lambda: job.log_entries.filter(level="ERROR", message=NO_LONGER_OURS).exists(),
        60.0,
        "the worker to refuse the commit",
    )
    job.refresh_from_db()
    assert job.state == JobState.FAILED
    assert job.reason.startswith("The worker running this job stopped")
    assert target.rows() == before
    assert not has_merge_record(target)
    page = operator_client.get(job.get_absolute_url()).content.decode()
    assert "Failed" in page and "so the merge was not committed; the destination was left as it was." in page


def test_a_second_delivery_of_a_claimed_job_does_nothing(three, celery_worker):
    (_a, _b, target), entries = three
    job = merge_job(entries)
    run_merge_job.delay(job.pk)
    run_merge_job.delay(job.pk)  # as a redelivered message (acks_late) arrives
    wait_for(lambda: ended(job.pk), 60.0, "the merge to end")
    wait_for(
        lambda: f"Merge job {job.pk} is not pending; this delivery is ignored." in worker_log(celery_worker),
        60.0,
        "the second delivery",
    )
    job.refresh_from_db()
    assert job.state == JobState.COMPLETED, job.reason
    finished, checks = job.finished, list(job.checks.values_list("position", "passed"))

    assert jobrunner.run_job(job.pk) is None  # a third, from this process

    job.refresh_from_db()
    assert (job.state, job.finished) == (JobState.COMPLETED, finished)
    assert list(job.checks.values_list("position", "passed")) == checks  # validated once
    assert all(passed for _position, passed in checks)
    assert job.log_entries.filter(message__startswith="Validating the selection").count() == 1
    assert [r[0] for r in target.rows()["tc_msgarchive"]] == MERGED_ARCHIVE_IDS


def test_a_merge_past_its_soft_time_limit_ends_failed_and_leaves_the_destination(three, prefork_worker):
    (_a, _b, target), entries = three
    job = merge_job(entries)
    before = target.rows()
    # The merge waits for the lock until the soft time limit (4 s) strikes, before its own
    # lock timeout (10 s) would.
    with holding_lock(target, LOCK_DESTINATION):
        run_merge_job.apply_async((job.pk,), soft_time_limit=4, time_limit=120)
        wait_for(lambda: ended(job.pk), 60, "the time limit to end the job")
    job.refresh_from_db()
    assert job.state == JobState.FAILED, (job.reason, worker_log(prefork_worker))
    assert job.reason == "The job ran past its time limit of 4 s; the destination was left as it was."
    assert job.traceback == ""
    assert target.rows() == before
    assert not has_merge_record(target)
