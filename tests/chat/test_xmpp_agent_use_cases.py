"""The reference's SIGKILL and intercluster use cases replayed with standard XMPP clients
(slixmpp) against real node agents (``manage.py run_node``), real PostgreSQL and Redis.

Andy (1A), Bob (1B), Catherine (2A), Deborah (2B) and 46 more XMPP users, a fifth of them on
cluster 2's node C2A (cluster 2 has no persistent chat: its users join cluster 1's rooms), share
one room with two users of the JSON protocol, Frank (1B) and Erin (C2A). Everyone posts
throughout.

- SIGKILL of 1A's agent: its users lose their connection without a word. Each client connects
  again, trying its node and then the node's backup (as a client tries its domain's SRV
  records), tries to resume its XEP-0198 session there (which fails: the session was on 1A),
  signs in, rejoins and catches up from the archive after the last stanza-id it saw.
- Intercluster: the room is hosted on 2A; cluster 2's users reach it through their own node's
  router; the Text Conference Manager of 2A is stopped and 2B takes the room over.

Every reflected (or acknowledged) message is in the archive exactly once, in its sender's
order; every XMPP client ends with the whole archive; each user's longest gap (post to
reflection) is reported.
"""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from tests.agent import conftest as agent_fixtures
from tests.agent.conftest import reference_use_case, state_of
from tests.agent.test_failover import control
from tests.chat.test_use_cases import Chatter as JsonChatter
from tests.chat.test_use_cases import ready
from tests.chat.xmpp import Chatter, assert_each_message_once_in_sender_order, whole_archive
from tests.conftest import wait_for
from tests.scenario import give_xmpp_ports
from topology.choices import HAReason, HAState

pytestmark = pytest.mark.slow

agents = agent_fixtures.agents

NAMED = {"andy": "1a", "bob": "1b", "catherine": "2a", "deborah": "2b"}
OTHERS = 46
JSON_USERS = {"frank": "1b", "erin": "c2a"}  # Frank creates the room
PEER = {"1a": "1b", "1b": "1a", "2a": "2b", "2b": "2a"}


def xmpp_users() -> dict[str, str]:
    everyone = dict(NAMED)
    keys = ("1a", "1b", "2a", "2b", "c2a")
    for n in range(1, OTHERS + 1):
        everyone[f"user{n:02d}"] = keys[n % len(keys)]
    return everyone


@pytest.fixture
def topology(transactional_db, postgres):
    """The reference topology (cluster 2's C2A without persistent chat), an XMPP client port on
    every node, the users."""
    nodes = reference_use_case(postgres, "imp_xmpp_usecase", {**xmpp_users(), **JSON_USERS}).nodes
    give_xmpp_ports(nodes.values())
    return nodes


def xmpp_chatters(nodes, room: str) -> list[Chatter]:
    return [
        Chatter(
            user,
            nodes[key].xmpp_port,
            room,
            resume=True,
            fallbacks=(nodes[PEER[key]].xmpp_port,) if key in PEER else (nodes[key].xmpp_port,),
        )
        for user, key in xmpp_users().items()
    ]


async def reflections_after(chatters: list[Chatter], count: int, timeout: float = 120) -> None:
    targets = {chatter: len(chatter.reflected) + count for chatter in chatters}
    try:
        async with asyncio.timeout(timeout):
            while any(len(chatter.reflected) < target for chatter, target in targets.items()):
                await asyncio.sleep(0.1)
    except TimeoutError:
        behind = [
            (
                c.user_id,
                len(c.reflected),
                f"sessions={c.sessions} joined={c.joined.is_set()} connected={c.client.is_connected()}",
                f"address={c.client.custom_address} errors={[e['condition'] for e in c.client.stream_errors]}",
                f"sm_failures={len(c.client.sm_failures)} pending={list(c.pending)} errors={c.errors}",
            )
            for c, target in targets.items()
            if len(c.reflected) < target
        ]
        raise AssertionError(f"no reflection within {timeout} s for: {behind}") from None


async def acks_after(chatters: list[JsonChatter], count: int, timeout: float = 120) -> None:
    targets = {chatter: len(chatter.acked) + count for chatter in chatters}
    async with asyncio.timeout(timeout):
        while any(len(chatter.acked) < target for chatter, target in targets.items()):
            await asyncio.sleep(0.1)


async def in_thread(function, *args):
    return await asyncio.to_thread(function, *args)


async def start_everyone(nodes, room: str):
    json_users = [JsonChatter(user, nodes[key]) for user, key in JSON_USERS.items()]
    await json_users[0].client.connect()
    await json_users[0].client.create(room, subject="Use case", max_occupants=100)  # the default holds 50
    chatters = xmpp_chatters(nodes, room)
    for chatter in chatters:
        await chatter.start()
    for json_user in json_users[1:]:
        await json_user.client.connect()
    for json_user in json_users:
        await json_user.client.join(room)
    stop = asyncio.Event()
    posting = [
        asyncio.create_task(chatter.keep_posting(stop, 0.2 if chatter.user_id in NAMED else 2.0))
        for chatter in chatters
    ]
    for json_user in json_users:
        json_user.task = asyncio.create_task(json_user.keep_posting(room, stop))
        posting.append(json_user.task)
    return chatters, json_users, stop, posting


