"""manage.py merge_external_databases: the same job row, from a shell, printing progress."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from dbmerge.choices import JobState
from dbmerge.models import MergeJob
from tests.dbmerge.test_engine_postgres import fill_two_sources

# Transactional: the runner's heartbeat thread writes the job row on its own connection.
pytestmark = pytest.mark.django_db(transaction=True)


def test_command_validates_and_merges_creating_the_job_row(chat_db):
    a, b, target = chat_db(), chat_db(), chat_db()
    fill_two_sources(a, b)
    for database in (a, b, target):
        database.external()
    out = StringIO()
    call_command(
        "merge_external_databases",
        "--type",
        "postgres",
        "--source-1",
        a.name,
        "--source-2",
        b.name,
        "--target",
        target.name,
        stdout=out,
    )
    job = MergeJob.objects.get()
    assert job.state == JobState.COMPLETED and job.created_by is None
    text = out.getvalue()
    assert f"Merge job {job.pk}: Completed." in text
    assert "tc_msgarchive: 8 of 8 rows" in text and "[PASS] Valid TC schema" in text
    assert [r[0] for r in target.rows()["tc_msgarchive"]] == [1, 2, 3, 4, 5, 6, 7, 8]


def test_command_validate_only_leaves_the_destination_as_it_was(chat_db):
    a, b, target = chat_db(), chat_db(), chat_db()
    fill_two_sources(a, b)
    for database in (a, b, target):
        database.external()
    call_command(
        "merge_external_databases",
        "--type",
        "postgres",
        "--source-1",
        a.name,
        "--source-2",
        b.name,
        "--target",
        target.name,
        "--validate-only",
        stdout=StringIO(),
    )
    assert MergeJob.objects.get().state == JobState.VALIDATED
    assert target.rows()["tc_msgarchive"] == []


def test_command_refuses_sql_server_with_the_product_message_and_writes_nothing(chat_db):
    a = chat_db()
    a.external()
    with pytest.raises(CommandError, match="MS SQL is not supported for merging"):
        call_command(
            "merge_external_databases",
            "--type",
            "mssql",
            "--source-1",
            a.name,
            "--source-2",
            a.name,
            "--target",
            a.name,
            stdout=StringIO(),
        )
    assert MergeJob.objects.count() == 0


def test_command_names_an_unknown_database(chat_db):
    with pytest.raises(CommandError, match=r"--source-1: no external database named 'nope' is configured\."):
        call_command(
            "merge_external_databases",
            "--type",
            "postgres",
            "--source-1",
            "nope",
            "--source-2",
            "x",
            "--target",
            "y",
            stdout=StringIO(),
        )
