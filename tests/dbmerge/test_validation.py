"""Validate Selected Tables: each check fails for its own reason, with the message shown."""

from __future__ import annotations

import pytest
from psycopg import sql

from dbmerge.choices import CheckName
from dbmerge.models import MergeJob
from dbmerge.validation import Validator
from messaging.models import DatabaseType, PersistentChatAssignment
from tests.dbmerge.conftest import tc_running_on, tc_stopped_on
from tests.dbmerge.test_engine_postgres import fill_two_sources

pytestmark = pytest.mark.django_db


@pytest.fixture
def dbs(chat_db):
    a, b, target = chat_db(), chat_db(), chat_db()
    fill_two_sources(a, b)
    return a, b, target


def job_for(a, b, target, **fields) -> MergeJob:
    return MergeJob.objects.create(
        db_type=fields.pop("db_type", "postgres"),
        source_1=a,
        source_2=b,
        target=target,
        database_name=target.database_name,
        **fields,
    )


def failed(job: MergeJob) -> dict[str, str]:
    return {f"{o.name.value} {o.subject}".strip(): o.message for o in Validator(job).run() if not o.passed}


def test_every_check_passes_for_two_stopped_nodes_and_an_empty_destination(dbs, build):
    a, b, target = dbs
    entries = [a.external(), b.external(), target.external()]
    cluster = build.cluster()
    for name, entry in zip(("imp-1a", "imp-1b"), entries, strict=False):
        node = build.node(name, cluster)
        PersistentChatAssignment.objects.create(node=node, database=entry)
        tc_stopped_on(node)
    outcomes = Validator(job_for(*entries)).run()
    assert all(o.passed for o in outcomes), [o.message for o in outcomes if not o.passed]
    names = [o.name for o in outcomes]
    for name in set(CheckName) - {CheckName.DESTINATION_IS_SOURCE}:
        assert name in names
    assert CheckName.DESTINATION_IS_SOURCE not in names  # the destination is a third database
    assert "SELECT on every TC table (the source is only read)." in [o.message for o in outcomes]
    content = next(o for o in outcomes if o.name == CheckName.DESTINATION_CONTENT)
    assert content.message == (
        "The destination holds no room. Cisco requires at least one persistent room in the destination; "
        "imp-admin accepts an empty destination and merges into it."
    )
    space = next(o for o in outcomes if o.name == CheckName.FREE_SPACE)
    assert space.message.startswith("PostgreSQL does not report free disk space to its clients")


def test_sql_server_databases_are_refused_with_the_product_message(dbs):
    a, b, target = dbs
    job = job_for(a.external(), b.external(), target.external(db_type=DatabaseType.MSSQL, hostname="localhost"))
    assert failed(job) == {"database_type": "MS SQL is not supported for merging."}


def test_a_node_whose_agent_is_not_reporting_fails_the_tc_stopped_check(dbs, build):
    a, b, target = dbs
    entries = [a.external(), b.external(), target.external()]
    node = build.node("imp-1a", build.cluster())
    PersistentChatAssignment.objects.create(node=node, database=entries[0])
    message = failed(job_for(*entries))["tc_stopped imp-1a"]
    assert message.startswith("Node agent not reporting: the state of Text Conference Manager on imp-1a")


def test_a_running_text_conference_manager_fails_the_check_and_the_destination_in_use_check(dbs, build):
    a, b, target = dbs
    entries = [a.external(), b.external(), target.external()]
    node = build.node("imp-2a", build.cluster())
    PersistentChatAssignment.objects.create(node=node, database=entries[2])
    tc_running_on(node)
    problems = failed(job_for(*entries))
    assert problems["tc_stopped imp-2a"].startswith("Cisco XCP Text Conference Manager is running on imp-2a")
    assert problems[f"destination_not_in_use {entries[2]}"].startswith("The destination is assigned to imp-2a")


def test_an_unreachable_database_fails_reachability(dbs):
    a, b, target = dbs
    entry = b.external(hostname="db.invalid")
    problems = failed(job_for(a.external(), entry, target.external()))
    assert problems[f"reachable Source database 2: {entry}"] == (
        "The host name db.invalid cannot be resolved; check the Hostname field."
    )


