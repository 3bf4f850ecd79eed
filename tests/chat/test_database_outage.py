"""The Text Conference Manager and its external database: no start without it when persistent
chat is on, and an outage after start refuses posts (never acknowledges and drops them)."""

from __future__ import annotations

import asyncio

import psycopg
import pytest
from psycopg import sql

from messaging.chat.client import ChatClientError
from messaging.database_assignment import assign
from messaging.models import PersistentChatAssignment
from messaging.tc.service import TextConferenceManager
from tests.chat.conftest import run, running, signed_in
from tests.conftest import PG_ADMIN
from tests.scenario import external_database, free_port
from topology.agent.base import ServiceStartError


def start_error(node) -> str:
    async def scenario():
        tc = TextConferenceManager(node, None)
        with pytest.raises(ServiceStartError) as caught:
            await tc.start()
        await tc.stop()
        return str(caught.value)

    return run(scenario())


def test_tc_does_not_start_when_persistent_chat_is_on_and_the_database_is_unreachable(world):
    database = external_database("tcdb")
    database.port = free_port()  # nothing listens there
    database.save()
    PersistentChatAssignment.objects.all().delete()
    assign({world.nodes["imp-1a"]: database, world.nodes["imp-1b"]: database})
    message = start_error(world.nodes["imp-1a"])
    assert message.startswith(f"Persistent chat is enabled but the external database {database} is unreachable:")


def test_tc_does_not_start_when_the_database_fails_schema_verification(world, postgres):
    empty = postgres.database("imp_chat_empty")
    database = external_database(empty)
    PersistentChatAssignment.objects.all().delete()
    assign({world.nodes["imp-1a"]: database, world.nodes["imp-1b"]: database})
    message = start_error(world.nodes["imp-1a"])
    assert message.startswith(
        f"The external database {database} failed schema verification: Table tc_rooms is missing."
    )


def test_tc_does_not_start_when_persistent_chat_is_on_and_no_database_is_assigned(world):
    PersistentChatAssignment.objects.all().delete()
    assert start_error(world.nodes["imp-1a"]) == (
        "Persistent chat is enabled but no external database is assigned to imp-1a; "
        "assign one under Messaging > Group Chat and Persistent Chat."
    )


def set_connections_allowed(database: str, allowed: bool) -> None:
    with psycopg.connect(dbname="postgres", autocommit=True, **PG_ADMIN) as conn:
        conn.execute(
            sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS {}").format(
                sql.Identifier(database), sql.SQL("true" if allowed else "false")
            )
        )
        if not allowed:
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (database,))


def test_posts_are_refused_while_the_database_is_away_and_stored_again_once_it_is_back(world):
    """With the product's connection heartbeat interval (300 s): once the database answers
    again, posts are stored within seconds, not at the next heartbeat."""
    world.user("andy", "imp-1a")

    async def scenario():
        async with running(world.nodes["imp-1a"]), signed_in(world.nodes["imp-1a"], "andy") as (andy,):
            room = (await andy.create("ops"))["room"]
            await andy.join(room)
            before = await andy.post(room, "before the outage")
            await asyncio.to_thread(set_connections_allowed, world.database, False)
            with pytest.raises(ChatClientError) as first:
                await andy.post(room, "during the outage", retry_for=0)
            with pytest.raises(ChatClientError) as second:
                await andy.post(room, "still during the outage", retry_for=0)
            await asyncio.to_thread(set_connections_allowed, world.database, True)
            after = await andy.post(room, "after the outage", retry_for=30)
            return room, before, first.value, second.value, after

    room, before, first, second, after = run(scenario())
    for error in (first, second):
        assert error.code == "database-unavailable" and error.retry
        assert error.message.startswith("The persistent chat database is unavailable, so nothing was stored")
    with psycopg.connect(dbname=world.database, **PG_ADMIN) as conn:
        stored = conn.execute("SELECT msg_id, msg FROM tc_messages WHERE room_jid = %s ORDER BY msg_id", (room,))
        stored = stored.fetchall()
    assert [msg_id for msg_id, _ in stored] == [before["msg_id"], after["msg_id"]] == [1, 2]
    assert "before the outage" in stored[0][1] and "after the outage" in stored[1][1]
