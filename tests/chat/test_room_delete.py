"""Delete on a persistent chat room's page: super administrators only, refused while the
room's node is in a failover, audited; the room's rows go, other rooms stay."""

from __future__ import annotations

import asyncio

import psycopg
import pytest
from auditlog.models import LogEntry
from django.urls import reverse

from messaging.chat.directory import read_snapshot
from messaging.models import ExternalDatabase
from tests.chat.conftest import run, running, signed_in
from tests.conftest import PG_ADMIN
from topology.choices import HAState
from topology.models import Node


def seed_room(database: str, room_jid: str, messages: int) -> None:
    with psycopg.connect(dbname=database, autocommit=True, **PG_ADMIN) as conn:
        conn.execute(
            "INSERT INTO tc_rooms (room_jid, creator_jid, subject, type, config, spacket, start_msg_id, "
            "next_msg_id) VALUES (%s, 'andy@example.com', 'Ops', 'persistent', '', '', 1, %s)",
            (room_jid, messages + 1),
        )
        conn.execute(
            "INSERT INTO tc_users (room_jid, real_jid, role, affiliation, nick_jid, reason, initiator_jid) "
            "VALUES (%s, 'andy@example.com', 'none', 'owner', %s, '', 'andy@example.com')",
            (room_jid, f"{room_jid}/andy"),
        )
        for msg_id in range(1, messages + 1):
            conn.execute(
                "INSERT INTO tc_messages (room_jid, msg_id, msg, stamp) VALUES (%s, %s, %s, now())",
                (room_jid, msg_id, f"<message><body>m{msg_id}</body></message>"),
            )


def rows(database: str, room_jid: str) -> dict[str, int]:
    with psycopg.connect(dbname=database, **PG_ADMIN) as conn:
        return {
            table: conn.execute(f"SELECT count(*) FROM {table} WHERE room_jid = %s", (room_jid,)).fetchone()[0]  # noqa: S608
            for table in ("tc_rooms", "tc_users", "tc_messages")
        }


@pytest.fixture
def rooms(world):
    alias = read_snapshot().primary_alias["imp-1a"]
    ops, other = f"ops@{alias}", f"keep@{alias}"
    seed_room(world.database, ops, 3)
    seed_room(world.database, other, 2)
    return ExternalDatabase.objects.get(database_name=world.database), ops, other


def test_a_super_administrator_deletes_a_room_from_its_page_and_it_is_audited(rooms, world, super_client, super_admin):
    database, ops, other = rooms
    page = super_client.get(reverse("chat:room_detail", args=[database.pk, ops])).content.decode()
    assert f"Delete {ops} with its 3 message(s)? This cannot be undone." in page

    response = super_client.post(reverse("chat:room_delete", args=[database.pk, ops]), follow=True)
    assert f"Room {ops} deleted from {database}, with its 3 message(s) and 1 member(s)." in response.content.decode()
    assert ops not in response.content.decode().split("Room ", 1)[1].split("deleted", 1)[1]  # gone from the report
    assert rows(world.database, ops) == {"tc_rooms": 0, "tc_users": 0, "tc_messages": 0}
    assert rows(world.database, other) == {"tc_rooms": 1, "tc_users": 1, "tc_messages": 2}

    entry = LogEntry.objects.get(changes__has_key="persistent chat room")
    assert entry.changes == {"persistent chat room": [ops, "deleted"]}
    assert entry.actor == super_admin and entry.object_repr == str(database)
    assert entry.additional_data == {"messages deleted": 3, "members deleted": 1}


@pytest.mark.parametrize("state", [HAState.FAILED_OVER, HAState.TAKING_OVER])
def test_deleting_a_room_while_its_node_is_in_a_failover_is_refused_with_the_reason(rooms, world, super_client, state):
    database, ops, _ = rooms
    failing = "imp-1a" if state == HAState.FAILED_OVER else "imp-1b"
    Node.objects.filter(name=failing).update(ha_state=state)
    response = super_client.post(reverse("chat:room_delete", args=[database.pk, ops]), follow=True)
    label = HAState(state).label
    assert (
        f"{ops} cannot be deleted while {failing} is {label}: the room&#x27;s node is in a failover. "
        "Fall back first, then delete it."
    ) in response.content.decode()
    assert rows(world.database, ops) == {"tc_rooms": 1, "tc_users": 1, "tc_messages": 3}
    assert not LogEntry.objects.filter(changes__has_key="persistent chat room").exists()


@pytest.mark.parametrize("persona", ["operator", "read_only"])
def test_operators_and_read_only_users_cannot_delete_a_room_nor_see_the_button(rooms, world, personas, persona):
    database, ops, _ = rooms
    client = personas[persona]
    assert "Delete" not in client.get(reverse("chat:room_detail", args=[database.pk, ops])).content.decode()
    assert client.post(reverse("chat:room_delete", args=[database.pk, ops])).status_code == 403
    assert rows(world.database, ops)["tc_rooms"] == 1


def test_an_anonymous_visitor_is_sent_to_login(rooms, world, anon_client):
    database, ops, _ = rooms
    response = anon_client.post(reverse("chat:room_delete", args=[database.pk, ops]))
    assert response.status_code == 302 and response["Location"].startswith("/login/")
    assert rows(world.database, ops)["tc_rooms"] == 1


def test_a_room_with_users_in_it_is_not_deleted_until_they_leave(world, super_client):
    world.user("andy", "imp-1a")
    node = world.nodes["imp-1a"]
    database = ExternalDatabase.objects.get(database_name=world.database)
    url = None

    async def scenario():
        nonlocal url
        async with running(node), signed_in(node, "andy") as (andy,):
            room = (await andy.create("standup", subject="Standup"))["room"]
            await andy.join(room)
            await andy.post(room, "morning")
            url = reverse("chat:room_delete", args=[database.pk, room])
            refused = (await asyncio.to_thread(super_client.post, url, follow=True)).content.decode()
            await andy.leave(room)
            return room, refused

    room, refused = run(scenario())
    assert f"{room} cannot be deleted while 1 user(s) are in it; it can be deleted once empty." in refused
    assert rows(world.database, room)["tc_messages"] == 1
    deleted = super_client.post(url, follow=True).content.decode()
    assert f"Room {room} deleted from {database}, with its 1 message(s)" in deleted
    assert rows(world.database, room) == {"tc_rooms": 0, "tc_users": 0, "tc_messages": 0}
