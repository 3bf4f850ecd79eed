"""messaging/pools.py: the connections the console's pages keep between requests, against the
real PostgreSQL and Redis."""

from __future__ import annotations

import multiprocessing
import socket
import time

import psycopg
import pytest
from django.conf import settings

from messaging import pools
from tests.conftest import PG_ADMIN


def _backend_pid(conninfo: dict) -> int:
    with pools.postgres(conninfo, timeout=5) as conn:
        return conn.execute("SELECT pg_backend_pid()").fetchone()[0]


def _conninfo(postgres, **overrides) -> dict:
    return {**PG_ADMIN, "dbname": postgres.database("imp_pool"), "connect_timeout": 5, **overrides}


def test_a_page_borrows_the_same_connection_again_instead_of_connecting(postgres):
    conninfo = _conninfo(postgres)
    assert _backend_pid(conninfo) == _backend_pid(conninfo) == _backend_pid(conninfo)


def test_a_borrowed_connection_commits_on_success_and_rolls_back_on_an_error(postgres):
    conninfo = _conninfo(postgres)
    with pools.postgres(conninfo, timeout=5) as conn:
        conn.execute("CREATE TABLE t (n int)")
    with pytest.raises(ZeroDivisionError), pools.postgres(conninfo, timeout=5) as conn:
        conn.execute("INSERT INTO t VALUES (1)")
        1 / 0  # noqa: B018
    with pools.postgres(conninfo, timeout=5) as conn:
        assert conn.execute("SELECT count(*) FROM t").fetchone()[0] == 0


def test_a_connection_the_server_ended_is_replaced_before_it_is_lent(postgres):
    conninfo = _conninfo(postgres)
    first = _backend_pid(conninfo)
    with psycopg.connect(dbname="postgres", autocommit=True, **PG_ADMIN) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (first,))
    assert _backend_pid(conninfo) != first


def test_new_connection_settings_get_a_new_pool_and_the_old_one_is_closed(postgres):
    conninfo = _conninfo(postgres)
    _backend_pid(conninfo)
    old = next(iter(pools._pools.values()))
    _backend_pid({**conninfo, "application_name": "imp-admin-new"})
    assert len(pools._pools) == 1 and old.closed


def test_an_unreachable_database_says_why_at_once_and_keeps_no_pool(postgres):
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    started = time.monotonic()
    with pytest.raises(psycopg.OperationalError, match="refused"):
        _backend_pid({**PG_ADMIN, "port": port, "dbname": "nothing", "connect_timeout": 5})
    assert time.monotonic() - started < 4 and not pools._pools


def _child_pid(conninfo: dict, queue) -> None:
    queue.put(_backend_pid(conninfo))


def test_a_forked_process_never_uses_its_parents_connections(postgres):
    conninfo = _conninfo(postgres)
    parent = _backend_pid(conninfo)
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_child_pid, args=(conninfo, queue))
    child.start()
    child.join(30)
    assert queue.get(timeout=5) != parent
    assert _backend_pid(conninfo) == parent  # and the parent's still works


def test_one_redis_client_per_process():
    client = pools.redis_client(settings.REDIS_URL)
    assert pools.redis_client(settings.REDIS_URL) is client
    assert client.ping()
    pools.close_all()
