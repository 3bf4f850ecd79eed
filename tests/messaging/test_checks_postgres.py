"""External Database Status checks against real PostgreSQL servers and real local sockets."""

from __future__ import annotations

import time

import pytest
from psycopg import sql

from messaging.dbcheck import install_schema, record, run_checks
from messaging.models import ExternalDatabaseCheck, StatusCheckName
from tests.messaging.conftest import make_external_database

pytestmark = pytest.mark.django_db


def by_name(results):
    return {result.name: result for result in results}


def test_a_fresh_database_is_reachable_and_logged_in_but_has_no_schema(empty_database):
    results = by_name(run_checks(empty_database))
    assert results[StatusCheckName.REACHABILITY].passed
    assert results[StatusCheckName.CONNECTIVITY].passed
    assert results[StatusCheckName.CONNECTIVITY].message == (
        f"Logged in to {empty_database.database_name} as {empty_database.username}."
    )
    assert not results[StatusCheckName.SCHEMA].passed
    assert results[StatusCheckName.SCHEMA].message == (
        "The TC schema is not installed: no tc_* table exists. Install it from this page."
    )
    assert results[StatusCheckName.PRIVILEGES].passed


def test_every_check_passes_once_the_schema_is_installed(installed_database):
    results = run_checks(installed_database)
    assert [(r.name, r.passed) for r in results] == [
        (StatusCheckName.REACHABILITY, True),
        (StatusCheckName.CONNECTIVITY, True),
        (StatusCheckName.SCHEMA, True),
        (StatusCheckName.PRIVILEGES, True),
    ]


def test_results_are_recorded_on_the_database_row(installed_database):
    record(installed_database, run_checks(installed_database))
    rows = {row.name: row for row in ExternalDatabaseCheck.objects.filter(database=installed_database)}
    assert set(rows) == set(StatusCheckName)
    assert all(row.passed for row in rows.values())
    installed_database.refresh_from_db()
    assert installed_database.last_checked_at is not None


