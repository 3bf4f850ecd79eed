"""The reference use cases of high availability for persistent chat (seed-ha-persistent-chat),
with real node agents (``manage.py run_node``), real PostgreSQL and Redis.

Andy (1A), Bob (1B), Catherine (2A) and Deborah (2B) chat in one room hosted on 1A; Erin, a
user of cluster 2 (no persistent chat there), joins the same room across clusters. Everyone
posts continuously through a TC failure on 1A, the failover, the Fallback, and (separately)
a SIGKILL of 1A's agent. Every message acknowledged to anyone must be in the room's history
exactly once, in the order each sender had it acknowledged.
"""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from tests.agent import conftest as agent_fixtures
from tests.agent.conftest import reference_use_case, state_of, tc_started
from tests.agent.test_failover import control
from tests.conftest import chat_password, wait_for
from topology.choices import HAReason, HAState
from topology.models import Node

pytestmark = pytest.mark.slow

# Real node agents as subprocesses, shared with the agent suite.
agents = agent_fixtures.agents

USERS = {"andy": "1a", "bob": "1b", "catherine": "2a", "deborah": "2b", "erin": "c2a"}


@pytest.fixture
def reference(transactional_db, postgres):
    """The use case's topology and users."""
    return reference_use_case(postgres, "imp_usecase", USERS).nodes


def ready(nodes: dict[str, Node]) -> bool:
    normal = all(state_of(nodes[key].name)[0] == HAState.NORMAL for key in ("1a", "1b", "2a", "2b"))
    return normal and all(tc_started(node) for node in nodes.values())


class Chatter:
    """A user posting continuously; records each acknowledgement in order."""

    def __init__(self, user: str, node: Node) -> None:
        from messaging.chat.client import ChatClient

        self.user = user
        self.client = ChatClient(
            user, node.agent_host, node.agent_port, password=chat_password(user), max_relogin_delay=1, give_up_after=90
        )
        self.acked: list[tuple[int, str]] = []
        self.task: asyncio.Task | None = None

    async def keep_posting(self, room: str, stop: asyncio.Event) -> None:
        n = 0
        while not stop.is_set():
            body = f"{self.user} {n}"
            ack = await self.client.post(room, body, retry_for=90)
            self.acked.append((ack["msg_id"], body))
            n += 1
            await asyncio.sleep(0.05)


async def whole_history(client, room: str) -> list[dict]:
    messages: list[dict] = []
    after = 0
    while True:
        page = (await client.history(room, after=after, limit=100))["messages"]
        if not page:
            return messages
        messages += page
        after = page[-1]["msg_id"]


def assert_nothing_lost_or_doubled(history: list[dict], chatters: list[Chatter]) -> None:
    ids = [m["msg_id"] for m in history]
    assert ids == list(range(1, len(ids) + 1))
    stored = {m["msg_id"]: m["body"] for m in history}
    acked = [ack for chatter in chatters for ack in chatter.acked]
    assert len({msg_id for msg_id, _ in acked}) == len(acked)  # no two acks share a stored message
    for msg_id, body in acked:
        assert stored[msg_id] == body
    bodies = [m["body"] for m in history]
    assert len(bodies) == len(set(bodies))  # nothing stored twice
    for chatter in chatters:
        ids_in_ack_order = [msg_id for msg_id, _ in chatter.acked]
        assert ids_in_ack_order == sorted(ids_in_ack_order)
        assert len(chatter.acked) > 0


async def in_thread(function, *args):
    return await asyncio.to_thread(function, *args)


async def start_chatting(nodes) -> tuple[str, list[Chatter], asyncio.Event]:
    chatters = [Chatter(user, nodes[key]) for user, key in USERS.items()]
    for chatter in chatters:
        await chatter.client.connect()
    room = (await chatters[0].client.create("ops", subject="Use case"))["room"]
    for chatter in chatters:
        await chatter.client.join(room)
    stop = asyncio.Event()
    for chatter in chatters:
        chatter.task = asyncio.create_task(chatter.keep_posting(room, stop))
    return room, chatters, stop


async def acks_after(chatter: Chatter, count: int, timeout: float = 60) -> None:
    target = len(chatter.acked) + count
    async with asyncio.timeout(timeout):
        while len(chatter.acked) < target:
            await asyncio.sleep(0.05)


