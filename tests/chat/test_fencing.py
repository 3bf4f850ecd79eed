"""Fencing of the Text Conference Manager, in-process against real PostgreSQL and Redis: the
hosting epoch in the external database refuses a commit from a node that lost its rooms even
when nothing else stops it, and a node whose lease ran out refuses posts with the retryable
error. Nothing refused is stored or acknowledged."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace

import psycopg
import pytest

from messaging.chat.client import ChatClientError
from messaging.chat.errors import ChatError
from messaging.tc import requests
from tests.chat.conftest import run, running, signed_in
from tests.conftest import PG_ADMIN, wait_for_async
from topology.agent.lease import Lease
from topology.models import Node


def rows(database: str, query: str, params=()) -> list[tuple]:
    with psycopg.connect(dbname=database, **PG_ADMIN) as conn:
        return conn.execute(query, params).fetchall()


def test_a_stale_nodes_commit_is_refused_by_the_epoch_even_with_the_lease_check_disabled(world):
    world.user("andy", "imp-1a")
    a, b = world.nodes["imp-1a"], world.nodes["imp-1b"]

    async def scenario():
        async with running(a, b) as (node_a, node_b), signed_in(a, "andy") as (andy,):
            assert node_a.tc.lease is None  # no lease check at all: only the epoch stands in the way
            room = (await andy.create("ops"))["room"]
            await andy.join(room)
            before = await andy.post(room, "before the take-over")
            # B takes A's rooms over, as its SRM does; A's directory is kept stale (its clock or
            # its lease check is wrong), so A still believes it hosts the room.
            await node_a.tc.directory.stop()
            await node_a.router.directory.stop()
            await Node.objects.filter(pk=a.pk).aupdate(rooms_hosted_by=b)
            await node_b.tc.refresh_hosting()
            post = requests.Post(room=room, user="andy@example.com", body="from the stale node", cid="x1")
            with pytest.raises(ChatError) as refused:
                await node_a.tc.handle(post)
            taken = await node_b.tc.handle(replace(post, body="on the new host", cid="x2", joined=True))
            return room, before, refused.value, taken

    room, before, refused, taken = run(scenario())
    assert refused.code == "room-unavailable"
    assert "imp-1a no longer hosts the rooms of imp-1a" in refused.message and "try again" in refused.message
    stored = rows(world.database, "SELECT msg_id, msg FROM tc_messages WHERE room_jid = %s ORDER BY msg_id", (room,))
    assert [msg_id for msg_id, _ in stored] == [before["msg_id"], taken.msg_id]
    assert not any("from the stale node" in msg for _, msg in stored)
    epochs = rows(world.database, "SELECT msg_id, epoch, node FROM tc_message_epochs ORDER BY msg_id")
    current = rows(world.database, "SELECT epoch, holder FROM tc_hosting_epochs WHERE home_node = 'imp-1a'")
    assert current == [(epochs[0][1] + 1, "imp-1b")]
    assert epochs == [(before["msg_id"], epochs[0][1], "imp-1a"), (taken.msg_id, epochs[0][1] + 1, "imp-1b")]


def test_a_stale_node_stores_no_owner_change_under_an_old_epoch_and_gives_the_rooms_up(world):
    """An owner's changes (configuration here; member lists, subject and destruction take the
    same path) commit under the hosting epoch too."""
    world.user("andy", "imp-1a")
    a, b = world.nodes["imp-1a"], world.nodes["imp-1b"]

    async def scenario():
        async with running(a, b) as (node_a, node_b), signed_in(a, "andy") as (andy,):
            room = (await andy.create("ops", subject="before"))["room"]
            await andy.join(room)
            await node_a.tc.directory.stop()  # A's view of the hosting stays stale, as above
            await node_a.router.directory.stop()
            await Node.objects.filter(pk=a.pk).aupdate(rooms_hosted_by=b)
            await node_b.tc.refresh_hosting()
            user = "andy@example.com"
            with pytest.raises(ChatError) as refused:
                await node_a.tc.handle(
                    requests.Configure(room=room, user=user, changes={"name": "From the stale node"})
                )
            await wait_for_async(lambda: room not in node_a.tc.rooms, 5, "the stale node to drop the room")
            taken = await node_b.tc.handle(requests.Configure(room=room, user=user, changes={"name": "On B"}))
            return room, refused.value, taken

    room, refused, taken = run(scenario())
    assert refused.code == "room-unavailable"
    assert "imp-1a no longer hosts the rooms of imp-1a" in refused.message and "nothing was stored" in refused.message
    assert taken.name == "On B"
    config = rows(world.database, "SELECT config FROM tc_rooms WHERE room_jid = %s", (room,))[0][0]
    assert "On B" in config and "From the stale node" not in config


def test_a_node_whose_lease_ran_out_refuses_posts_with_the_retryable_error_until_renewed(world):
    world.user("andy", "imp-1a")
    a = world.nodes["imp-1a"]

    async def scenario():
        async with running(a) as (node_a,), signed_in(a, "andy") as (andy,):
            room = (await andy.create("ops"))["room"]
            await andy.join(room)
            lease = node_a.tc.lease = Lease()
            lease.renew(time.monotonic() - 10, 2)  # the last heartbeat got through 10 s ago
            with pytest.raises(ChatClientError) as refused:
                await andy.post(room, "while fenced", retry_for=0)
            lease.renew(time.monotonic(), 2)
            ack = await andy.post(room, "after the renewal")
            return room, refused.value, ack

    room, refused, ack = run(scenario())
    assert refused.code == "room-unavailable" and refused.retry
    assert "lost touch with the config DB" in refused.message and "try again" in refused.message
    stored = rows(world.database, "SELECT msg_id, msg FROM tc_messages WHERE room_jid = %s", (room,))
    assert [msg_id for msg_id, _ in stored] == [ack["msg_id"]] and "after the renewal" in stored[0][1]


def test_a_lease_is_counted_from_when_the_heartbeat_was_sent():
    lease = Lease()
    assert not lease.held()
    now = time.monotonic()
    lease.renew(now - 1.5, 2)
    assert lease.held(now) and not lease.held(now + 0.6)
    lease.renew(now - 5, 2)  # a late answer to an old heartbeat never shortens a newer renewal
    assert lease.held(now)
    assert Lease(enforced=False).held()


def test_nodes_starting_together_on_a_new_database_all_create_the_fencing_tables(tc_database):
    """Both nodes of a group start their TC at once on a new database: each makes sure the
    fencing tables exist, and none fails on the other's CREATE TABLE (PostgreSQL's IF NOT EXISTS
    alone lets two concurrent creators collide on the table's row type)."""
    from messaging.tc.schema import FENCING_TABLES
    from messaging.tc.store import PostgresStore

    async def scenario():
        stores = [PostgresStore({**PG_ADMIN, "dbname": tc_database}, 1) for _ in range(4)]
        for store in stores:
            await store.open()
        try:
            for _ in range(5):
                with psycopg.connect(dbname=tc_database, autocommit=True, **PG_ADMIN) as conn:
                    for table in FENCING_TABLES:
                        conn.execute(f"DROP TABLE IF EXISTS {table.name}")
                await asyncio.gather(*(store.ensure_fencing() for store in stores))
        finally:
            for store in stores:
                await store.close()

    run(scenario())
    for table in FENCING_TABLES:
        assert rows(tc_database, "SELECT to_regclass(%s) IS NOT NULL", (table.name,)) == [(True,)]
