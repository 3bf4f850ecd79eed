"""How a Text Conference Manager loads rooms: in bulk when it starts and when it takes over a
home node's rooms, on first request for a room it did not know, and again after the persistent
room timeout unloaded one. Real PostgreSQL and Redis, routers and TCs in-process; what users
see (history, acknowledgements, ids) and the rows stored."""

from __future__ import annotations

import asyncio

import psycopg
from asgiref.sync import sync_to_async

from tests.chat.conftest import run, running, signed_in
from tests.chat.test_routing import move_rooms_and_users
from tests.conftest import PG_ADMIN, wait_for_async


def rows(database: str, query: str, params=()) -> list[tuple]:
    with psycopg.connect(dbname=database, **PG_ADMIN) as conn:
        return conn.execute(query, params).fetchall()


def execute(database: str, query: str, params=()) -> None:
    with psycopg.connect(dbname=database, autocommit=True, **PG_ADMIN) as conn:
        conn.execute(query, params)


async def whole_history(client, room: str) -> list[dict]:
    """Every message of the room, oldest first, read backwards page by page."""
    messages: list[dict] = []
    before = None
    while True:
        paging = {"limit": 100} if before is None else {"limit": 100, "before": before}
        page = (await client.history(room, **paging))["messages"]
        if not page:
            return messages
        messages = page + messages
        before = page[0]["msg_id"]


def test_after_a_failover_the_backup_holds_every_room_and_serves_full_history_and_the_next_ids(world):
    world.user("andy", "imp-1a")
    world.user("bob", "imp-1b")
    world.configure(history_max=5, history_default=3)
    nodes = world.nodes

    async def scenario():
        async with running(nodes["imp-1a"], nodes["imp-1b"]) as (node_1a, node_1b):
            async with signed_in(nodes["imp-1a"], "andy") as (andy,):
                rooms = []
                for name, count in (("big", 12), ("small", 2), ("quiet", 0)):
                    room = (await andy.create(name))["room"]
                    await andy.join(room)
                    for n in range(count):
                        await andy.post(room, f"{name} {n}")
                    rooms.append(room)
            await node_1a.tc.stop()
            await sync_to_async(move_rooms_and_users, thread_sensitive=False)("imp-1a", "imp-1b")
            await node_1b.tc.refresh_hosting()
            held_after_switch = sorted(node_1b.tc.rooms)
            async with signed_in(nodes["imp-1b"], "bob") as (bob,):
                joins = {room: await bob.join(room) for room in rooms}
                histories = {room: await whole_history(bob, room) for room in rooms}
                acks = {room: await bob.post(room, "after the failover") for room in rooms}
            return rooms, held_after_switch, joins, histories, acks

    rooms, held, joins, histories, acks = run(scenario())
    big, small, quiet = rooms
    assert held == sorted(rooms)  # loaded when the hosting moved, before anyone asked
    assert [m["body"] for m in joins[big]["history"]] == ["big 9", "big 10", "big 11"]
    assert [m["body"] for m in joins[small]["history"]] == ["small 0", "small 1"]
    assert joins[quiet]["history"] == []
    assert [m["body"] for m in histories[big]] == [f"big {n}" for n in range(12)]  # older pages from the database
    assert [m["msg_id"] for m in histories[big]] == list(range(1, 13))
    assert {m["from"] for m in histories[big]} == {"andy@example.com"}
    assert [acks[room]["msg_id"] for room in rooms] == [13, 3, 1]
    stored = rows(world.database, "SELECT room_jid, next_msg_id FROM tc_rooms ORDER BY room_jid")
    assert sorted(stored) == sorted([(big, 14), (small, 4), (quiet, 2)])


def test_a_room_added_to_the_database_behind_the_services_back_is_loaded_on_its_first_request(world):
    world.user("andy", "imp-1a")
    nodes = world.nodes

    async def scenario():
        async with running(nodes["imp-1a"]), signed_in(nodes["imp-1a"], "andy") as (andy,):
            template = (await andy.create("template"))["room"]
            await andy.join(template)
            await andy.post(template, "copied message")
            alias = template.split("@")[1]
            copies = [f"copy{n}@{alias}" for n in range(3)]
            for copy in copies:
                await asyncio.to_thread(
                    execute,
                    world.database,
                    "INSERT INTO tc_rooms SELECT %s, creator_jid, subject, type, config, spacket, start_msg_id, "
                    "next_msg_id FROM tc_rooms WHERE room_jid = %s",
                    (copy, template),
                )
                await asyncio.to_thread(
                    execute,
                    world.database,
                    "INSERT INTO tc_messages SELECT msg_id, %s, stamp, msg FROM tc_messages WHERE room_jid = %s",
                    (copy, template),
                )
            answers = await asyncio.gather(*(andy.history(copy) for copy in copies))
            joined = await andy.join(copies[0])
            ack = await andy.post(copies[0], "second message")
            return copies, answers, joined, ack

    copies, answers, joined, ack = run(scenario())
    for copy, answer in zip(copies, answers, strict=True):
        assert answer["room"] == copy
        assert [m["body"] for m in answer["messages"]] == ["copied message"]
    assert [m["msg_id"] for m in joined["history"]] == [1]
    assert ack["msg_id"] == 2