async def finish(room, chatters, stop) -> list[dict]:
    stop.set()
    await asyncio.gather(*(chatter.task for chatter in chatters))
    history = await whole_history(chatters[1].client, room)
    # Every reader, Andy included, ends with the whole room (live messages plus gaps filled).
    for chatter in chatters:
        view = chatter.client.rooms[room]
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(10):
                while len(view.messages) < len(history):
                    await asyncio.sleep(0.05)
        assert sorted(view.messages) == [m["msg_id"] for m in history], chatter.user
    for chatter in chatters:
        await chatter.client.close()
    return history


def test_failover_then_fallback_loses_and_doubles_no_acknowledged_message(reference, agents, operator_client):
    nodes = reference
    for node in nodes.values():
        agents(node.name)
    wait_for(lambda: ready(nodes), 60, "every node Normal with its TC started")
    group = nodes["1a"].redundancy_group

    async def scenario():
        room, chatters, stop = await start_chatting(nodes)
        andy = chatters[0]
        await acks_after(andy, 5)
        # 1. The TC on 1A fails; after the critical service delay 1B takes Andy and the room.
        await in_thread(control, operator_client, nodes["1a"], "stop")
        await in_thread(
            wait_for,
            lambda: state_of(nodes["1b"].name) == (HAState.RUNNING_IN_BACKUP_MODE, HAReason.CRITICAL_SERVICE_DOWN),
            60,
            "1B Running in Backup Mode",
        )
        async with asyncio.timeout(60):
            while andy.client.node != nodes["1b"].name:
                await asyncio.sleep(0.05)
        for chatter in chatters:
            await acks_after(chatter, 5)  # Andy keeps posting on 1B, the others throughout
        after_failover = len(andy.acked)
        # 2. The administrator starts TC on 1A again and presses Fallback.
        await in_thread(control, operator_client, nodes["1a"], "start")
        await in_thread(wait_for, lambda: state_of(nodes["1a"].name)[0] == HAState.FAILED_OVER, 60, "1A Failed Over")
        response = await in_thread(
            lambda: operator_client.post(
                f"/system/redundancy-groups/{group.pk}/server-action/",
                {"node": nodes["1a"].pk, "action": "fallback"},
                follow=True,
            )
        )
        assert "Fallback of" in response.content.decode()
        await in_thread(
            wait_for,
            lambda: all(state_of(nodes[k].name)[0] == HAState.NORMAL for k in ("1a", "1b")),
            60,
            "both Normal after fallback",
        )
        async with asyncio.timeout(60):
            while andy.client.node != nodes["1a"].name:
                await asyncio.sleep(0.05)
        for chatter in chatters:
            await acks_after(chatter, 5)
        history = await finish(room, chatters, stop)
        return history, chatters, after_failover, andy.client.reconnects

    history, chatters, after_failover, reconnects = asyncio.run(scenario())
    assert reconnects == 2  # told to reconnect to 1B, then back to 1A
    assert after_failover >= 5
    assert_nothing_lost_or_doubled(history, chatters)
    senders = {m["from"] for m in history}
    assert senders == {f"{user}@example.com" for user in USERS}  # cluster 2's Erin included


def test_killing_the_hosting_nodes_agent_loses_and_doubles_no_acknowledged_message(reference, agents):
    nodes = reference
    started = {key: agents(node.name) for key, node in nodes.items()}
    wait_for(lambda: ready(nodes), 60, "every node Normal with its TC started")

    async def scenario():
        room, chatters, stop = await start_chatting(nodes)
        andy = chatters[0]
        await acks_after(andy, 5)
        await in_thread(started["1a"].kill)  # SIGKILL: no goodbye, no clean stop
        await in_thread(
            wait_for,
            lambda: state_of(nodes["1b"].name) == (HAState.RUNNING_IN_BACKUP_MODE, HAReason.PEER_DOWN),
            60,
            "1B took over with Peer Down",
        )
        async with asyncio.timeout(60):
            while andy.client.node != nodes["1b"].name:
                await asyncio.sleep(0.05)
        for chatter in chatters:
            await acks_after(chatter, 5)
        history = await finish(room, chatters, stop)
        return history, chatters

    history, chatters = asyncio.run(scenario())
    assert_nothing_lost_or_doubled(history, chatters)
