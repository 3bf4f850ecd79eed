"""The Text Conference Manager and XCP Router of a node, in-process, against real PostgreSQL
and Redis: what users see (replies, acknowledgements, messages) and the rows stored."""

from __future__ import annotations

import psycopg
import pytest

from messaging.tc.schema import MESSAGE_ID_SEQUENCE
from tests.chat.conftest import next_event, run, running, signed_in
from tests.conftest import PG_ADMIN, wait_for_async


def rows(database: str, query: str, params=()) -> list[tuple]:
    with psycopg.connect(dbname=database, **PG_ADMIN) as conn:
        return conn.execute(query, params).fetchall()


def test_a_post_is_acknowledged_with_its_stored_id_and_reaches_every_occupant(world):
    world.user("andy", "imp-1a")
    world.user("bob", "imp-1a")

    async def scenario():
        async with running(world.nodes["imp-1a"]), signed_in(world.nodes["imp-1a"], "andy", "bob") as (andy, bob):
            created = await andy.create("ops", subject="Operations")
            room = created["room"]
            await andy.join("ops")
            await bob.join(room)
            ack = await andy.post(room, "hello bob")
            seen = await next_event(bob, "message")
            return room, ack, seen

    room, ack, seen = run(scenario())
    assert room == f"ops@conference-{world.nodes['imp-1a'].pk}-imp1.example.com"
    assert ack["msg_id"] == 1
    assert (seen["from"], seen["body"], seen["msg_id"]) == ("andy@example.com", "hello bob", 1)
    stored = rows(world.database, "SELECT msg_id, msg FROM tc_messages WHERE room_jid = %s", (room,))
    assert [msg_id for msg_id, _ in stored] == [1]
    assert "hello bob" in stored[0][1]
    assert rows(world.database, "SELECT next_msg_id, type, subject FROM tc_rooms") == [(2, "persistent", "Operations")]


def test_room_messages_are_archived_with_ids_from_xcp_sequence(world):
    world.user("andy", "imp-1a")
    world.configure(archive_room_messages=True)

    async def scenario():
        async with running(world.nodes["imp-1a"]), signed_in(world.nodes["imp-1a"], "andy") as (andy,):
            room = (await andy.create("ops"))["room"]
            await andy.join(room)
            return room, [await andy.post(room, f"message {n}") for n in range(3)]

    room, acks = run(scenario())
    archived = rows(
        world.database, "SELECT msg_id, to_jid, from_jid, body_string, msg_type FROM tc_msgarchive ORDER BY msg_id"
    )
    assert [body for *_, body, _ in archived] == ["message 0", "message 1", "message 2"]
    assert {(to, sender, kind) for _, to, sender, _, kind in archived} == {(room, "andy@example.com", "g")}
    ids = [msg_id for msg_id, *_ in archived]
    (next_id,) = rows(world.database, "SELECT new_id FROM xcp_sequence WHERE name_id = %s", (MESSAGE_ID_SEQUENCE,))[0]
    assert ids == sorted(ids) and len(set(ids)) == 3 and ids[0] >= 1 and next_id > ids[-1]
    assert [ack["msg_id"] for ack in acks] == [1, 2, 3]


def test_nothing_is_archived_when_archiving_room_messages_is_off(world):
    world.user("andy", "imp-1a")
    world.configure(archive_room_messages=False)

    async def scenario():
        async with running(world.nodes["imp-1a"]), signed_in(world.nodes["imp-1a"], "andy") as (andy,):
            room = (await andy.create("ops"))["room"]
            await andy.join(room)
            await andy.post(room, "not archived")

    run(scenario())
    assert rows(world.database, "SELECT count(*) FROM tc_messages") == [(1,)]
    assert rows(world.database, "SELECT count(*) FROM tc_msgarchive") == [(0,)]


@pytest.mark.parametrize("archive", [True, False])
def test_joins_and_exits_are_logged_in_tc_timelog_only_when_archiving_them_is_on(world, archive):
    world.user("andy", "imp-1a")
    world.configure(archive_joins_and_exits=archive)

    async def scenario():
        async with running(world.nodes["imp-1a"]), signed_in(world.nodes["imp-1a"], "andy") as (andy,):
            room = (await andy.create("ops"))["room"]
            await andy.join(room)
            await andy.leave(room)
            return room

    room = run(scenario())
    logged = rows(world.database, "SELECT real_jid, nick_jid, direction FROM tc_timelog ORDER BY stamp, direction")
    if archive:
        assert logged == [("andy@example.com", f"{room}/andy", "E"), ("andy@example.com", f"{room}/andy", "L")]
    else:
        assert logged == []


@pytest.mark.parametrize("connections", [2, 4])
def test_the_tc_keeps_as_many_database_connections_as_the_chat_settings_say(world, connections):
    world.user("andy", "imp-1a")
    world.configure(db_connections=connections)
    count = "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()"

    async def scenario():
        async with running(world.nodes["imp-1a"]) as (node,):
            # The pool says when it holds all its connections; it opens none beyond its size.
            await node.tc.store.pool.wait(timeout=20)
            reached = node.tc.store.pool.get_stats()["pool_size"]
            settled = await wait_for_async(
                lambda: (seen := rows(world.database, count, (world.database,))[0][0]) <= connections and seen,
                20,
                "the TC's sign-in check connection to be gone from the server",
            )
            return reached, settled

    reached, settled = run(scenario())
    assert (reached, settled) == (connections, connections)
