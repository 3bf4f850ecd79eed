"""XEP-0045 owner and admin use cases with a standard client (slixmpp's xep_0045): instant and
reserved rooms through the owner configuration form, member lists (affiliations) and their
effect on entry, subject changes, and room destruction; each refusal the chat settings or the
room's owners impose, with its XEP-0045 error. Real PostgreSQL and Redis, in-process nodes."""

from __future__ import annotations

import asyncio

import psycopg
import pytest
from slixmpp.exceptions import IqError, PresenceError

from messaging.chat.client import ChatClientError
from messaging.tc import requests
from messaging.tc.stanzas import ROOMCONFIG_FORM_TYPE, RoomConfig
from tests.chat.conftest import run, running, signed_in
from tests.chat.test_xmpp_rooms import post
from tests.chat.xmpp import Client, add_user, configure
from tests.conftest import PG_ADMIN
from topology.models import Node


def alias_of(node) -> str:
    return f"conference-{node.pk}-imp1.example.com"


def rows(database: str, sql: str, params: tuple = ()) -> list[tuple]:
    with psycopg.connect(**PG_ADMIN, dbname=database) as conn:
        return conn.execute(sql, params).fetchall()


def stored_config(database: str, room: str) -> tuple[str, RoomConfig]:
    """(tc_rooms.type, the stored owner form) of a room."""
    kind, config = rows(database, "SELECT type, config FROM tc_rooms WHERE room_jid = %s", (room,))[0]
    return kind, RoomConfig.from_xml(
        config, RoomConfig(name="?", persistent=False, members_only=False, max_occupants=0)
    )


async def refusal(call) -> tuple[str, str]:
    """The (condition, text) of the error an IQ or a join got; fails when it succeeded."""
    try:
        await call
    except IqError as exc:
        return exc.iq["error"]["condition"], exc.iq["error"]["text"]
    except PresenceError as exc:
        return exc.presence["error"]["condition"], exc.presence["error"]["text"]
    raise AssertionError("the request was not refused")


async def started(node, *users: str) -> list[Client]:
    clients = [Client(f"{user}@example.com") for user in users]
    for client in clients:
        await client.start(node.xmpp_port)
    return clients


async def stop(*clients: Client) -> None:
    for client in clients:
        await client.stop()


def form_values(form) -> dict[str, str]:
    return form.get_values()


