"""External Database Jobs pages: permissions per persona, Find and List, the Add form's
errors (nothing written), Merge only after validation, the live status answer."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from dbmerge.choices import JobState
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
        ({"db_type": "oracle"}, "is not a Oracle database; choose one that is."),
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


def test_validate_saves_the_job_and_enqueues_only_its_id_on_commit(
    operator_client, entries, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = operator_client.post(reverse("dbmerge:mergejob_add"), form(entries))
    job = MergeJob.objects.get()
    assert response["Location"] == job.get_absolute_url()
    assert (job.state, job.kind, job.created_by.username) == (JobState.PENDING, "validate", "operator")
    assert len(callbacks) == 1