async def finish(room: str, chatters: list[Chatter], json_users: list[JsonChatter], stop, posting):
    stop.set()
    await asyncio.gather(*posting)
    archive = await whole_archive(chatters[1].client, room)
    with contextlib.suppress(TimeoutError):  # the last live messages reach everyone
        async with asyncio.timeout(30):
            while any(len(c.seen) < len(archive) for c in chatters) or any(
                len(j.client.rooms[room].messages) < len(archive) for j in json_users
            ):
                await asyncio.sleep(0.1)
    json_views = {j.user: sorted(m["body"] for m in j.client.rooms[room].messages.values()) for j in json_users}
    for chatter in chatters:
        await chatter.client.stop()
    for json_user in json_users:
        await json_user.client.close()
    return archive, json_views


def assert_the_room_is_whole(archive, chatters: list[Chatter], json_users: list[JsonChatter], json_views) -> None:
    assert_each_message_once_in_sender_order(archive, chatters)
    bodies = [body for _, body in archive]
    for json_user in json_users:
        assert json_user.acked, f"{json_user.user} had no message acknowledged"
        own = [body for body in bodies if body.startswith(f"{json_user.user} ")]
        assert own == [body for _, body in json_user.acked], json_user.user
        assert json_views[json_user.user] == sorted(bodies), json_user.user
    senders = {body.split()[0] for body in bodies}
    assert {*NAMED, *JSON_USERS} <= senders
    assert {user for user, key in xmpp_users().items() if key == "c2a"} <= senders  # cluster 2 over XMPP


def report_gaps(record_property, chatters: list[Chatter], json_users: list[JsonChatter]) -> dict[str, float]:
    gaps = {chatter.user_id: round(chatter.longest_gap, 2) for chatter in chatters}
    record_property("longest_gap_seconds", gaps)
    record_property("longest_gap_seconds_max", max(gaps.values()))
    print("longest gap per XMPP user (s):", gaps)
    print("acknowledged per JSON user:", {j.user: len(j.acked) for j in json_users})
    return gaps


def test_killing_1a_agent_with_fifty_xmpp_users_loses_and_doubles_nothing(topology, agents, record_property):
    nodes = topology
    started = {key: agents(node.name) for key, node in nodes.items()}
    wait_for(lambda: ready(nodes), 90, "every node Normal with its TC started")
    room = f"ha-demo@conference-{nodes['1a'].pk}-imp1.example.com"

    async def scenario():
        chatters, json_users, stop, posting = await start_everyone(nodes, room)
        named = [c for c in chatters if c.user_id in NAMED]
        andy = named[0]
        await reflections_after(named, 3)
        await in_thread(started["1a"].kill)  # SIGKILL: no goodbye, no see-other-host
        await in_thread(
            wait_for,
            lambda: state_of(nodes["1b"].name) == (HAState.RUNNING_IN_BACKUP_MODE, HAReason.PEER_DOWN),
            60,
            "1B took over with Peer Down",
        )
        async with asyncio.timeout(90):
            while andy.sessions < 2:
                await asyncio.sleep(0.1)
        await reflections_after(chatters, 2)
        await acks_after(json_users, 2)
        archive, json_views = await finish(room, chatters, json_users, stop, posting)
        return archive, chatters, json_users, json_views

    archive, chatters, json_users, json_views = asyncio.run(scenario())
    report_gaps(record_property, chatters, json_users)
    assert_the_room_is_whole(archive, chatters, json_users, json_views)
    moved = [c for c in chatters if xmpp_users()[c.user_id] == "1a"]
    stayed = [c for c in chatters if xmpp_users()[c.user_id] != "1a"]
    assert all(c.sessions == 2 and c.client.custom_address[1] == nodes["1b"].xmpp_port for c in moved)
    assert all(c.client.sm_failures and "<item-not-found" in c.client.sm_failures[-1] for c in moved)
    assert all(c.sessions == 1 and c.caught_up_twice == [] for c in stayed)


def test_intercluster_xmpp_and_json_users_share_a_room_through_a_failover(
    topology, agents, operator_client, record_property
):
    nodes = topology
    for node in nodes.values():
        agents(node.name)
    wait_for(lambda: ready(nodes), 90, "every node Normal with its TC started")
    room = f"intercluster@conference-{nodes['2a'].pk}-imp1.example.com"

    async def scenario():
        chatters, json_users, stop, posting = await start_everyone(nodes, room)
        await reflections_after(chatters, 2)
        await acks_after(json_users, 3)
        # The TC hosting the room (2A) fails; after the critical service delay 2B takes it over.
        await in_thread(control, operator_client, nodes["2a"], "stop")
        await in_thread(
            wait_for,
            lambda: state_of(nodes["2b"].name) == (HAState.RUNNING_IN_BACKUP_MODE, HAReason.CRITICAL_SERVICE_DOWN),
            60,
            "2B Running in Backup Mode",
        )
        catherine = next(c for c in chatters if c.user_id == "catherine")
        async with asyncio.timeout(90):
            while catherine.sessions < 2:
                await asyncio.sleep(0.1)
        await reflections_after(chatters, 2)
        await acks_after(json_users, 3)
        archive, json_views = await finish(room, chatters, json_users, stop, posting)
        return archive, chatters, json_users, json_views

    archive, chatters, json_users, json_views = asyncio.run(scenario())
    report_gaps(record_property, chatters, json_users)
    assert_the_room_is_whole(archive, chatters, json_users, json_views)
    for chatter in chatters:
        # 2A's users were sent to 2B (see-other-host); everyone else, cluster 2 included, stayed.
        assert chatter.sessions == (2 if xmpp_users()[chatter.user_id] == "2a" else 1), chatter.user_id