def test_an_instant_room_keeps_the_defaults_and_a_reserved_room_is_configured_by_its_owner(xworld):
    add_user(xworld, "andy", "imp-1a")
    node = xworld.nodes["imp-1a"]
    alias = alias_of(node)
    instant, reserved = f"instant@{alias}", f"reserved@{alias}"

    async def scenario():
        async with running(node):
            (andy,) = await started(node, "andy")
            muc = andy.plugin["xep_0045"]
            created, *_ = await muc.join_muc_wait(instant, "Andy", maxstanzas=0, timeout=10)
            await muc.set_room_config(instant, andy.plugin["xep_0004"].make_form(ftype="submit"))
            await muc.join_muc_wait(reserved, "Andy", maxstanzas=0, timeout=10)
            notices = []
            andy.add_event_handler("groupchat_config_status", notices.append)
            form = await muc.get_room_config(reserved)
            offered = form_values(form)
            form.set_values(
                {
                    "muc#roomconfig_roomname": "Operations",
                    "muc#roomconfig_roomdesc": "Where the on-call team meets",
                    "muc#roomconfig_membersonly": True,
                    "muc#roomconfig_maxusers": "20",
                    "muc#roomconfig_publicroom": False,
                }
            )
            await muc.set_room_config(reserved, form)
            info = await andy.plugin["xep_0030"].get_info(jid=reserved)
            listed = await andy.plugin["xep_0030"].get_items(jid=alias)
            async with asyncio.timeout(5):
                while not notices:
                    await asyncio.sleep(0.05)
            await stop(andy)
        async with running(node):  # read back from the database by a freshly started service
            (andy,) = await started(node, "andy")
            again = form_values(await andy.plugin["xep_0045"].get_room_config(reserved))
            await stop(andy)
        return created, offered, info, listed, notices, again

    created, offered, info, listed, notices, again = run(scenario())
    item = created["muc"]
    assert (item["affiliation"], item["role"]) == ("owner", "moderator")
    assert {"110", "201"} <= {str(code) for code in created["muc"]["status_codes"]}
    assert stored_config(xworld.database, instant) == (
        "persistent",
        RoomConfig(name="instant", persistent=False, members_only=False, max_occupants=50),
    )
    assert offered.pop("FORM_TYPE") in ("http://jabber.org/protocol/muc#roomconfig", [ROOMCONFIG_FORM_TYPE])
    assert offered == {
        "muc#roomconfig_roomname": "reserved",
        "muc#roomconfig_roomdesc": "",
        "muc#roomconfig_persistentroom": True,
        "muc#roomconfig_membersonly": False,
        "muc#roomconfig_maxusers": "50",
        "muc#roomconfig_changesubject": True,
        "muc#roomconfig_publicroom": True,
        "muc#roomconfig_whois": "anyone",
        "muc#roomconfig_moderatedroom": False,
        "muc#roomconfig_passwordprotectedroom": False,
        "muc#roomconfig_roomsecret": "",
        "muc#roomconfig_allowpm": "anyone",
        "muc#roomconfig_allowinvites": False,
    }
    kind, config = stored_config(xworld.database, reserved)
    assert kind == "persistent"
    assert (config.name, config.description, config.members_only, config.max_occupants, config.public) == (
        "Operations",
        "Where the on-call team meets",
        True,
        20,
        False,
    )
    features = set(info["disco_info"]["features"])
    assert {"muc_membersonly", "muc_hidden", "muc_persistent"} <= features
    assert "muc_public" not in features
    assert reserved not in [jid for jid, *_ in listed["disco_items"]["items"]]
    assert instant in [jid for jid, *_ in listed["disco_items"]["items"]]
    assert [str(code) for code in notices[0]["muc"]["status_codes"]] == ["104"]
    assert again["muc#roomconfig_roomname"] == "Operations"
    assert again["muc#roomconfig_membersonly"] is True
    assert again["muc#roomconfig_maxusers"] == "20"


def test_the_owner_form_follows_the_chat_settings_and_only_owners_may_use_it(xworld):
    add_user(xworld, "andy", "imp-1a")
    add_user(xworld, "bob", "imp-1a")
    add_user(xworld, "erin", "imp-c2a")
    xworld.configure(max_users_per_room=30, default_max_occupancy=20, owners_change_members_only=False)
    xworld.configure(only_admins_create_persistent=True, enable_system_administrators=True)
    node, c2a = xworld.nodes["imp-1a"], xworld.nodes["imp-c2a"]
    room, adhoc = f"settings@{alias_of(node)}", f"quick@conference-{c2a.pk}-imp2.example.com"

    async def scenario():
        async with running(node, c2a) as (running_1a, _):
            # Andy is no group chat system administrator: his room here is an ad hoc one.
            await running_1a.tc.handle(requests.CreateRoom(room=room, user="andy@example.com", persistent=False))
            andy, bob = await started(node, "andy", "bob")
            (erin,) = await started(c2a, "erin")
            await erin.plugin["xep_0045"].join_muc_wait(adhoc, "Erin", maxstanzas=0, timeout=10)
            muc = andy.plugin["xep_0045"]

            refused = {
                "not an owner, reading": await refusal(bob.plugin["xep_0045"].get_room_config(room)),
                "not an owner, submitting": await refusal(configure(bob, room, roomname="Bob's")),
                "too many occupants": await refusal(configure(andy, room, maxusers="31")),
                "occupants not a number": await refusal(configure(andy, room, maxusers="many")),
                "members-only locked": await refusal(configure(andy, room, membersonly="1")),
                "subject rights locked": await refusal(configure(andy, room, changesubject="0")),
                "anonymous": await refusal(configure(andy, room, whois="moderators")),
                "persistent, not an administrator": await refusal(configure(andy, room, persistentroom="1")),
                "persistent chat off": await refusal(configure(erin, adhoc, persistentroom="1")),
            }
            await configure(andy, room, maxusers="30", roomname="Settings")  # within the limits
            form = await muc.get_room_config(room)
            await stop(andy, bob, erin)
            return refused, form

    refused, form = run(scenario())
    assert refused == {
        "not an owner, reading": ("forbidden", f"Only the owners of {room} may configure it."),
        "not an owner, submitting": ("forbidden", f"Only the owners of {room} may configure it."),
        "too many occupants": (
            "not-acceptable",
            "A room holds at most 30 users at one time; choose a maximum occupancy of 1–30.",
        ),
        "occupants not a number": (
            "not-acceptable",
            "the maximum occupancy of a room: 'many' is not a number of users.",
        ),
        "members-only locked": ("not-allowed", "Room owners may not change whether the room is members-only here."),
        "subject rights locked": (
            "not-allowed",
            "Room owners may not change whether participants may change the subject here.",
        ),
        "anonymous": (
            "not-acceptable",
            "Rooms here show every occupant's real JID to everyone (whois = anyone); anonymous rooms are not offered.",
        ),
        "persistent, not an administrator": (
            "forbidden",
            "Only group chat system administrators may create persistent chat rooms here; andy@example.com is not one.",
        ),
        "persistent chat off": (
            "not-allowed",
            "Persistent chat is not enabled on this cluster; create an ad hoc room instead.",
        ),
    }
    fields = form.get_fields()
    assert fields["muc#roomconfig_maxusers"]["value"] == "30"
    assert fields["muc#roomconfig_maxusers"]["desc"] == "1–30"
    assert fields["muc#roomconfig_membersonly"]["desc"] == "The chat settings let no room owner change this."
    assert stored_config(xworld.database, room) == (
        "ad-hoc",
        RoomConfig(name="Settings", persistent=False, members_only=False, max_occupants=30),
    )


