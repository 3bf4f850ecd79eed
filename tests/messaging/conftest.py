"""Fixtures of the messaging suites: external databases on the local PostgreSQL, silent and
closed local ports, and a private PostgreSQL server that checks passwords."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time

import psycopg
import pytest
from psycopg import sql

from messaging.models import ExternalDatabase

ROLE_PASSWORD = "role-password"


def make_external_database(dbname: str, username: str, password: str = ROLE_PASSWORD, **fields) -> ExternalDatabase:
    fields = {"hostname": "127.0.0.1", "port": 5432, "db_type": "postgres", **fields}
    db = ExternalDatabase(database_name=dbname, username=username, **fields)
    db.set_password(password)
    db.save()
    return db


@pytest.fixture
def tc_owner(postgres):
    """A role that owns a fresh, empty database: what an administrator prepares (reference 5.5)."""
    role = postgres.role("tcuser")
    dbname = postgres.database("tcmadb", owner=role)
    return dbname, role


@pytest.fixture
def empty_database(db, tc_owner) -> ExternalDatabase:
    dbname, role = tc_owner
    return make_external_database(dbname, role)


@pytest.fixture
def installed_database(empty_database) -> ExternalDatabase:
    from messaging.dbcheck import install_schema

    assert install_schema(empty_database).installed
    return empty_database


@pytest.fixture
def check_timeout(settings):
    """A short check timeout, so tests that wait for silence stay short."""
    settings.EXTERNAL_DB_CHECK_TIMEOUT = 2
    return 2


@pytest.fixture
def silent_port():
    """A local port that accepts TCP connections and never says a word."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    yield server.getsockname()[1]
    server.close()


@pytest.fixture
def dropping_port():
    """A local port whose accept queue is full, so the kernel drops every new SYN."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    filler = socket.create_connection(server.getsockname())
    yield server.getsockname()[1]
    filler.close()
    server.close()


@pytest.fixture
def closed_port() -> int:
    """A local port nothing listens on."""
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    return port


PG_BIN = "/usr/lib/postgresql/15/bin"


@pytest.fixture(scope="session")
def password_server():
    """A private PostgreSQL server with scram-sha-256 on 127.0.0.1, so a wrong password is
    refused (the shared server trusts every local login). Yields (port, admin connect kwargs)."""
    workdir = tempfile.mkdtemp(prefix="imp-pgpw-")
    shutil.chown(workdir, "postgres")
    os.chmod(workdir, 0o700)
    pwfile = os.path.join(workdir, "pw")
    with open(pwfile, "w") as handle:
        handle.write("admin-password\n")
    shutil.chown(pwfile, "postgres")
    datadir = os.path.join(workdir, "data")
    run_as = ["runuser", "-u", "postgres", "--"]
    subprocess.run(
        [*run_as, f"{PG_BIN}/initdb", "-D", datadir, "-U", "postgres", "-A", "scram-sha-256", f"--pwfile={pwfile}"],
        check=True,
        capture_output=True,
    )
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    options = f"-p {port} -k {workdir} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run(
        [*run_as, f"{PG_BIN}/pg_ctl", "-D", datadir, "-o", options, "-w", "-l", f"{workdir}/log", "start"],
        check=True,
        capture_output=True,
    )
    admin = {"host": "127.0.0.1", "port": port, "user": "postgres", "password": "admin-password"}
    for _ in range(50):
        try:
            psycopg.connect(dbname="postgres", **admin).close()
            break
        except psycopg.OperationalError:
            time.sleep(0.1)
    try:
        yield port, admin
    finally:
        subprocess.run([*run_as, f"{PG_BIN}/pg_ctl", "-D", datadir, "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
def password_role(password_server):
    """A role with a known password on the private server, and the database it owns."""
    port, admin = password_server
    with psycopg.connect(dbname="postgres", autocommit=True, **admin) as conn:
        conn.execute("DROP DATABASE IF EXISTS tcpw WITH (FORCE)")
        conn.execute("DROP ROLE IF EXISTS tcpw")
        conn.execute(sql.SQL("CREATE ROLE tcpw LOGIN PASSWORD {}").format(sql.Literal("right-password")))
        conn.execute("CREATE DATABASE tcpw OWNER tcpw")
    return port
