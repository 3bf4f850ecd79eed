"""Routing across nodes and clusters over the Redis bus, with every node's XCP Router and Text
Conference Manager running in-process against the shared external database."""

from __future__ import annotations

import asyncio
import json

import redis
from asgiref.sync import sync_to_async
from django.conf import settings

from messaging.chat import bus as chat_bus
from messaging.router import core as router_core
from tests.chat.conftest import next_event, run, running, signed_in
from tests.chat.xmpp import Client, add_user
from tests.conftest import wait_for_async
from topology.models import EndUser, Node


def test_posts_from_other_nodes_and_clusters_reach_the_hosting_node_and_every_occupant(world):
    world.user("andy", "imp-1a")
    world.user("bob", "imp-1b")
    world.user("erin", "imp-c2a")
    nodes = world.nodes

    async def scenario():
        async with (
            running(nodes["imp-1a"], nodes["imp-1b"], nodes["imp-c2a"]),
            signed_in(nodes["imp-1a"], "andy") as (andy,),
            signed_in(nodes["imp-1b"], "bob") as (bob,),
            signed_in(nodes["imp-c2a"], "erin") as (erin,),
        ):
            room = (await andy.create("ops"))["room"]
            for client in (andy, bob, erin):
                await client.join(room)
            presence = await erin.presence(room)
            acks = [await client.post(room, f"from {client.user}") for client in (andy, bob, erin)]
            await wait_for_async(
                lambda: all(len(c.rooms[room].messages) == 3 for c in (andy, bob, erin)),
                10.0,
                "every client to see the three posts",
            )
            return room, presence, acks, [c.rooms[room].messages for c in (andy, bob, erin)]

    room, presence, acks, seen = run(scenario())
    assert room.endswith(f"@conference-{nodes['imp-1a'].pk}-imp1.example.com")
    assert sorted(o["user"] for o in presence["occupants"]) == [
        "andy@example.com",
        "bob@example.com",
        "erin@example.com",
    ]
    assert [ack["msg_id"] for ack in acks] == [1, 2, 3]
    for messages in seen:
        assert [messages[i]["body"] for i in (1, 2, 3)] == ["from andy", "from bob", "from erin"]


def move_rooms_and_users(home: str, backup: str | None, *, announce: bool = True) -> None:
    """What the SRM writes in its failover (backup given) and fallback (None) transactions,
    then announces to the routers as a node agent's router does (``XcpRouter.users_moved``)."""
    home_node = Node.objects.get(name=home)
    Node.objects.filter(pk=home_node.pk).update(rooms_hosted_by=Node.objects.filter(name=backup).first())
    EndUser.objects.filter(assigned_node=home_node).update(active_node=Node.objects.filter(name=backup).first())
    if announce:
        announce_users_moved(backup or home)


def announce_users_moved(by: str) -> None:
    """Publish the announcement of an SRM's transition on the bus, as the router of node ``by`` does."""
    client = redis.Redis.from_url(settings.REDIS_URL)
    try:
        client.publish(chat_bus.users_moved_channel(chat_bus.bus_prefix()), json.dumps({"by": by}))
    finally:
        client.close()