def test_member_lists_decide_who_enters_and_are_the_ones_the_json_protocol_and_console_use(xworld):
    for user in ("andy", "bob", "carol", "dave", "erin"):
        add_user(xworld, user, "imp-1a")
    xworld.user("frank", "imp-1a")  # a JSON protocol user
    node = xworld.nodes["imp-1a"]
    room, team = f"club@{alias_of(node)}", f"team@{alias_of(node)}"

    async def scenario():
        async with running(node), signed_in(node, "frank") as (frank,):
            await frank.create("team", members=["bob"])
            andy, bob, carol, dave, erin = await started(node, "andy", "bob", "carol", "dave", "erin")
            muc = andy.plugin["xep_0045"]
            await muc.join_muc_wait(room, "Andy", maxstanzas=0, timeout=10)
            await muc.set_affiliation(room, "member", jid="bob@example.com", reason="on call")
            await muc.set_affiliation(room, "outcast", jid="carol@example.com")
            await muc.set_affiliation(room, "admin", jid="erin@example.com")
            lists = {
                kind: await muc.get_affiliation_list(room, kind) for kind in ("owner", "admin", "member", "outcast")
            }
            await configure(andy, room, membersonly="1")
            entry = {
                "carol (outcast)": await refusal(
                    carol.plugin["xep_0045"].join_muc_wait(room, "Carol", maxstanzas=0, timeout=10)
                ),
                "dave (no member)": await refusal(
                    dave.plugin["xep_0045"].join_muc_wait(room, "Dave", maxstanzas=0, timeout=10)
                ),
            }
            joined, *_ = await bob.plugin["xep_0045"].join_muc_wait(room, "Bob", maxstanzas=0, timeout=10)
            await erin.plugin["xep_0045"].join_muc_wait(room, "Erin", maxstanzas=0, timeout=10)
            bob_saw = []
            bob.add_event_handler("groupchat_presence", bob_saw.append)
            refused = {
                "a member reads a list": await refusal(bob.plugin["xep_0045"].get_affiliation_list(room, "member")),
                "a member adds one": await refusal(
                    bob.plugin["xep_0045"].set_affiliation(room, "member", jid="dave@example.com")
                ),
                "an admin reads the owners": await refusal(erin.plugin["xep_0045"].get_affiliation_list(room, "owner")),
                "an admin makes an owner": await refusal(
                    erin.plugin["xep_0045"].set_affiliation(room, "owner", jid="dave@example.com")
                ),
                "an admin bans an owner": await refusal(
                    erin.plugin["xep_0045"].set_affiliation(room, "outcast", jid="andy@example.com")
                ),
                "the last owner leaves": await refusal(muc.set_affiliation(room, "none", jid="andy@example.com")),
                "an unknown nickname": await refusal(muc.set_affiliation(room, "member", nick="Nobody")),
                "an admin silences an owner": await refusal(erin.plugin["xep_0045"].set_role(room, "Andy", "visitor")),
            }
            # An admin bans a member who is in the room: out at once, and kept out.
            await erin.plugin["xep_0045"].set_affiliation(room, "outcast", jid="bob@example.com", reason="spam")
            async with asyncio.timeout(5):
                while not any(p["type"] == "unavailable" for p in bob_saw):
                    await asyncio.sleep(0.05)
            banned = next(p for p in bob_saw if p["type"] == "unavailable")
            rejoin = await refusal(bob.plugin["xep_0045"].join_muc_wait(room, "Bob", maxstanzas=0, timeout=10))
            # The JSON protocol's users meet the same lists.
            with pytest.raises(ChatClientError) as not_yet:
                await frank.join(room)
            await muc.set_affiliation(room, "member", jid="frank@example.com")
            frank_joined = await frank.join(room)
            await stop(andy, bob, carol, dave, erin)
            return lists, entry, joined, refused, banned, rejoin, not_yet.value, frank_joined

    lists, entry, joined, refused, banned, rejoin, not_yet, frank_joined = run(scenario())
    assert {kind: sorted(str(jid) for jid in jids) for kind, jids in lists.items()} == {
        "owner": ["andy@example.com"],
        "admin": ["erin@example.com"],
        "member": ["bob@example.com"],
        "outcast": ["carol@example.com"],
    }
    assert entry["carol (outcast)"] == ("forbidden", f"You are banned from {room}.")
    assert entry["dave (no member)"][0] == "registration-required"
    assert joined["muc"]["affiliation"] == "member"
    assert refused == {
        "a member reads a list": ("forbidden", "Only the room's owners and admins may read its member list."),
        "a member adds one": ("forbidden", f"Only the room's owners and admins may change who belongs to {room}."),
        "an admin reads the owners": ("forbidden", "Only the room's owners may read its owner list."),
        "an admin makes an owner": ("forbidden", f"Only owners may make someone an owner of {room}."),
        "an admin bans an owner": (
            "forbidden",
            "Only owners may change the affiliation of andy@example.com, an owner.",
        ),
        "the last owner leaves": ("conflict", f"{room} needs an owner; make someone else an owner first."),
        "an unknown nickname": ("not-acceptable", f"Nobody in {room} has the nickname Nobody."),
        "an admin silences an owner": ("not-allowed", f"Andy is an owner of {room}: a moderator while in the room."),
    }
    assert (banned["muc"]["affiliation"], banned["muc"]["role"]) == ("outcast", "none")
    assert {"110", "301"} <= {str(code) for code in banned["muc"]["status_codes"]}
    assert rejoin == ("forbidden", f"You are banned from {room}.")
    assert not_yet.code == "members-only"
    assert frank_joined["members_only"] is True
    # One store: tc_users, which the JSON protocol's create writes and the console's room report reads.
    assert sorted(
        rows(
            xworld.database,
            "SELECT real_jid, affiliation, reason, initiator_jid FROM tc_users WHERE room_jid = %s",
            (room,),
        )
    ) == [
        ("andy@example.com", "owner", "", "andy@example.com"),
        ("bob@example.com", "outcast", "spam", "erin@example.com"),
        ("carol@example.com", "outcast", "", "andy@example.com"),
        ("erin@example.com", "admin", "", "andy@example.com"),
        ("frank@example.com", "member", "", "andy@example.com"),
    ]
    assert sorted(rows(xworld.database, "SELECT real_jid, affiliation FROM tc_users WHERE room_jid = %s", (team,))) == [
        ("bob@example.com", "member"),
        ("frank@example.com", "owner"),
    ]


