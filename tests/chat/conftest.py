"""Fixtures for the chat suites: a throw-away external database with the TC schema, a bus
prefix of the test's own, and nodes whose XCP Router and Text Conference Manager run in the
test's event loop (in-process) against real PostgreSQL and Redis."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import threading
import uuid
from dataclasses import dataclass, field

import pytest
from django.conf import settings

from messaging.chat.client import ChatClient
from messaging.models import ChatSettings
from messaging.router.core import XcpRouter
from messaging.tc.service import TextConferenceManager
from tests.conftest import chat_password, chat_user
from tests.scenario import Scenario, external_database, install_schema
from topology.models import EndUser, Node


@pytest.fixture
def bus_prefix(settings) -> str:
    settings.CHAT_BUS_PREFIX = f"imp-chat-test-{uuid.uuid4().hex[:10]}"
    return settings.CHAT_BUS_PREFIX


@pytest.fixture
def tc_database(postgres) -> str:
    """A PostgreSQL database with the persistent chat schema installed."""
    name = postgres.database("imp_chat")
    install_schema(postgres, name)
    return name


@dataclass
class ChatWorld:
    """Two clusters: cluster1 (1A+1B in an HA group, one external DB), cluster2 (node C2A)."""

    nodes: dict[str, Node]
    database: str
    settings: dict[str, ChatSettings]
    users: dict[str, EndUser] = field(default_factory=dict)

    def user(self, user_id: str, node: str) -> EndUser:
        user = chat_user(user_id, self.nodes[node])
        self.users[user_id] = user
        return user

    def configure(self, cluster: str = "cluster1", **values) -> None:
        chat = self.settings[cluster]
        for name, value in values.items():
            setattr(chat, name, value)
        chat.full_clean()
        chat.save()


@pytest.fixture
def world(transactional_db, tc_database, bus_prefix) -> ChatWorld:
    scenario = Scenario()
    cluster1 = scenario.cluster("cluster1", "imp1")
    cluster2 = scenario.cluster("cluster2", "imp2")
    for key, cluster in (("1a", cluster1), ("1b", cluster1), ("c2a", cluster2)):
        scenario.node(key, cluster)
    scenario.group("subcluster1", "1a", "1b", ha=True)
    scenario.group("c2-subcluster1", "c2a")
    scenario.assign(external_database(tc_database), "1a", "1b")
    settings = {}
    for cluster in (cluster1, cluster2):
        settings[cluster.name] = ChatSettings.for_cluster(cluster)
    settings["cluster1"].enable_persistent_chat = True
    settings["cluster1"].save()
    return ChatWorld({node.name: node for node in scenario.nodes.values()}, tc_database, settings)


class RunningNode:
    """A node's XCP Router and Text Conference Manager running in the current event loop."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self.router = XcpRouter(node)
        self.tc = TextConferenceManager(node, self.router)

    async def start(self) -> RunningNode:
        await self.router.start()
        await self.tc.start()
        return self

    async def stop(self) -> None:
        with contextlib.suppress(Exception):
            await self.tc.stop()
        with contextlib.suppress(Exception):
            await self.router.stop()


@contextlib.asynccontextmanager
async def running(*nodes: Node):
    started = []
    try:
        for node in nodes:
            started.append(await RunningNode(node).start())
        yield started
    finally:
        for item in reversed(started):
            await item.stop()


@contextlib.asynccontextmanager
async def signed_in(node: Node, *users: str):
    clients = [
        ChatClient(
            user,
            node.agent_host,
            node.agent_port,
            password=chat_password(user),
            max_relogin_delay=1,
            give_up_after=20,
        )
        for user in users
    ]
    try:
        for client in clients:
            await client.connect()
        yield clients
    finally:
        for client in clients:
            with contextlib.suppress(Exception):
                await client.close()


async def next_event(client: ChatClient, kind: str, timeout: float = 5.0) -> dict:
    """The next event of ``kind`` the client receives (others are skipped)."""
    async with asyncio.timeout(timeout):
        while True:
            event = await client.events.get()
            if event.get("type") == kind:
                return event


def run(coroutine):
    return asyncio.run(coroutine)


class NodesInThread:
    """In-process nodes on an event loop of their own thread, for tests that run a client
    as a separate process (``manage.py chat``)."""

    def __init__(self, *nodes: Node) -> None:
        self.nodes = nodes
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.running: list[RunningNode] = []

    def __enter__(self) -> NodesInThread:
        self.thread.start()
        for node in self.nodes:
            future = asyncio.run_coroutine_threadsafe(RunningNode(node).start(), self.loop)
            self.running.append(future.result(30))
        return self

    def __exit__(self, *exc) -> None:
        for item in reversed(self.running):
            asyncio.run_coroutine_threadsafe(item.stop(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


def manage(*args: str, stdin: str | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    """Run ``manage.py`` against this test's config DB."""
    env = {**os.environ, "SQLITE_PATH": settings.DATABASES["default"]["NAME"], "CHAT_BUS_PREFIX": bus_prefix_now()}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=settings.BASE_DIR,
    )


def bus_prefix_now() -> str:
    return getattr(settings, "CHAT_BUS_PREFIX", "") or ""


# The XMPP suites' fixture (nodes with an XMPP client port), kept with its helpers.
from tests.chat.xmpp import xworld  # noqa: E402,F401
