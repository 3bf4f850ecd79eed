"""Personas and topology builders shared by every suite."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import psycopg
import pytest
from django.contrib.auth.models import Group, User
from django.db import close_old_connections, connection
from django.test import Client
from psycopg import sql

from imp_admin.roles import OPERATOR, READ_ONLY, SUPER_ADMINISTRATOR
from messaging import pools
from topology.choices import NodeRole
from topology.models import Cluster, EndUser, Node, RedundancyGroup

PASSWORD = "correct-horse-battery-staple"

T = TypeVar("T")


def chat_password(user: str) -> str:
    """The chat password the suites give an end user (test data): ``andy`` → ``andy-chat-password``."""
    return f"{user.partition('@')[0]}-chat-password"


def chat_user(user_id: str, node: Node | None = None, **fields) -> EndUser:
    """An end user with the password ``chat_password(user_id)``, ready to sign in on a chat port."""
    from topology.credentials import set_password

    user = EndUser.objects.create(user_id=user_id, jid=f"{user_id}@example.com", assigned_node=node, **fields)
    set_password(user, chat_password(user_id))
    return user


def _persona(username: str, role: str | None) -> User:
    user = User.objects.create_user(username, password=PASSWORD)
    if role:
        user.groups.add(Group.objects.get(name=role))
    return user


@pytest.fixture
def super_admin(db) -> User:
    return _persona("sadmin", SUPER_ADMINISTRATOR)


@pytest.fixture
def operator(db) -> User:
    return _persona("operator", OPERATOR)


@pytest.fixture
def read_only(db) -> User:
    return _persona("viewer", READ_ONLY)


def _client_for(user: User | None, enforce_csrf: bool = False) -> Client:
    client = Client(enforce_csrf_checks=enforce_csrf)
    if user is not None:
        client.force_login(user)
    return client


@pytest.fixture
def super_client(super_admin) -> Client:
    return _client_for(super_admin)


@pytest.fixture
def operator_client(operator) -> Client:
    return _client_for(operator)


@pytest.fixture
def read_only_client(read_only) -> Client:
    return _client_for(read_only)


@pytest.fixture
def anon_client(db) -> Client:
    return Client()


@pytest.fixture
def personas(super_admin, operator, read_only):
    """Clients by persona name, for tests that walk every role."""
    return {
        "anonymous": Client(),
        "read_only": _client_for(read_only),
        "operator": _client_for(operator),
        "super_admin": _client_for(super_admin),
    }


class TopologyBuilder:
    """Small helpers to build clusters, nodes and groups in tests."""

    port = 20000

    def cluster(self, name: str = "cluster1", cluster_id: str | None = None) -> Cluster:
        return Cluster.objects.create(name=name, cluster_id=cluster_id or name.lower(), domain="example.com")

    def node(self, name: str, cluster: Cluster, role: str = NodeRole.SUBSCRIBER) -> Node:
        TopologyBuilder.port += 1
        return Node.objects.create(
            name=name, cluster=cluster, role=role, ip_address="127.0.0.1", agent_port=TopologyBuilder.port
        )

    def group(self, name: str, server1: Node, server2: Node | None = None, ha: bool = False) -> RedundancyGroup:
        group = RedundancyGroup.objects.create(name=name, cluster=server1.cluster, ha_enabled=False)
        group.set_servers(server1, server2)
        if ha:
            group.ha_enabled = True
            group.full_clean()
            group.save()
        return group


@pytest.fixture
def build(db) -> TopologyBuilder:
    return TopologyBuilder()


@pytest.fixture
def demo_topology(db):
    """The reference use case: cluster1 with 1A+1B and 2A+2B in HA groups, cluster2 without HA."""
    from io import StringIO

    from django.core.management import call_command

    call_command("load_demo", admin_password="demo-admin-password", stdout=StringIO())
    return {node.name: node for node in Node.objects.all()}


# --- Throw-away PostgreSQL databases for external-database, merge and chat tests ----------

PG_ADMIN = {
    "host": os.environ.get("PGHOST", "127.0.0.1"),
    "port": int(os.environ.get("PGPORT", "5432")),
    "user": os.environ.get("PGUSER", "postgres"),
}


class PostgresFactory:
    """Creates databases (and roles) on the local PostgreSQL server and drops them after."""

    def __init__(self) -> None:
        self.databases: list[str] = []
        self.roles: list[str] = []

    def _admin(self):
        return psycopg.connect(dbname="postgres", autocommit=True, **PG_ADMIN)

    def database(self, prefix: str = "imp_test", owner: str | None = None) -> str:
        name = f"{prefix}_{uuid.uuid4().hex[:10]}"
        with self._admin() as conn:
            query = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
            if owner:
                query += sql.SQL(" OWNER {}").format(sql.Identifier(owner))
            conn.execute(query)
        self.databases.append(name)
        return name

    def role(self, prefix: str = "imp_role", password: str = "role-password") -> str:
        name = f"{prefix}_{uuid.uuid4().hex[:8]}"
        with self._admin() as conn:
            conn.execute(
                sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(name), sql.Literal(password))
            )
        self.roles.append(name)
        return name

    def connect(self, dbname: str, **kwargs):
        return psycopg.connect(dbname=dbname, **{**PG_ADMIN, **kwargs})

    def cleanup(self) -> None:
        with self._admin() as conn:
            for name in reversed(self.databases):
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
            for name in reversed(self.roles):
                conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))


@pytest.fixture
def postgres():
    """A factory of throw-away PostgreSQL databases and roles, dropped after the test."""
    factory = PostgresFactory()
    yield factory
    pools.close_all()  # the pages' pooled connections to them (messaging/pools.py)
    factory.cleanup()


# --- Headless Chromium (Debian's package) driven by Playwright ------------------------------

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def browser_page(live_server, monkeypatch):
    """A Playwright page in headless Chromium, with ``page.base_url`` set to the live server.

    Playwright's sync API runs an event loop in the test's thread; the ORM calls the test
    makes between browser steps are still plain synchronous calls.
    """
    from playwright.sync_api import sync_playwright

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        context = browser.new_context(base_url=live_server.url, viewport={"width": 1400, "height": 900})
        page = context.new_page()
        page.set_default_timeout(15_000)
        yield page
        context.close()
        browser.close()


def browser_login(page, username: str, password: str = PASSWORD) -> None:
    page.goto("/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url("**/")


# --- Real processes: a Celery worker, and waiting for what they do --------------------------

ROOT = Path(__file__).resolve().parents[1]


def wait_for(predicate: Callable[[], T], timeout: float, what: str | Callable[[], str], interval: float = 0.1) -> T:
    """Poll ``predicate`` until it returns something true and return that; after ``timeout``
    seconds fail saying ``what`` did not happen (a string, or a callable that describes the
    state of things at that moment). The one wait of every suite and of ``bench/``.

    Outside a test transaction, a config DB connection that broke (another process held the
    lock too long, say) is replaced between two looks, as a request would.
    """
    deadline = time.monotonic() + timeout
    while True:
        if not connection.in_atomic_block:
            close_old_connections()
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"Timed out after {timeout} s waiting for: {what() if callable(what) else what}")
        time.sleep(interval)


async def wait_for_async(predicate: Callable[[], T], timeout: float, what: str, interval: float = 0.05) -> T:
    """``wait_for`` inside an event loop: the same arguments, the loop runs between two looks
    (the predicate runs on the loop, so it must not block)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"Timed out after {timeout} s waiting for: {what}")
        await asyncio.sleep(interval)