def test_a_subject_change_is_stored_broadcast_sent_on_join_after_the_history_and_survives_failover(xworld):
    for user in ("andy", "bob", "dave"):
        add_user(xworld, user, "imp-1a")
    add_user(xworld, "carol", "imp-1b")
    xworld.configure(owners_change_subject_level=True)
    a, b = xworld.nodes["imp-1a"], xworld.nodes["imp-1b"]
    room = f"plans@{alias_of(a)}"

    async def scenario():
        async with running(a, b) as (node_a, node_b):
            andy, bob, dave = await started(a, "andy", "bob", "dave")
            await andy.plugin["xep_0045"].join_muc_wait(room, "Andy", maxstanzas=0, timeout=10)
            await bob.plugin["xep_0045"].join_muc_wait(room, "Bob", maxstanzas=0, timeout=10)
            heard, errors = [], []
            bob.add_event_handler("groupchat_subject", heard.append)
            for client in (bob, dave):
                client.add_event_handler("groupchat_message_error", errors.append)
            await post(andy, room, "before the subject")
            andy.plugin["xep_0045"].set_subject(room, "Release 15 planning")
            async with asyncio.timeout(5):
                while not heard:
                    await asyncio.sleep(0.05)
            # Refusals: a participant once the owner keeps the subject to moderators, someone
            # not in the room, a subject longer than tc_rooms.subject holds.
            await configure(andy, room, changesubject="0")
            bob.plugin["xep_0045"].set_subject(room, "Bob's subject")
            dave.plugin["xep_0045"].set_subject(room, "Dave's subject")
            andy.plugin["xep_0045"].set_subject(room, "x" * 256)
            andy_errors = []
            andy.add_event_handler("groupchat_message_error", andy_errors.append)
            async with asyncio.timeout(5):
                while len(errors) < 2 or not andy_errors:
                    await asyncio.sleep(0.05)
            await stop(andy, bob, dave)
            # Failover: 1B takes 1A's rooms, as its SRM does, and loads them from the database.
            await node_a.tc.stop()
            await Node.objects.filter(pk=a.pk).aupdate(rooms_hosted_by=b)
            await node_b.tc.refresh_hosting()
            (carol,) = await started(b, "carol")
            arrivals = []
            carol.add_event_handler("groupchat_message", lambda m: arrivals.append(("message", m["body"])))
            carol.add_event_handler(
                "groupchat_subject", lambda m: arrivals.append(("subject", m["subject"], m["from"].resource))
            )
            await carol.plugin["xep_0045"].join_muc_wait(room, "Carol", maxstanzas=5, timeout=15)
            await stop(carol)
            return heard, errors, andy_errors, arrivals

    heard, errors, andy_errors, arrivals = run(scenario())
    assert (heard[0]["subject"], heard[0]["from"].resource) == ("Release 15 planning", "Andy")
    assert sorted((e["error"]["condition"], e["error"]["text"]) for e in errors) == [
        ("forbidden", f"Only moderators may change the subject of {room}."),
        ("not-acceptable", f"Join {room} before changing its subject."),
    ]
    assert (andy_errors[0]["error"]["condition"], andy_errors[0]["error"]["text"]) == (
        "not-acceptable",
        "A subject may hold at most 255 characters.",
    )
    assert arrivals == [("message", "before the subject"), ("subject", "Release 15 planning", "Andy")]
    subject, spacket = rows(xworld.database, "SELECT subject, spacket FROM tc_rooms WHERE room_jid = %s", (room,))[0]
    assert subject == "Release 15 planning"
    assert f'from="{room}/Andy"' in spacket and "<subject>Release 15 planning</subject>" in spacket