def test_a_source_without_a_valid_schema_fails_the_schema_check(dbs, chat_db):
    a, _b, target = dbs
    bare = chat_db(schema=False)
    entry = bare.external()
    problems = failed(job_for(a.external(), entry, target.external()))
    assert f"schema Source database 2: {entry}" in problems


def test_the_same_database_under_two_names_fails_the_different_sources_check(dbs):
    a, _b, target = dbs
    problems = failed(job_for(a.external(), a.external(hostname="localhost"), target.external()))
    assert problems["different_sources"].endswith(
        "are the same database under two names; choose the two per-node databases."
    )


def test_a_destination_user_without_privileges_fails_the_privileges_check(dbs, postgres):
    a, b, target = dbs
    role = postgres.role()
    entry = target.external()
    entry.username = role
    entry.set_password("role-password")
    entry.save()
    problems = failed(job_for(a.external(), b.external(), entry))
    assert problems[f"privileges Destination database: {entry}"].startswith(
        "Missing: SELECT on tc_rooms; INSERT on tc_rooms"
    )


def test_dblink_method_needs_the_dblink_extension_in_the_destination(dbs):
    a, b, target = dbs
    entry = target.external()
    problems = failed(job_for(a.external(), b.external(), entry, method="dblink"))
    assert (
        "the dblink extension (CREATE EXTENSION dblink, by the DB owner)"
        in problems[f"privileges Destination database: {entry}"]
    )


def test_dblink_method_needs_execute_on_every_dblink_function_the_transfer_calls(dbs, postgres):
    a, b, target = dbs
    role = postgres.role()
    with postgres.connect(target.name) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS dblink")
        conn.execute("REVOKE EXECUTE ON FUNCTION dblink_exec(text, text), dblink_disconnect(text) FROM PUBLIC")
        conn.execute(
            sql.SQL("GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA public TO {}").format(sql.Identifier(role))
        )
    entry = target.external()
    entry.username = role
    entry.set_password("role-password")
    entry.save()
    problems = failed(job_for(a.external(), b.external(), entry, method="dblink"))
    message = problems[f"privileges Destination database: {entry}"]
    assert "EXECUTE on dblink_exec(text,text)" in message and "EXECUTE on dblink_disconnect(text)" in message
    assert "EXECUTE on dblink_connect(text,text)" not in message and "SELECT on tc_rooms" not in message


def test_a_destination_that_is_a_source_is_a_warning_and_that_source_is_not_said_to_be_only_read(dbs, operator_client):
    from django.urls import reverse

    from dbmerge.jobrunner import _JobHooks, _run

    a, b, _target = dbs
    one, two = a.external(), b.external()
    job = job_for(one, two, one)
    outcomes = Validator(job).run()

    warning = [o for o in outcomes if o.name == CheckName.DESTINATION_IS_SOURCE]
    assert [(o.passed, o.warning, o.message) for o in warning] == [
        (
            True,
            True,
            f"{a.name} is both a source and the destination: its rows stay and the other source's rows are "
            "added to it.",
        )
    ]
    privileges = {o.subject: o.message for o in outcomes if o.name == CheckName.PRIVILEGES}
    assert "only read" not in privileges[f"Source database 1: {one}"]
    assert "also the destination, so it is written" in privileges[f"Source database 1: {one}"]
    assert privileges[f"Source database 2: {two}"] == "SELECT on every TC table (the source is only read)."

    # The job's page: the warning row, and which database is written.
    job.state = "validating"
    job.save()
    _run(job, _JobHooks(job.pk, None), None)
    page = operator_client.get(job.get_absolute_url()).content.decode()
    assert "Destination is a source" in page and "Warning" in page and "table-warning" in page
    assert f"{one} (also Source database 1) is written; {two} is only read." in page
    assert reverse("dbmerge:mergejob_merge", args=[job.pk]) in page  # a warning does not stop the merge
