"""Messaging > Persistent Chat Rooms: the room report and a room's page, read from the
external database, for each persona."""

from __future__ import annotations

import asyncio

import psycopg
import pytest
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format

from messaging.models import ExternalDatabase
from tests.chat.conftest import run, running, signed_in
from tests.conftest import PG_ADMIN


def seed_rooms(database: str, count: int) -> None:
    """Many rooms straight into tc_rooms (as a merged or migrated database holds them)."""
    with psycopg.connect(dbname=database, autocommit=True, **PG_ADMIN) as conn, conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO tc_rooms (room_jid, creator_jid, subject, type, config, spacket, start_msg_id, "
            "next_msg_id) VALUES (%s, 'x@example.com', '', 'persistent', '', '', 1, 1)",
            [(f"bulk{n:05d}@chat.example.com",) for n in range(count)],
        )


def test_room_report_lists_rooms_with_host_occupants_members_messages_and_last_date(world, operator_client):
    world.user("andy", "imp-1a")
    world.user("bob", "imp-1a")
    node = world.nodes["imp-1a"]

    async def scenario():
        async with running(node), signed_in(node, "andy", "bob") as (andy, bob):
            room = (await andy.create("ops", subject="Operations", members=["bob"]))["room"]
            await andy.join(room)
            await bob.join(room)
            await andy.post(room, "first")
            await bob.post(room, "second <b>bold</b>")
            list_page = (await asyncio.to_thread(operator_client.get, reverse("chat:room_list"))).content.decode()
            detail_url = reverse("chat:room_detail", args=[database.pk, room])
            detail = (await asyncio.to_thread(operator_client.get, detail_url)).content.decode()
            return room, list_page, detail

    database = ExternalDatabase.objects.get(database_name=world.database)
    before = timezone.localtime()
    room, list_page, detail = run(scenario())
    after = timezone.localtime()
    row = list_page.split(room, 1)[1].split("</tr>", 1)[0]
    cells = [cell.split("</td>")[0] for cell in row.split("<td>")[1:]]
    assert cells[:6] == ["persistent", "Operations", "imp-1a", "2", "2", "2"]  # type … members, messages
    # Last message date: when bob posted, to the minute the page shows.
    assert cells[6] in {date_format(before, "Y-m-d H:i"), date_format(after, "Y-m-d H:i")}
    assert "Owners and members" in detail and "bob@example.com" in detail and "owner" in detail
    assert "second &lt;b&gt;bold&lt;/b&gt;" in detail


def test_room_report_pages_and_filters_tens_of_thousands_of_rooms(world, read_only_client):
    seed_rooms(world.database, 20000)
    database = ExternalDatabase.objects.get(database_name=world.database)
    url = reverse("chat:room_list")
    first = read_only_client.get(url, {"database": database.pk}).content.decode()
    third = read_only_client.get(url, {"database": database.pk, "page": 3}).content.decode()
    found = read_only_client.get(url, {"database": database.pk, "q": "bulk1999"}).content.decode()
    assert first.count("bulk") == 50 * 2 + 0 and "bulk00000@" in first and "bulk00050@" not in first
    assert "bulk00100@" in third and "bulk00099@" not in third
    assert "bulk19990@" in found and "bulk00001@" not in found and "Next" not in found


@pytest.mark.parametrize(("persona", "status"), [("anonymous", 302), ("read_only", 200), ("operator", 200)])
def test_room_report_needs_a_login_and_the_view_permission(world, personas, persona, status):
    assert personas[persona].get(reverse("chat:room_list")).status_code == status


def test_a_room_page_for_an_unknown_room_is_not_found(world, operator_client):
    database = ExternalDatabase.objects.get(database_name=world.database)
    response = operator_client.get(reverse("chat:room_detail", args=[database.pk, "nothing@chat.example.com"]))
    assert response.status_code == 404