def test_an_owner_destroys_a_room_once_nobody_else_is_in_it_and_nobody_else_may(xworld):
    add_user(xworld, "andy", "imp-1a")
    add_user(xworld, "bob", "imp-1a")
    node = xworld.nodes["imp-1a"]
    room = f"old-project@{alias_of(node)}"

    async def scenario():
        async with running(node) as (running_node,):
            andy, bob = await started(node, "andy", "bob")
            await andy.plugin["xep_0045"].join_muc_wait(room, "Andy", maxstanzas=0, timeout=10)
            await bob.plugin["xep_0045"].join_muc_wait(room, "Bob", maxstanzas=0, timeout=10)
            await post(andy, room, "the last word")
            by_bob = await refusal(bob.plugin["xep_0045"].destroy(room))
            occupied = await refusal(andy.plugin["xep_0045"].destroy(room, reason="Project over"))
            bob.plugin["xep_0045"].leave_muc(room, "Bob")
            async with asyncio.timeout(5):
                while len(running_node.tc.rooms[room].room.occupants) > 1:
                    await asyncio.sleep(0.05)
            seen = []
            andy.add_event_handler("groupchat_presence", seen.append)
            await andy.plugin["xep_0045"].destroy(room, reason="Project over")
            async with asyncio.timeout(5):
                while not any(p["type"] == "unavailable" for p in seen):
                    await asyncio.sleep(0.05)
            gone = await refusal(andy.plugin["xep_0030"].get_info(jid=room))
            await stop(andy, bob)
            return by_bob, occupied, seen, gone

    by_bob, occupied, seen, gone = run(scenario())
    assert by_bob == ("forbidden", f"Only the owners of {room} may destroy it.")
    assert occupied == (
        "not-allowed",
        f"{room} cannot be destroyed while 1 other user(s) are in it; it can be destroyed once they have left.",
    )
    destroyed = next(p for p in seen if p["type"] == "unavailable")
    assert destroyed["muc"]["destroy"]["reason"] == "Project over"
    assert gone[0] == "item-not-found"
    for table in ("tc_rooms", "tc_users", "tc_messages"):
        assert rows(xworld.database, f"SELECT count(*) FROM {table} WHERE room_jid = %s", (room,)) == [(0,)]  # noqa: S608


