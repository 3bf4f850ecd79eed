"""Connections the console's pages keep between requests: to external PostgreSQL databases
(the room report reads a chat database on every view) and to Redis (occupant counts).

Opening a PostgreSQL connection costs a TCP handshake, authentication and a new server
process on every page view; a Redis client built per call does the same on a smaller scale.
Each process keeps instead a small psycopg pool per database and connection settings, and
one Redis client, created on first use: a process started by a fork (a gunicorn worker)
never uses its parent's, because a socket shared by two processes mixes their replies.
"""

from __future__ import annotations

import os
import threading
from contextlib import contextmanager

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout
from redis import Redis

POOL_SIZE = 4  # connections at most per database and process: a gunicorn worker's threads
POOL_IDLE = 300  # seconds before an idle connection is closed

_lock = threading.Lock()
_owner = os.getpid()
_pools: dict[tuple, ConnectionPool] = {}
_redis: dict[str, Redis] = {}


def _this_process() -> None:
    """Forget what a parent process opened (called with ``_lock`` held)."""
    global _owner
    if _owner != os.getpid():
        _owner = os.getpid()
        _pools.clear()  # the parent's; closing them here would close the parent's sockets
        _redis.clear()


@contextmanager
def postgres(conninfo: dict, timeout: float):
    """A connection to the database ``conninfo`` describes, borrowed for the ``with`` block.

    Commits on success and rolls back on an exception, as ``psycopg.connect`` does. The first
    connection is made directly, so a database that cannot be reached says why at once (the
    pool would only time out); a pool that times out later is dropped for the same reason.
    """
    key = tuple(sorted(conninfo.items()))
    with _lock:
        _this_process()
        pool = _pools.get(key)
    if pool is None:
        psycopg.connect(**conninfo).close()
        pool = _new_pool(key, conninfo, timeout)
    try:
        with pool.connection(timeout=timeout) as conn:
            yield conn
    except PoolTimeout:
        _drop(key, pool)
        raise


def _new_pool(key: tuple, conninfo: dict, timeout: float) -> ConnectionPool:
    database = (conninfo.get("host"), conninfo.get("port"), conninfo.get("dbname"))
    with _lock:
        if key in _pools:
            return _pools[key]
        # Settings changed (a new password, say): the pools made with the old ones go.
        stale = [k for k in _pools if (dict(k).get("host"), dict(k).get("port"), dict(k).get("dbname")) == database]
        for old in stale:
            _pools.pop(old).close(timeout=0)
        pool = ConnectionPool(
            kwargs=conninfo,
            # None kept open for nothing: an idle pool holds no connection and retries nothing.
            min_size=0,
            max_size=POOL_SIZE,
            max_idle=POOL_IDLE,
            timeout=timeout,
            # A connection the server ended (a restart) is replaced before it is lent.
            check=ConnectionPool.check_connection,
            name=f"imp-admin:{conninfo.get('dbname')}",
            num_workers=1,  # the thread that opens connections; pages only borrow them
            open=True,
        )
        _pools[key] = pool
        return pool


def _drop(key: tuple, pool: ConnectionPool) -> None:
    with _lock:
        if _pools.get(key) is pool:
            del _pools[key]
    pool.close(timeout=0)


def redis_client(url: str) -> Redis:
    """This process's Redis client for ``url`` (redis-py clients are safe to share between threads)."""
    with _lock:
        _this_process()
        client = _redis.get(url)
        if client is None:
            client = _redis[url] = Redis.from_url(
                url, socket_timeout=2, socket_connect_timeout=2, decode_responses=True
            )
        return client


def close_all() -> None:
    """Close every pool and client of this process (tests, and a worker that exits)."""
    with _lock:
        pools, clients = list(_pools.values()), list(_redis.values())
        _pools.clear()
        _redis.clear()
    for pool in pools:
        pool.close(timeout=0)
    for client in clients:
        client.close()