def test_a_post_retried_after_its_room_moved_is_stored_once_even_when_older_than_the_history_in_memory(world):
    world.user("andy", "imp-1a")
    world.user("bob", "imp-1b")
    world.configure(history_max=5, history_default=3)
    nodes = world.nodes
    odd_cid = 'bob&<"odd">\'\tcid\n'

    async def scenario():
        async with (
            running(nodes["imp-1a"], nodes["imp-1b"]) as (node_1a, node_1b),
            signed_in(nodes["imp-1a"], "andy") as (andy,),
            signed_in(nodes["imp-1b"], "bob") as (bob,),
        ):
            room = (await andy.create("retries"))["room"]
            await andy.join(room)
            await bob.join(room)
            first = [await bob.post(room, f"bob {n}", cid=f"bob-{n}") for n in range(10)]
            odd = await bob.post(room, "bob odd", cid=odd_cid)
            for n in range(10):
                await andy.post(room, f"andy {n}")
            await node_1a.tc.stop()
            await sync_to_async(move_rooms_and_users, thread_sensitive=False)("imp-1a", "imp-1b")
            await node_1b.tc.refresh_hosting()
            # Bob never saw these acknowledgements: he retries with the same client ids.
            retried = [await bob.post(room, f"bob {n}", cid=f"bob-{n}", retry_for=10) for n in (0, 7)]
            retried_odd = await bob.post(room, "bob odd", cid=odd_cid, retry_for=10)
            new = await bob.post(room, "bob new", cid="bob-new")
            return room, first, odd, retried, retried_odd, new

    room, first, odd, retried, retried_odd, new = run(scenario())
    assert [ack["msg_id"] for ack in retried] == [first[0]["msg_id"], first[7]["msg_id"]] == [1, 8]
    assert retried_odd["msg_id"] == odd["msg_id"] == 11
    assert new["msg_id"] == 22
    stored = rows(world.database, "SELECT count(*), max(msg_id) FROM tc_messages WHERE room_jid = %s", (room,))
    assert stored == [(22, 22)]


def test_a_stored_message_that_declares_entities_is_shown_as_its_text_and_never_expanded(world):
    world.user("andy", "imp-1a")
    nodes = world.nodes
    bomb = (
        '<!DOCTYPE message [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>'
        '<message from="x/y" to="x" type="groupchat" id="z"><body>&b;</body></message>'
    )

    async def scenario():
        async with running(nodes["imp-1a"]) as (node_1a,), signed_in(nodes["imp-1a"], "andy") as (andy,):
            room = (await andy.create("odd-rows"))["room"]
            await andy.join(room)
            await andy.post(room, "ours")
            await asyncio.to_thread(
                execute,
                world.database,
                "INSERT INTO tc_messages (msg_id, room_jid, stamp, msg) SELECT 2, room_jid, stamp, %s "
                "FROM tc_messages WHERE room_jid = %s AND msg_id = 1",
                (bomb, room),
            )
            await asyncio.to_thread(
                execute, world.database, "UPDATE tc_rooms SET next_msg_id = 3 WHERE room_jid = %s", (room,)
            )
            await andy.leave(room)
            await node_1a.tc.stop()  # read the room again from the database
            await node_1a.tc.start()
            joined = await andy.join(room)
            ack = await andy.post(room, "after")
            return joined, ack

    joined, ack = run(scenario())
    assert [(m["msg_id"], m["body"]) for m in joined["history"]] == [(1, "ours"), (2, bomb)]
    assert ack["msg_id"] == 3


def test_a_persistent_room_left_empty_past_the_timeout_is_unloaded_and_loads_again_on_the_next_join(world):
    world.user("andy", "imp-1a")
    world.user("bob", "imp-1a")
    world.configure(persistent_room_timeout=0.02)  # 1.2 s
    node = world.nodes["imp-1a"]

    async def scenario():
        async with running(node) as (running_node,), signed_in(node, "andy", "bob") as (andy, bob):
            tc = running_node.tc
            left = (await andy.create("left"))["room"]
            kept = (await bob.create("kept"))["room"]
            adhoc = (await bob.create("adhoc", persistent=False))["room"]
            await andy.join(left)
            await bob.join(kept)
            await bob.join(adhoc)
            for n in range(3):
                await andy.post(left, f"left {n}")
            await andy.leave(left)
            await wait_for_async(lambda: left not in tc.rooms, 10.0, "the left room to be unloaded")
            still_loaded = {kept, adhoc} <= set(tc.rooms)
            joined = await andy.join(left)
            reloaded = left in tc.rooms
            ack = await andy.post(left, "back again")
            return left, still_loaded, joined, reloaded, ack

    left, still_loaded, joined, reloaded, ack = run(scenario())
    assert still_loaded  # rooms with occupants stay, whatever their type
    assert rows(world.database, "SELECT type FROM tc_rooms WHERE room_jid = %s", (left,)) == [("persistent",)]
    assert [m["body"] for m in joined["history"]] == ["left 0", "left 1", "left 2"]
    assert reloaded and ack["msg_id"] == 4


def test_with_a_timeout_of_zero_an_empty_persistent_room_stays_loaded(world):
    world.user("andy", "imp-1a")
    world.configure(persistent_room_timeout=0)
    node = world.nodes["imp-1a"]

    async def scenario():
        async with running(node) as (running_node,), signed_in(node, "andy") as (andy,):
            room = (await andy.create("stays"))["room"]
            await andy.join(room)
            await andy.leave(room)
            # With a timeout of 0 the TC's room timeout watcher ends at once: nothing unloads rooms.
            await wait_for_async(
                lambda: not any(task.get_name() == "tc-room-timeout" for task in asyncio.all_tasks()),
                10,
                "the room timeout watcher to end",
            )
            return room in running_node.tc.rooms

    assert run(scenario())