def test_occupants_who_stop_belonging_are_put_out_and_the_others_hear_affiliation_changes(xworld):
    for user in ("andy", "bob", "dave"):
        add_user(xworld, user, "imp-1a")
    node = xworld.nodes["imp-1a"]
    room = f"growing@{alias_of(node)}"

    async def scenario():
        async with running(node):
            andy, bob, dave = await started(node, "andy", "bob", "dave")
            muc = andy.plugin["xep_0045"]
            await muc.join_muc_wait(room, "Andy", maxstanzas=0, timeout=10)
            await bob.plugin["xep_0045"].join_muc_wait(room, "Bob", maxstanzas=0, timeout=10)
            await dave.plugin["xep_0045"].join_muc_wait(room, "Dave", maxstanzas=0, timeout=10)
            heard = {name: [] for name in ("andy", "bob", "dave")}
            for name, client in (("andy", andy), ("bob", bob), ("dave", dave)):
                client.add_event_handler("groupchat_presence", heard[name].append)

            async def until(name, predicate):
                async with asyncio.timeout(5):
                    while not any(predicate(p) for p in heard[name]):
                        await asyncio.sleep(0.05)
                return next(p for p in heard[name] if predicate(p))

            await muc.set_affiliation(room, "member", jid="bob@example.com")
            promoted = await until(
                "dave", lambda p: p["from"].resource == "Bob" and p["muc"]["affiliation"] == "member"
            )
            await configure(andy, room, membersonly="1")
            dave_out = await until("dave", lambda p: p["type"] == "unavailable" and p["from"].resource == "Dave")
            await muc.set_affiliation(room, "none", jid="bob@example.com")
            bob_out = await until("bob", lambda p: p["type"] == "unavailable" and p["from"].resource == "Bob")
            andy_heard = await until("andy", lambda p: p["type"] == "unavailable" and p["from"].resource == "Bob")
            await stop(andy, bob, dave)
            return promoted, dave_out, bob_out, andy_heard

    promoted, dave_out, bob_out, andy_heard = run(scenario())
    assert (promoted["muc"]["affiliation"], promoted["muc"]["role"]) == ("member", "participant")
    assert {str(code) for code in dave_out["muc"]["status_codes"]} == {"110", "322"}
    assert {str(code) for code in bob_out["muc"]["status_codes"]} == {"110", "321"}
    assert {str(code) for code in andy_heard["muc"]["status_codes"]} == {"321"}
