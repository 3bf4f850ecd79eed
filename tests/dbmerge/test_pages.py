"""External Database Jobs pages: permissions per persona, Find and List, the Add form's
errors (nothing written), Merge only after validation, the live status answer."""

from __future__ import annotations

import re

import pytest
from django.conf import settings
from django.urls import reverse

from dbmerge.choices import JobKind, JobState
from dbmerge.models import MergeJob
from dbmerge.validation import MSSQL_REFUSED
from messaging.models import DatabaseType, ExternalDatabase

pytestmark = pytest.mark.django_db


def external(name: str, db_type: str = DatabaseType.POSTGRES) -> ExternalDatabase:
    entry = ExternalDatabase(database_name=name, db_type=db_type, username="u", hostname="db.example.com", port=5432)
    entry.set_password("pw")
    entry.save()
    return entry


@pytest.fixture
def entries():
    return external("tcnode1"), external("tcnode2"), external("tcmerged")


@pytest.fixture
def job(entries):
    return MergeJob.objects.create(
        db_type="postgres", source_1=entries[0], source_2=entries[1], target=entries[2], database_name="tcmerged"
    )


def form(entries, **changes) -> dict:
    data = {
        "db_type": "postgres",
        "source_1": entries[0].pk,
        "source_2": entries[1].pk,
        "target": entries[2].pk,
        "feature_tables": ["tc"],
        "method": "copy",
        "action": "validate",
    }
    return {**data, **changes}


@pytest.mark.parametrize(
    ("persona", "list_status", "add_status"),
    [("anonymous", 302, 302), ("read_only", 200, 403), ("operator", 200, 302), ("super_admin", 200, 302)],
)
def test_each_persona_sees_the_pages_it_may_and_only_operators_start_jobs(
    personas, entries, job, persona, list_status, add_status, django_capture_on_commit_callbacks
):
    client = personas[persona]
    assert client.get(reverse("dbmerge:mergejob_list")).status_code == list_status
    assert client.get(job.get_absolute_url()).status_code == list_status
    with django_capture_on_commit_callbacks(execute=False):
        response = client.post(reverse("dbmerge:mergejob_add"), form(entries))
    assert response.status_code == add_status
    cancel = client.post(reverse("dbmerge:mergejob_cancel", args=[job.pk]))
    assert cancel.status_code == (302 if persona in ("anonymous", "operator", "super_admin") else 403)
    if persona == "anonymous":
        assert response["Location"].startswith(reverse("login"))
        assert MergeJob.objects.count() == 1


def test_job_list_finds_filters_and_links_each_id_in_a_fixed_number_of_queries(
    operator_client, entries, django_assert_max_num_queries
):
    for _ in range(12):
        MergeJob.objects.create(
            db_type="postgres", source_1=entries[0], source_2=entries[1], target=entries[2], database_name="tcmerged"
        )
    MergeJob.objects.filter(pk=MergeJob.objects.first().pk).update(state=JobState.COMPLETED)
    with django_assert_max_num_queries(12):
        page = operator_client.get(reverse("dbmerge:mergejob_list")).content.decode()
    assert len(re.findall(r'href="/messaging/jobs/merge/\d+/"', page)) == 12
    completed = operator_client.get(reverse("dbmerge:mergejob_list"), {"state": "completed"}).content.decode()
    assert len(re.findall(r'href="/messaging/jobs/merge/\d+/"', completed)) == 1


@pytest.mark.parametrize(
    ("changes", "field_message"),
    [
        ({"db_type": "mssql"}, MSSQL_REFUSED),
        ({"source_2": "SAME"}, "Source database 1 and Source database 2 must be two different databases."),
        ({"feature_tables": ["tc", "ma"]}, "Only Text Conference (TC) tables can be merged"),
        ({"database_name": "other"}, "The database name must be that of the destination database (tcmerged)."),
        ({"db_type": "oracle"}, "is not an Oracle database; choose one that is."),
    ],
)
def test_add_form_refuses_bad_input_with_a_clear_message_and_writes_nothing(
    operator_client, entries, changes, field_message
):
    if changes.get("source_2") == "SAME":
        changes = {"source_2": entries[0].pk}
    response = operator_client.post(reverse("dbmerge:mergejob_add"), form(entries, **changes))
    assert response.status_code == 200
    assert field_message in response.content.decode()
    assert MergeJob.objects.count() == 0