def test_after_the_rooms_and_users_move_clients_reconnect_and_no_acknowledged_message_is_lost(world):
    world.user("andy", "imp-1a")
    world.user("bob", "imp-1b")
    world.user("erin", "imp-c2a")
    nodes = world.nodes

    async def scenario():
        async with (
            running(nodes["imp-1a"], nodes["imp-1b"], nodes["imp-c2a"]) as (node_1a, node_1b, _),
            signed_in(nodes["imp-1a"], "andy") as (andy,),
            signed_in(nodes["imp-1b"], "bob") as (bob,),
            signed_in(nodes["imp-c2a"], "erin") as (erin,),
        ):
            room = (await andy.create("ops"))["room"]
            for client in (andy, bob, erin):
                await client.join(room)
            acked: dict[str, list[int]] = {"andy": [], "bob": [], "erin": []}
            stop = asyncio.Event()

            async def keep_posting(client):
                n = 0
                while not stop.is_set():
                    ack = await client.post(room, f"{client.user} {n}", retry_for=30)
                    acked[client.user].append(ack["msg_id"])
                    n += 1
                    await asyncio.sleep(0.01)

            posters = [asyncio.create_task(keep_posting(c)) for c in (andy, bob, erin)]
            await asyncio.sleep(0.5)
            await node_1a.tc.stop()  # the TC of 1A fails
            await sync_to_async(move_rooms_and_users, thread_sensitive=False)("imp-1a", "imp-1b")
            await node_1b.tc.refresh_hosting()
            notice = await next_event(andy, "reconnected", timeout=20)
            await asyncio.sleep(0.5)
            stop.set()
            await asyncio.gather(*posters)
            await wait_for_async(
                lambda: all(c.rooms[room].last_id >= max(max(v) for v in acked.values()) for c in (bob, erin)),
                10.0,
                "Bob and Erin to see every acknowledged post",
            )
            history = []
            before = None
            while True:
                page = (await bob.history(room, before=before, limit=100))["messages"] if before != 1 else []
                if not page:
                    break
                history = page + history
                before = page[0]["msg_id"]
            return notice, acked, history, andy.node

    notice, acked, history, andy_node = run(scenario())
    assert notice["node"] == "imp-1b" and andy_node == "imp-1b"
    ids = [m["msg_id"] for m in history]
    assert ids == list(range(1, len(ids) + 1))
    all_acked = sorted(i for v in acked.values() for i in v)
    assert all_acked == ids  # every acknowledged message stored exactly once, nothing else stored
    for user, msg_ids in acked.items():
        bodies = [m["body"] for m in history if m["from"] == f"{user}@example.com"]
        assert bodies == [f"{user} {n}" for n in range(len(msg_ids))]
        assert msg_ids == sorted(msg_ids)


def test_a_moved_user_is_told_to_reconnect_as_soon_as_the_move_is_announced(world, monkeypatch):
    """The SRM's announcement (``XcpRouter.users_moved``, over the bus from the backup's router)
    sends the users away; the safety-net check is put an hour away, so nothing else can."""
    monkeypatch.setattr(router_core, "WATCH_SECONDS", 3600.0)
    world.user("andy", "imp-1a")
    nodes = world.nodes

    async def scenario():
        async with (
            running(nodes["imp-1a"], nodes["imp-1b"]) as (_node_1a, node_1b),
            signed_in(nodes["imp-1a"], "andy") as (andy,),
        ):
            await sync_to_async(move_rooms_and_users, thread_sensitive=False)("imp-1a", "imp-1b", announce=False)
            node_1b.router.users_moved()  # what 1B's node agent does when its SRM made the transition
            notice = await next_event(andy, "reconnect", timeout=20)
            reconnected = await next_event(andy, "reconnected", timeout=20)
            return notice, reconnected

    notice, reconnected = run(scenario())
    assert (notice["node"], notice["port"]) == ("imp-1b", nodes["imp-1b"].agent_port)
    assert reconnected["node"] == "imp-1b"


def test_a_moved_xmpp_user_gets_see_other_host_as_soon_as_the_move_is_announced(xworld, monkeypatch):
    monkeypatch.setattr(router_core, "WATCH_SECONDS", 3600.0)
    add_user(xworld, "andy", "imp-1a")
    nodes = xworld.nodes

    async def scenario():
        async with running(nodes["imp-1a"], nodes["imp-1b"]):
            andy = Client("andy@example.com")
            await andy.start(nodes["imp-1a"].xmpp_port)
            moved = asyncio.ensure_future(andy.wait_until("session_start", 30))
            await sync_to_async(move_rooms_and_users, thread_sensitive=False)("imp-1a", "imp-1b")
            await moved  # signed in again, on the node named by see-other-host
            errors = [(e["condition"], e["see_other_host"]) for e in andy.stream_errors]
            address = andy.address
            await andy.stop()
            return errors, address

    errors, address = run(scenario())
    assert errors == [("see-other-host", f"127.0.0.1:{nodes['imp-1b'].xmpp_port}")]
    assert address == ("127.0.0.1", nodes["imp-1b"].xmpp_port)


def test_a_node_address_for_see_other_host_puts_an_ipv6_address_in_brackets():
    """RFC 6120 §4.9.3.19: an IPv6 address in see-other-host (and a WebSocket see-other-uri)
    is written in brackets, or a client cannot tell the port from the address."""
    from messaging.chat.directory import host_port

    assert host_port("2001:db8::5", 5222) == "[2001:db8::5]:5222"
    assert host_port("::1", 5280) == "[::1]:5280"
    assert host_port("198.51.100.7", 5222) == "198.51.100.7:5222"
    assert host_port("imp-1b.example.com", 5222) == "imp-1b.example.com:5222"