def test_install_creates_tables_with_keys_and_the_message_id_sequence(empty_database, postgres):
    outcome = install_schema(empty_database)
    assert outcome.installed and outcome.ok
    with postgres.connect(empty_database.database_name) as conn:
        tables = {row[0] for row in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
        assert tables == {"tc_rooms", "tc_users", "tc_messages", "tc_timelog", "tc_msgarchive", "xcp_sequence"}
        assert conn.execute("SELECT name_id, new_id FROM xcp_sequence").fetchall() == [("tc_message_id", 1)]
        keys = dict(
            conn.execute("SELECT conrelid::regclass::text, conname FROM pg_constraint WHERE contype = 'p'").fetchall()
        )
        assert keys["tc_rooms"] == "tc_rooms_pkey"
        assert keys["tc_messages"] == "tc_messages_pkey"


def test_install_into_a_database_with_a_valid_schema_does_nothing_and_says_so(installed_database, postgres):
    with postgres.connect(installed_database.database_name, autocommit=True) as conn:
        conn.execute("UPDATE xcp_sequence SET new_id = 501")
    outcome = install_schema(installed_database)
    assert not outcome.installed and outcome.ok
    assert outcome.message == f"{installed_database} already holds a valid TC schema; nothing was changed."
    with postgres.connect(installed_database.database_name) as conn:
        assert conn.execute("SELECT new_id FROM xcp_sequence").fetchone() == (501,)


def test_install_refuses_a_database_with_a_conflicting_table_and_names_it(empty_database, postgres):
    with postgres.connect(empty_database.database_name, autocommit=True) as conn:
        conn.execute("CREATE TABLE tc_rooms (room_jid integer)")
    outcome = install_schema(empty_database)
    assert not outcome.installed and not outcome.ok
    assert outcome.message.startswith(f"Nothing was installed: {empty_database} already holds table(s) tc_rooms ")
    with postgres.connect(empty_database.database_name) as conn:
        tables = {row[0] for row in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    assert tables == {"tc_rooms"}


def test_a_column_of_the_wrong_type_fails_schema_verification(installed_database, postgres):
    with postgres.connect(installed_database.database_name, autocommit=True) as conn:
        conn.execute("ALTER TABLE tc_messages ALTER COLUMN msg_id TYPE integer")
    result = by_name(run_checks(installed_database))[StatusCheckName.SCHEMA]
    assert not result.passed
    assert result.message == "The TC schema is not valid. Column tc_messages.msg_id is integer; expected BIGINT."


def test_a_missing_table_fails_schema_verification(installed_database, postgres):
    with postgres.connect(installed_database.database_name, autocommit=True) as conn:
        conn.execute("DROP TABLE tc_timelog")
    result = by_name(run_checks(installed_database))[StatusCheckName.SCHEMA]
    assert result.message == "The TC schema is not valid. Table tc_timelog is missing."


def test_a_database_that_does_not_exist_fails_connectivity(db, postgres):
    role = postgres.role("tcuser")
    database = make_external_database("no_such_database_here", role)
    results = by_name(run_checks(database))
    assert results[StatusCheckName.REACHABILITY].passed
    assert results[StatusCheckName.CONNECTIVITY].message == (
        "The database no_such_database_here does not exist on 127.0.0.1:5432; check the Database Name field."
    )
    assert results[StatusCheckName.SCHEMA].message == "Not tried: no login to the database."


def test_a_user_without_privileges_fails_the_privilege_check(db, postgres):
    dbname = postgres.database("tcmadb")  # owned by postgres: the role may log in, not create
    role = postgres.role("nopriv")
    database = make_external_database(dbname, role)
    result = by_name(run_checks(database))[StatusCheckName.PRIVILEGES]
    assert not result.passed
    assert result.message == (
        f"The user {role} lacks CREATE on schema public; grant it "
        f"(GRANT CREATE ON SCHEMA public TO {role}) so the TC tables can be created."
    )
    assert not install_schema(database).installed


def test_a_user_without_execute_on_dblink_fails_the_privilege_check(empty_database, postgres):
    with postgres.connect(empty_database.database_name, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS dblink")
        conn.execute("REVOKE EXECUTE ON FUNCTION dblink_connect(text), dblink_connect(text, text) FROM PUBLIC")
    result = by_name(run_checks(empty_database))[StatusCheckName.PRIVILEGES]
    assert result.message.endswith(
        "lacks EXECUTE on dblink_connect(text) and dblink_connect(text,text), which the database merge needs."
    )
    with postgres.connect(empty_database.database_name, autocommit=True) as conn:
        conn.execute(
            sql.SQL("GRANT EXECUTE ON FUNCTION dblink_connect(text), dblink_connect(text, text) TO {}").format(
                sql.Identifier(empty_database.username)
            )
        )
    assert by_name(run_checks(empty_database))[StatusCheckName.PRIVILEGES].passed


def test_a_wrong_password_is_refused_by_the_server(db, password_role):
    database = make_external_database("tcpw", "tcpw", password="wrong-password", port=password_role)
    results = by_name(run_checks(database))
    assert results[StatusCheckName.REACHABILITY].passed
    assert results[StatusCheckName.CONNECTIVITY].message == (
        "The database server refused the user name or password of tcpw; check both fields."
    )
    right = make_external_database("tcpw", "tcpw", password="right-password", port=password_role, hostname="localhost")
    assert by_name(run_checks(right))[StatusCheckName.CONNECTIVITY].passed


def test_an_unknown_host_fails_reachability_and_skips_the_rest(db):
    database = make_external_database("tcmadb", "tcuser", hostname="tcdb.invalid")
    results = run_checks(database)
    assert results[0].message == "The host name tcdb.invalid cannot be resolved; check the Hostname field."
    assert [r.passed for r in results] == [False, False, False, False]
    assert results[1].message == "Not tried: the database server cannot be reached."


def test_a_closed_port_fails_reachability(db, closed_port):
    database = make_external_database("tcmadb", "tcuser", port=closed_port)
    result = run_checks(database)[0]
    assert result.message == (
        f"Nothing accepts connections on 127.0.0.1 port {closed_port}; "
        "check the port and that the database server runs."
    )


def test_a_host_that_drops_packets_fails_reachability_within_the_timeout(db, dropping_port, settings):
    settings.EXTERNAL_DB_CHECK_TIMEOUT = 1
    database = make_external_database("tcmadb", "tcuser", port=dropping_port)
    started = time.monotonic()
    result = run_checks(database)[0]
    elapsed = time.monotonic() - started
    assert result.message == (
        f"No answer from 127.0.0.1 port {dropping_port} within 1 s; "
        "a firewall may be dropping packets, or the host is down."
    )
    # A behaviour bound (the check gives up at its timeout), not a speed figure.
    assert elapsed < 1 + 2


def test_every_address_of_a_host_shares_one_deadline(dropping_port):
    # Two addresses that both drop packets (the second a second dropping port): tried one after
    # the other, they still give up at the one deadline, not at a timeout each.
    import socket

    from messaging.dbcheck.checks import connect_any

    second = socket.socket()
    second.bind(("127.0.0.1", 0))
    second.listen(0)
    filler = socket.create_connection(second.getsockname())
    try:
        addresses = [
            (socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", ("127.0.0.1", port))
            for port in (dropping_port, second.getsockname()[1])
        ]
        timeout = 2
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            connect_any(addresses, started + timeout)
        assert time.monotonic() - started < timeout + 1  # a timeout per address would take 2 x 2 s
    finally:
        filler.close()
        second.close()


def test_a_name_the_resolver_cannot_resolve_fails_reachability_within_the_timeout(db, settings):
    # Longer than the 253 characters a DNS name may have: the real getaddrinfo refuses it on
    # this machine without sending a query (this host's DNS server is not on loopback).
    settings.EXTERNAL_DB_CHECK_TIMEOUT = 1
    hostname = ".".join(["b" * 63] * 4) + ".example"
    database = make_external_database("tcmadb", "tcuser", hostname=hostname)
    started = time.monotonic()
    results = run_checks(database)
    elapsed = time.monotonic() - started
    assert results[0].message.startswith(f"The host name {hostname} cannot be resolved (")
    assert results[0].message.endswith("); check the Hostname field.")
    assert [r.passed for r in results] == [False, False, False, False]
    assert elapsed < 1 + 2


def test_a_server_that_accepts_but_never_answers_fails_the_login_within_the_timeout(db, silent_port, check_timeout):
    database = make_external_database("tcmadb", "tcuser", port=silent_port)
    results = by_name(run_checks(database))
    assert results[StatusCheckName.REACHABILITY].passed
    assert results[StatusCheckName.CONNECTIVITY].message == (
        f"The server at 127.0.0.1:{silent_port} accepted the connection but did not complete the login within 2 s; "
        "it may not be a PostgreSQL server, or it is overloaded."
    )