def test_sql_server_database_chosen_as_source_is_refused(operator_client, entries):
    mssql = external("tcsql", DatabaseType.MSSQL)
    response = operator_client.post(reverse("dbmerge:mergejob_add"), form(entries, source_1=mssql.pk))
    assert f"{mssql} is a Microsoft SQL Server database. {MSSQL_REFUSED}" in response.content.decode()
    assert MergeJob.objects.count() == 0


def test_merge_before_a_validation_of_the_same_selection_passed_is_refused(operator_client, entries, job):
    response = operator_client.post(reverse("dbmerge:mergejob_add"), form(entries, action="merge"))
    assert response.status_code == 200
    assert "Merge Selected Tables is allowed only after a validation of the same selection passed" in (
        response.content.decode()
    )
    response = operator_client.post(reverse("dbmerge:mergejob_merge", args=[job.pk]), follow=True)
    assert "allowed only after a validation of the same selection passed" in response.content.decode()
    job.refresh_from_db()
    assert job.state == JobState.PENDING and job.kind == "validate"


def test_add_page_offers_tc_checked_other_features_unavailable_and_merge_disabled(operator_client):
    page = operator_client.get(reverse("dbmerge:mergejob_add")).content.decode()
    assert 'value="tc" id="ft-tc" checked' in page
    assert 'value="ma" id="ft-ma" disabled' in page and 'value="mft" id="ft-mft" disabled' in page
    assert 'value="merge" class="btn btn-outline-primary" disabled' in page
    assert "Microsoft SQL Server" not in page.split('name="db_type"')[1].split("</select>")[0]


def test_status_polls_while_active_and_answers_286_when_done(operator_client, job):
    url = reverse("dbmerge:mergejob_status", args=[job.pk])
    response = operator_client.get(url)
    assert response.status_code == 200 and 'hx-trigger="every 1s"' in response.content.decode()
    MergeJob.objects.filter(pk=job.pk).update(state=JobState.FAILED, reason="It broke.", traceback="Traceback ...")
    response = operator_client.get(url)
    assert response.status_code == 286
    assert "hx-trigger" not in response.content.decode() and "It broke." in response.content.decode()


def test_cancel_of_a_pending_job_ends_it_at_once(operator_client, job):
    operator_client.post(reverse("dbmerge:mergejob_cancel", args=[job.pk]))
    job.refresh_from_db()
    assert job.state == JobState.CANCELLED and job.reason == "Cancelled before a worker started it."


@pytest.fixture
def celery_queue():
    """This run's Celery queue on the real Redis, emptied before and after: messages the
    console sends can be read back as a worker would receive them (no worker runs here)."""
    from imp_admin.celery import app

    with app.connection_for_read() as connection:
        queue = connection.SimpleQueue(settings.CELERY_TASK_DEFAULT_QUEUE)
        queue.clear()
        yield queue
        queue.clear()
        queue.close()


def waiting_messages(queue) -> list:
    """Take every message waiting in ``queue`` (acknowledged, so they are gone)."""
    from queue import Empty

    taken = []
    while True:
        try:
            message = queue.get_nowait()
        except Empty:
            return taken
        message.ack()
        taken.append(message)


