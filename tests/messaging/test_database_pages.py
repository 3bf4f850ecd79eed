"""External Databases pages: Find and List, Add New, Edit, Delete, status and install."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from imp_admin import crypto
from messaging.models import CheckRunState, ExternalDatabase, PersistentChatAssignment, StatusCheckName
from tests.messaging.conftest import make_external_database

pytestmark = pytest.mark.django_db

VALID = {
    "database_name": "tcmadb",
    "db_type": "postgres",
    "username": "tcuser",
    "password": "s3cret-pass",
    "confirm_password": "s3cret-pass",
    "hostname": "db1.example.com",
    "port": "",
}


def add(client, **changes):
    return client.post(reverse("messaging:externaldatabase_add"), {**VALID, **changes})


def errors_of(response) -> dict[str, list[str]]:
    return {name: list(errs) for name, errs in response.context["form"].errors.items()}


def test_adding_a_database_stores_the_password_encrypted_and_fills_the_port(operator_client):
    response = add(operator_client)
    database = ExternalDatabase.objects.get()
    assert response.status_code == 302 and response["Location"] == database.get_absolute_url()
    assert database.port == 5432
    assert database.password_encrypted != "s3cret-pass"
    assert crypto.decrypt(database.password_encrypted) == "s3cret-pass"


@pytest.mark.parametrize(
    ("db_type", "ssl", "port"), [("oracle", False, 1521), ("oracle", True, 2484), ("mssql", False, 1433)]
)
def test_port_is_prefilled_by_type(operator_client, db_type, ssl, port):
    extra = {"tablespace": "USERS"} if db_type == "oracle" else {}
    add(operator_client, db_type=db_type, enable_ssl="on" if ssl else "", **extra)
    assert ExternalDatabase.objects.get().port == port


def test_password_never_appears_in_a_page(operator_client):
    add(operator_client)
    database = ExternalDatabase.objects.get()
    for url in (
        reverse("messaging:externaldatabase_edit", args=[database.pk]),
        database.get_absolute_url(),
        reverse("messaging:externaldatabase_list"),
    ):
        body = operator_client.get(url).content.decode()
        assert "s3cret-pass" not in body
        assert database.password_encrypted not in body


def test_an_edit_with_an_empty_password_keeps_the_stored_one(operator_client):
    add(operator_client)
    database = ExternalDatabase.objects.get()
    data = {**VALID, "password": "", "confirm_password": "", "port": "6543", "hostname": "db2.example.com"}
    response = operator_client.post(reverse("messaging:externaldatabase_edit", args=[database.pk]), data)
    assert response.status_code == 302
    database.refresh_from_db()
    assert (database.hostname, database.port, database.get_password()) == ("db2.example.com", 6543, "s3cret-pass")


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"confirm_password": "other"}, "confirm_password", "Password and Confirm Password do not match."),
        (
            {"password": "x" * 31, "confirm_password": "x" * 31},
            "password",
            "The password can be at most 30 characters.",
        ),
        ({"password": "", "confirm_password": ""}, "password", "Enter the password of the database user."),
        (
            {"enable_ssl": "on"},
            "enable_ssl",
            "Enable SSL is available for Oracle and Microsoft SQL Server only; PostgreSQL connections do not use SSL.",
        ),
        ({"port": "70000"}, "port", "Enter a port number from 1 to 65535."),
        ({"port": "0"}, "port", "Enter a port number from 1 to 65535."),
        ({"hostname": "bad host!"}, "hostname", None),
        ({"db_type": "oracle"}, "tablespace", None),
        ({"tablespace": "USERS"}, "tablespace", "Tablespace applies to Oracle databases only; leave it empty."),
        ({"windows_authentication": "on"}, "windows_authentication", None),
        ({"db_type": "mssql", "windows_authentication": "on"}, "domain", None),
    ],
)
def test_bad_input_is_refused_with_a_clear_message_and_nothing_saved(operator_client, changes, field, message):
    response = add(operator_client, **changes)
    assert response.status_code == 200
    errors = errors_of(response)
    assert field in errors
    if message:
        assert errors[field] == [message]
    assert not ExternalDatabase.objects.exists()


def test_ipv6_and_ipv4_hosts_are_accepted(operator_client):
    add(operator_client, hostname="2001:DB8::10")
    add(operator_client, hostname="192.0.2.10")
    assert sorted(ExternalDatabase.objects.values_list("hostname", flat=True)) == ["192.0.2.10", "2001:db8::10"]


def test_deleting_an_assigned_database_is_refused_with_the_reason(operator_client, build):
    node = build.node("imp-1a", build.cluster())
    database = make_external_database("tcmadb", "tcuser")
    PersistentChatAssignment.objects.create(node=node, database=database)
    response = operator_client.post(reverse("messaging:externaldatabase_delete", args=[database.pk]), follow=True)
    assert ExternalDatabase.objects.filter(pk=database.pk).exists()
    assert (
        f"{database} cannot be deleted: it is the persistent chat database of imp-1a. "
        "Unassign it on the Group Chat and Persistent Chat page first."
        in [str(m) for m in response.context["messages"]]
    )


def test_deleting_an_unassigned_database_removes_it(operator_client):
    database = make_external_database("tcmadb", "tcuser")
    operator_client.post(reverse("messaging:externaldatabase_delete", args=[database.pk]))
    assert not ExternalDatabase.objects.exists()


def test_check_now_queues_a_check_and_the_page_polls_until_it_finishes(
    operator_client, django_capture_on_commit_callbacks
):
    database = make_external_database("tcmadb", "tcuser")
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        operator_client.post(reverse("messaging:externaldatabase_check", args=[database.pk]))
    assert len(callbacks) == 1  # the Celery task is sent once the request commits
    database.refresh_from_db()
    assert database.check_state == CheckRunState.QUEUED
    page = operator_client.get(database.get_absolute_url()).content.decode()
    assert 'hx-trigger="every 1s"' in page and "Checking…" in page
    status = operator_client.get(reverse("messaging:externaldatabase_status", args=[database.pk]))
    assert status.status_code == 200


def test_install_schema_is_queued_for_the_worker_and_the_page_follows_it_to_the_outcome(
    operator_client, empty_database, postgres, django_capture_on_commit_callbacks
):
    from messaging.tasks import install_tc_schema

    url = reverse("messaging:externaldatabase_install", args=[empty_database.pk])
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = operator_client.post(url, follow=True)
    assert len(callbacks) == 1  # the Celery task, sent once the request commits; nothing installed yet
    page = response.content.decode()
    assert f"Installing the TC schema in {empty_database} on the worker; the status below follows it." in page
    assert 'hx-trigger="every 1s"' in page and "Checking…" in page
    with postgres.connect(empty_database.database_name) as conn:
        assert conn.execute("SELECT count(*) FROM pg_tables WHERE tablename LIKE 'tc_%'").fetchone() == (0,)

    install_tc_schema(empty_database.pk)  # what the worker runs
    status = operator_client.get(reverse("messaging:externaldatabase_status", args=[empty_database.pk]))
    assert status.status_code == 286  # done: the page stops polling
    shown = status.content.decode()
    assert (
        f"Install schema: The TC schema (tc_* tables, xcp_sequence and their keys) was installed in {empty_database}."
    ) in shown
    assert shown.count('data-passed="true"') == 3

    with django_capture_on_commit_callbacks(execute=False):
        operator_client.post(url)
    install_tc_schema(empty_database.pk)
    shown = operator_client.get(empty_database.get_absolute_url()).content.decode()
    assert f"Install schema: {empty_database} already holds a valid TC schema; nothing was changed." in shown


def test_install_schema_without_the_create_privilege_says_which_grant_to_run(
    operator_client, postgres, django_capture_on_commit_callbacks
):
    from messaging.tasks import install_tc_schema

    role = postgres.role("tcnocreate")
    dbname = postgres.database("tcmadb")  # owned by postgres: the role may connect, not create
    with postgres.connect(dbname, autocommit=True) as conn:
        conn.execute(f"REVOKE CREATE ON SCHEMA public FROM PUBLIC; GRANT USAGE ON SCHEMA public TO {role}")
    database = make_external_database(dbname, role)
    with django_capture_on_commit_callbacks(execute=False):
        operator_client.post(reverse("messaging:externaldatabase_install", args=[database.pk]))
    install_tc_schema(database.pk)
    shown = operator_client.get(database.get_absolute_url()).content.decode()
    assert (
        f"Install schema: Nothing was installed in {database}: The user {role} lacks CREATE on schema public; "
        f"grant it (GRANT CREATE ON SCHEMA public TO {role}) so the TC tables can be created."
    ) in shown
    assert "permission denied" not in shown
    with postgres.connect(dbname) as conn:
        assert conn.execute("SELECT count(*) FROM pg_tables WHERE tablename LIKE 'tc_%'").fetchone() == (0,)


def test_status_shows_each_recorded_check(operator_client, installed_database):
    from messaging.dbcheck import record, run_checks

    record(installed_database, run_checks(installed_database))
    page = operator_client.get(installed_database.get_absolute_url()).content.decode()
    for check in StatusCheckName:
        assert check.label in page
    assert page.count('data-passed="true"') == 3


def test_the_list_shows_status_and_assignment_in_a_fixed_number_of_queries(
    operator_client, build, django_assert_max_num_queries
):
    cluster = build.cluster()
    for index in range(6):
        database = make_external_database(f"tcmadb{index}", "tcuser")
        PersistentChatAssignment.objects.create(node=build.node(f"imp-{index}", cluster), database=database)
    with django_assert_max_num_queries(10):
        response = operator_client.get(reverse("messaging:externaldatabase_list"))
    assert response.status_code == 200
    assert "imp-5" in response.content.decode()


def slices(secret: str, width: int = 8) -> set[str]:
    """Every ``width``-character piece of ``secret``: none may appear where a user can read."""
    return {secret[i : i + width] for i in range(len(secret) - width + 1)}


def test_the_audit_trail_says_the_password_changed_without_any_part_of_its_ciphertext(operator_client, super_client):
    from auditlog.models import LogEntry

    add(operator_client)
    database = ExternalDatabase.objects.get()
    first = database.password_encrypted
    edit = {**VALID, "password": "n3w-secret-pass", "confirm_password": "n3w-secret-pass"}
    operator_client.post(reverse("messaging:externaldatabase_edit", args=[database.pk]), edit)
    database.refresh_from_db()
    second = database.password_encrypted
    assert first != second

    entries = list(LogEntry.objects.filter(content_type__model="externaldatabase").order_by("timestamp"))
    stored = json.dumps([entry.changes for entry in entries])
    page = super_client.get(reverse("audit_list")).content.decode()
    for ciphertext in (first, second):
        assert not [piece for piece in slices(ciphertext) if piece in stored], "ciphertext in the LogEntry"
        assert not [piece for piece in slices(ciphertext) if piece in page], "ciphertext on /audit/"
    for password in ("s3cret-pass", "n3w-secret-pass"):
        assert password not in stored and password not in page

    assert [entry.actor.username for entry in entries] == ["operator", "operator"]
    assert entries[1].changes_dict == {"password_encrypted": ["******", "******"]}
    assert "<code>password_encrypted</code>: ****** → ******" in page
    assert "<code>password_encrypted</code>: — → ******" in page  # set when the database was added


CONNECTION_EDITS = {
    "hostname": {"hostname": "localhost"},
    "port": {"port": "6543"},
    "database name": {"database_name": "othertcdb"},
    "user name": {"username": "otheruser"},
    "password": {"password": "n3w-secret-pass", "confirm_password": "n3w-secret-pass"},
    "type": {"db_type": "mssql", "port": "1433"},
    "SSL": {"db_type": "mssql", "port": "1433", "enable_ssl": "on"},
}


@pytest.mark.parametrize("changes", CONNECTION_EDITS.values(), ids=CONNECTION_EDITS.keys())
def test_editing_the_connection_clears_the_old_results_and_queues_a_new_check(
    operator_client, installed_database, django_capture_on_commit_callbacks, changes
):
    from messaging.dbcheck import record, run_checks
    from messaging.models.databases import CONNECTION_CHANGED_NOTE

    database = installed_database
    record(database, run_checks(database))
    if "enable_ssl" in changes:  # SSL alone: make the checked database SQL Server without SSL first
        ExternalDatabase.objects.filter(pk=database.pk).update(db_type="mssql", port=1433)
        database.refresh_from_db()
    assert operator_client.get(database.get_absolute_url()).content.decode().count('data-passed="true"') == 3

    form = {
        "database_name": database.database_name,
        "db_type": database.db_type,
        "username": database.username,
        "hostname": database.hostname,
        "port": str(database.port),
        **changes,
    }
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = operator_client.post(
            reverse("messaging:externaldatabase_edit", args=[database.pk]), form, follow=True
        )
    assert len(callbacks) == 1  # the check task, sent once the edit commits
    assert f"The connection settings of {ExternalDatabase.objects.get()} changed; it is being checked again." in [
        str(m) for m in response.context["messages"]
    ]
    database.refresh_from_db()
    assert (database.check_state, database.last_checked_at) == (CheckRunState.QUEUED, None)
    assert not database.checks.exists()

    page = operator_client.get(database.get_absolute_url()).content.decode()
    assert 'data-passed="true"' not in page
    assert page.count('<td class="text-muted">Not checked</td>') == 3
    assert CONNECTION_CHANGED_NOTE in page
    assert 'hx-trigger="every 1s"' in page  # and it polls for the new results
    listing = operator_client.get(reverse("messaging:externaldatabase_list")).content.decode()
    assert "✔" not in listing and "Not checked" in listing


def test_an_edit_that_keeps_the_connection_keeps_the_results(
    operator_client, installed_database, django_capture_on_commit_callbacks
):
    from messaging.dbcheck import record, run_checks

    database = installed_database
    record(database, run_checks(database))
    form = {
        "database_name": database.database_name,
        "db_type": database.db_type,
        "username": database.username,
        "hostname": database.hostname,
        "port": "",  # filled in by type: the same 5432
    }
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = operator_client.post(reverse("messaging:externaldatabase_edit", args=[database.pk]), form)
    assert response.status_code == 302 and not callbacks
    page = operator_client.get(database.get_absolute_url()).content.decode()
    assert page.count('data-passed="true"') == 3
