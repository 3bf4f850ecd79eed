"""Merge Preview through the pages and a real Celery worker: validate, preview (nothing
written), then merge; every figure of the preview equals the merge report's."""

from __future__ import annotations

import pytest
from auditlog.models import LogEntry
from django.urls import reverse

from dbmerge.choices import TERMINAL, JobKind, JobState
from dbmerge.engines import postgres as engine
from dbmerge.models import MergeJob
from dbmerge.preview import NO_ESTIMATE, estimate
from messaging.models import ExternalDatabase
from tests.conftest import wait_for
from tests.dbmerge.conftest import fill_generated
from tests.dbmerge.test_job_flow import add_form

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

# What a preview reports by nature differently from the merge (time, the flag, the estimate).
NOT_FIGURES = {"seconds", "rows_per_second", "preview", "estimate"}


def state_of(job_id: int) -> str:
    return MergeJob.objects.get(pk=job_id).state


def test_preview_shows_what_the_merge_then_does_figure_for_figure_and_writes_nothing(
    chat_db, operator_client, celery_worker
):
    a, b, c, d, target = (chat_db() for _ in range(5))
    fill_generated(a, 2000, rooms=6)
    fill_generated(b, 2000, rooms=6, offset=2000)
    engine.merge(target.engine, [a.engine, b.engine])  # the destination holds a merged history
    fill_generated(c, 2000, rooms=6)  # c repeats a: exact duplicates of rows already there
    fill_generated(d, 1500, rooms=8, offset=9000)
    entries = (c.external(), d.external(), target.external())
    before = target.rows()

    response = operator_client.post(reverse("dbmerge:mergejob_add"), {**add_form(*entries), "action": "preview"})
    job = MergeJob.objects.get()
    assert response.status_code == 302 and response["Location"] == job.get_absolute_url()
    assert job.kind == JobKind.PREVIEW
    wait_for(lambda: state_of(job.pk) in TERMINAL | {JobState.VALIDATED}, timeout=120, what="the preview")
    job.refresh_from_db()
    assert job.state == JobState.VALIDATED, job.reason
    assert target.rows() == before  # nothing written
    preview = job.preview
    assert preview["preview"] is True
    assert preview["estimate"] == {"seconds": None, "basis": NO_ESTIMATE}
    assert job.progress["tc_msgarchive"] == {"done": 3500, "total": 3500}  # live progress, as a merge

    status = operator_client.get(reverse("dbmerge:mergejob_status", args=[job.pk]))
    assert status.status_code == 286
    page = status.content.decode()
    assert "Merge preview" in page and "nothing was written" in page and NO_ESTIMATE in page
    assert "where they would move" in page and "how they would be combined" in page
    assert f"{preview['rows_written']} rows would be written" in page
    assert "Merge Selected Tables" in page  # a passed preview is a passed validation

    operator_client.post(reverse("dbmerge:mergejob_merge", args=[job.pk]))
    wait_for(lambda: state_of(job.pk) in TERMINAL, timeout=120, what="the merge")
    job.refresh_from_db()
    assert job.state == JobState.COMPLETED, job.reason
    report = job.report

    assert set(preview) - NOT_FIGURES == set(report) - NOT_FIGURES
    for figure in set(report) - NOT_FIGURES:
        assert preview[figure] == report[figure], figure
    # The figures are not empty: duplicates dropped, ids moved, rooms combined, rows held.
    assert report["tables"]["tc_msgarchive"]["duplicates_removed"] == 2000
    assert report["tables"]["tc_messages"]["duplicates_removed"] == 1000
    assert report["moved_ids"] and report["shared_rooms"]
    assert report["destination_rows"]["tc_msgarchive"] == 4000
    page = operator_client.get(job.get_absolute_url()).content.decode()
    assert "Merge preview" in page and "Merge report" in page


def test_the_estimate_comes_from_the_throughput_of_this_installations_completed_merges(chat_db):
    a, b, target = (chat_db().external() for _ in range(3))
    assert estimate(1000) == {"seconds": None, "basis": NO_ESTIMATE}
    # A merge of two empty databases measures nothing: still no estimate, and the page says why.
    MergeJob.objects.create(
        db_type="postgres",
        source_1=a,
        source_2=b,
        target=target,
        kind=JobKind.MERGE,
        state=JobState.COMPLETED,
        report={"rows_written": 0, "seconds": 0.1},
    )
    assert estimate(1000) == {"seconds": None, "basis": NO_ESTIMATE}
    for rows, seconds in ((30_000, 2.0), (10_000, 2.0)):
        MergeJob.objects.create(
            db_type="postgres",
            source_1=a,
            source_2=b,
            target=target,
            kind=JobKind.MERGE,
            state=JobState.COMPLETED,
            report={"rows_written": rows, "seconds": seconds},
        )
    assert estimate(50_000) == {
        "seconds": 5.0,
        "basis": "10,000 rows/s measured over the last 2 completed merges of this installation.",
    }


def test_a_super_administrator_deletes_a_finished_job_its_report_stays_in_the_audit_trail_and_its_databases_can_go(
    chat_db, super_client, operator_client
):
    a, b, target = (chat_db().external() for _ in range(3))
    job = MergeJob.objects.create(
        db_type="postgres",
        source_1=a,
        source_2=b,
        target=target,
        kind=JobKind.MERGE,
        state=JobState.COMPLETED,
        report={"rows_written": 8, "seconds": 0.5, "tables": {"tc_msgarchive": {"written": 8}}},
    )
    running = MergeJob.objects.create(
        db_type="postgres", source_1=b, source_2=a, target=target, kind=JobKind.MERGE, state=JobState.MERGING
    )
    delete_url = reverse("dbmerge:mergejob_delete", args=[job.pk])

    # The databases a job names cannot be deleted while the job exists.
    response = super_client.post(reverse("messaging:externaldatabase_delete", args=[a.pk]), follow=True)
    assert "cannot be deleted while these depend on it" in response.content.decode()
    # Operators do not delete jobs; a running job is not deleted.
    assert operator_client.post(delete_url).status_code == 403
    assert 'id="delete-job"' not in operator_client.get(job.get_absolute_url()).content.decode()
    response = super_client.post(reverse("dbmerge:mergejob_delete", args=[running.pk]), follow=True)
    assert "only a job that is not pending or running can be deleted" in response.content.decode()
    assert MergeJob.objects.filter(pk=running.pk).exists()
    running.delete()

    assert 'id="delete-job"' in super_client.get(job.get_absolute_url()).content.decode()
    assert "Delete Merge job" in super_client.get(delete_url).content.decode()
    response = super_client.post(delete_url, follow=True)
    assert f"Merge job {job.pk} deleted; its report is kept in the audit trail." in response.content.decode()
    assert not MergeJob.objects.filter(pk=job.pk).exists()

    entry = LogEntry.objects.get(object_pk=str(job.pk), action=LogEntry.Action.DELETE)
    assert entry.serialized_data["fields"]["report"] == job.report
    assert entry.serialized_data["fields"]["state"] == JobState.COMPLETED

    response = super_client.post(reverse("messaging:externaldatabase_delete", args=[a.pk]), follow=True)
    assert response.status_code == 200
    assert not ExternalDatabase.objects.filter(pk=a.pk).exists()