def test_validate_saves_the_job_and_enqueues_only_its_id_on_commit(
    operator_client, entries, django_capture_on_commit_callbacks, celery_queue
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = operator_client.post(reverse("dbmerge:mergejob_add"), form(entries))
    job = MergeJob.objects.get()
    assert response["Location"] == job.get_absolute_url()
    assert (job.state, job.kind, job.created_by.username) == (JobState.PENDING, "validate", "operator")
    assert len(callbacks) == 1
    assert waiting_messages(celery_queue) == []  # nothing is sent before the job row is committed

    callbacks[0]()  # the commit
    [message] = waiting_messages(celery_queue)
    args, kwargs, _embed = message.payload
    assert (message.headers["task"], args, kwargs) == ("dbmerge.run_merge_job", [job.pk], {})


def select_options(page: str, name: str) -> list[str]:
    """The labels of the options of the select named ``name``, placeholder left out."""
    select = page.split(f'name="{name}"')[1].split("</select>")[0]
    return [label for value, label in re.findall(r'<option value="([^"]*)"[^>]*>([^<]*)</option>', select) if value]


def test_database_drop_downs_offer_only_databases_of_the_chosen_type_and_follow_its_changes(operator_client, entries):
    oracle = external("tcora", DatabaseType.ORACLE)
    external("tcsql", DatabaseType.MSSQL)
    page = operator_client.get(reverse("dbmerge:mergejob_add")).content.decode()
    postgres_labels = [f"db.example.com – {e.database_name} (Postgres)" for e in entries]
    for name in ("source_1", "source_2", "target"):
        assert select_options(page, name) == sorted(postgres_labels)
    # Changing the type asks for the form again (htmx), with the form's values.
    box = re.search(r'<div id="merge-job-form-box"[^>]*>', page).group(0)
    assert f'hx-get="{reverse("dbmerge:mergejob_add")}"' in box and 'hx-trigger="change"' in box
    assert 'hx-include="#merge-job-form"' in box and 'hx-swap="innerHTML"' in box

    response = operator_client.get(
        reverse("dbmerge:mergejob_add"),
        {"db_type": "oracle", "source_1": entries[0].pk, "feature_tables": "tc", "method": "copy"},
        headers={"HX-Request": "true"},
    )
    partial = response.content.decode()
    assert response.status_code == 200 and partial.lstrip().startswith("<form")  # the form alone
    assert '<option value="oracle" selected>Oracle</option>' in partial
    for name in ("source_1", "source_2", "target"):
        assert select_options(partial, name) == ["db.example.com – tcora (Oracle)"]
    assert f'<option value="{oracle.pk}" selected' not in partial  # nothing chosen for the user
    assert "is required" not in partial  # a re-render, not a submission: no errors shown


def validated(entries, method: str = "copy", target=None) -> MergeJob:
    """A job of the selection whose validation passed, as the worker leaves it."""
    return MergeJob.objects.create(
        db_type="postgres",
        source_1=entries[0],
        source_2=entries[1],
        target=target or entries[2],
        database_name=(target or entries[2]).database_name,
        method=method,
        state=JobState.VALIDATED,
    )


def add_page(client, entries, **changes) -> str:
    """The Add page as htmx asks for it after a change, with the selection's values."""
    values = {k: v for k, v in form(entries, **changes).items() if k != "action"}
    return client.get(reverse("dbmerge:mergejob_add"), values, headers={"HX-Request": "true"}).content.decode()


MERGE_ENABLED = '<button type="submit" name="action" value="merge" class="btn btn-outline-primary" id="merge-selected">'
MERGE_DISABLED = 'value="merge" class="btn btn-outline-primary" disabled'


def test_merge_is_enabled_once_a_validation_of_the_selection_passed_and_merges_that_job(
    operator_client, entries, django_capture_on_commit_callbacks
):
    assert MERGE_DISABLED in add_page(operator_client, entries)
    job = validated(entries)

    page = add_page(operator_client, entries)
    assert MERGE_ENABLED in page and MERGE_DISABLED not in page
    assert f'Validation passed in <a href="{job.get_absolute_url()}">merge job {job.pk}</a>' in page

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = operator_client.post(reverse("dbmerge:mergejob_add"), form(entries, action="merge"))
    assert response.status_code == 302 and response["Location"] == job.get_absolute_url()
    job.refresh_from_db()
    assert (job.state, job.kind) == (JobState.PENDING, JobKind.MERGE)
    assert len(callbacks) == 1 and MergeJob.objects.count() == 1  # that job, no new one
    assert MERGE_DISABLED in add_page(operator_client, entries)  # merging: not a second time


def test_a_validation_of_another_selection_does_not_enable_merge_of_this_one(operator_client, entries):
    other_target = external("tcother")
    validated(entries, method="dblink")
    validated(entries, target=other_target)

    assert MERGE_DISABLED in add_page(operator_client, entries)
    assert MERGE_ENABLED in add_page(operator_client, entries, method="dblink")
    response = operator_client.post(reverse("dbmerge:mergejob_add"), form(entries, action="merge"))
    assert response.status_code == 200
    assert "allowed only after a validation of the same selection passed" in response.content.decode()
    assert set(MergeJob.objects.values_list("state", "kind")) == {(JobState.VALIDATED, JobKind.VALIDATE)}


def test_a_later_failed_validation_of_the_selection_withdraws_merge(operator_client, entries):
    validated(entries)
    MergeJob.objects.create(
        db_type="postgres",
        source_1=entries[0],
        source_2=entries[1],
        target=entries[2],
        database_name="tcmerged",
        state=JobState.VALIDATION_FAILED,
        reason="1 check(s) failed: Text Conference Manager stopped – Cisco XCP Text Conference Manager is running",
    )
    assert MERGE_DISABLED in add_page(operator_client, entries)
    response = operator_client.post(reverse("dbmerge:mergejob_add"), form(entries, action="merge"))
    assert "allowed only after a validation of the same selection passed" in response.content.decode()
    assert MergeJob.objects.filter(state=JobState.PENDING).count() == 0