@contextmanager
def celery_process(tmp_path, name: str, *arguments: str, env: dict | None = None):
    """A real ``celery -A imp_admin ARGUMENTS`` subprocess sharing the test config DB file,
    its output in ``tmp_path/NAME.log`` (``process.log_path``); stopped when the block ends."""
    from django.conf import settings

    env = {**os.environ, "SQLITE_PATH": str(settings.DATABASES["default"]["NAME"]), **(env or {})}
    log_path = tmp_path / f"{name}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(Path(sys.executable).parent / "celery"), "-A", "imp_admin", *arguments],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    process.log_path = log_path
    try:
        yield process
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def worker_arguments(pool: str, *extra: str) -> list[str]:
    """A worker on this run's queue, without the cluster chatter a lone test worker needs not."""
    queue = os.environ["CELERY_TASK_DEFAULT_QUEUE"]
    return [
        "worker",
        f"--pool={pool}",
        *extra,
        "-Q",
        queue,
        "--loglevel=INFO",
        "--without-heartbeat",
        "--without-gossip",
        "--without-mingle",
    ]


@pytest.fixture
def celery_worker(transactional_db, tmp_path):
    """A real Celery worker subprocess (solo pool) on this run's queue, sharing the test config
    DB file. Its output goes to ``process.log_path`` (read it with ``worker_log(process)``)."""
    with celery_process(tmp_path, "worker", *worker_arguments("solo")) as process:
        yield process


def worker_log(process, tail: int = 3000) -> str:
    """The last ``tail`` characters a worker started by ``celery_worker`` printed."""
    return process.log_path.read_text(errors="replace")[-tail:]
