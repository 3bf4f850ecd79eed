"""XEP-0045 reserved nicknames with a standard client (slixmpp): every owner, admin and member of a
room has one, the nickname ``tc_users.nick_jid`` keeps (their JID's localpart unless they
registered another with the room, §7.10); a client discovers it (§7.12, disco#info node
``x-roomuser-item``), and nobody else may enter or change to it (§7.2.9, §7.6: ``conflict``), on
either node of the pair and after a failover. Real PostgreSQL and Redis, in-process nodes."""

from __future__ import annotations

import asyncio

from asgiref.sync import sync_to_async
from defusedxml.ElementTree import fromstring

from tests.chat.conftest import run, running
from tests.chat.test_routing import move_rooms_and_users
from tests.chat.test_xmpp_muc_admin import alias_of, refusal, rows, started, stop
from tests.chat.test_xmpp_occupants import presence_error, until
from tests.chat.test_xmpp_roles import roles_heard
from tests.chat.test_xmpp_rooms import post
from tests.chat.xmpp import Client, add_user, configure

REGISTER = "{jabber:iq:register}"
DATA = "{jabber:x:data}"


async def reserved_nick(client: Client, room: str) -> str | None:
    """The nickname the room reserves for the client's user (XEP-0045 §7.12), None when none."""
    info = await client.plugin["xep_0030"].get_info(jid=room, node="x-roomuser-item", timeout=5)
    identities = info.xml.findall(".//{http://jabber.org/protocol/disco#info}identity")
    return identities[0].get("name") if identities else None


async def registration(client: Client, room: str):
    """The room's answer to a request for registration requirements (XEP-0045 §7.10)."""
    iq = client.make_iq_get(ito=room)
    iq.set_payload(fromstring("<query xmlns='jabber:iq:register'/>"))
    return (await iq.send(timeout=5)).xml.find(f"{REGISTER}query")


def register(client: Client, room: str, nick: str):
    """Submit the registration form with ``nick`` (an awaitable IQ)."""
    iq = client.make_iq_set(ito=room)
    iq.set_payload(
        fromstring(
            "<query xmlns='jabber:iq:register'><x xmlns='jabber:x:data' type='submit'>"
            "<field var='FORM_TYPE'><value>http://jabber.org/protocol/muc#register</value></field>"
            f"<field var='muc#register_roomnick'><value>{nick}</value></field></x></query>"
        )
    )
    return iq.send(timeout=5)


def stored_nicks(database: str, room: str) -> dict[str, str]:
    return dict(rows(database, "SELECT real_jid, nick_jid FROM tc_users WHERE room_jid = %s", (room,)))


def test_a_members_registered_nickname_is_theirs_alone_on_either_node_and_after_a_failover(xworld):
    add_user(xworld, "andy", "imp-1a")
    add_user(xworld, "bob", "imp-1a")
    add_user(xworld, "carol", "imp-1b")
    a, b = xworld.nodes["imp-1a"], xworld.nodes["imp-1b"]
    room = f"ops@{alias_of(a)}"

    async def scenario():
        async with running(a, b) as (node_a, node_b):
            andy, bob = await started(a, "andy", "bob")
            (carol,) = await started(b, "carol")
            muc = {client: client.plugin["xep_0045"] for client in (andy, bob, carol)}
            await muc[andy].join_muc_wait(room, "Andy", maxstanzas=0, timeout=10)  # the owner
            await muc[andy].set_affiliation(room, "member", jid="bob@example.com")
            found = {"bob before": await reserved_nick(bob, room), "carol": await reserved_nick(carol, room)}
            asked = await registration(bob, room)
            await register(bob, room, "Robert")
            found["bob after"] = await reserved_nick(bob, room)
            found["andy"] = await reserved_nick(andy, room)
            # Carol (no affiliation, on 1B) may neither register nor take Bob's nickname.
            not_a_member = await refusal(registration(carol, room))
            join_as_robert = await refusal(muc[carol].join_muc_wait(room, "Robert", maxstanzas=0, timeout=10))
            await muc[carol].join_muc_wait(room, "Carol", maxstanzas=0, timeout=10)
            change_to_robert = await presence_error(carol, f"{room}/Robert")
            taken_by_andy = await refusal(register(bob, room, "Andy"))  # an occupant has it
            bob_joined, *_ = await muc[bob].join_muc_wait(room, "Robert", maxstanzas=0, timeout=10)
            spoken = await post(bob, room, "Robert here")
            # 1A fails: 1B loads the room, its members and their nicknames from the database.
            moved = [asyncio.ensure_future(c.wait_until("session_start", 30)) for c in (andy, bob)]
            await node_a.tc.stop()
            await sync_to_async(move_rooms_and_users, thread_sensitive=False)("imp-1a", "imp-1b")
            await node_b.tc.refresh_hosting()
            await asyncio.gather(*moved)
            after_failover = await presence_error(carol, f"{room}/Robert")  # Carol stayed in, on 1B
            found["bob on 1B"] = await reserved_nick(bob, room)
            await stop(andy, bob, carol)
            return (
                found, asked, not_a_member, join_as_robert, change_to_robert, taken_by_andy, bob_joined,
                spoken, after_failover,
            )  # fmt: skip

    (
        found, asked, not_a_member, join_as_robert, change_to_robert, taken_by_andy, bob_joined, spoken,
        after_failover,
    ) = run(scenario())  # fmt: skip
    # Members have their localpart reserved until they register another nickname; others none.
    assert found == {"bob before": "bob", "carol": None, "bob after": "Robert", "andy": "andy", "bob on 1B": "Robert"}
    assert asked.find(f"{REGISTER}registered") is not None
    assert asked.findtext(f"{REGISTER}username") == "bob"
    assert not_a_member == (
        "not-allowed",
        f"Only members of {room} register a nickname with it; ask a room owner or admin to add you.",
    )
    reserved = f"Robert is the registered nickname of another member of {room}."
    assert join_as_robert == ("conflict", reserved)
    assert change_to_robert == (f"{room}/Robert", "conflict", reserved)
    assert taken_by_andy == ("conflict", f"Someone else in {room} has the nickname Andy.")
    assert (bob_joined["from"].resource, bob_joined["muc"]["affiliation"]) == ("Robert", "member")
    assert spoken["from"].resource == "Robert"
    assert after_failover == (f"{room}/Robert", "conflict", reserved)
    assert stored_nicks(xworld.database, room)["bob@example.com"] == f"{room}/Robert"


def test_where_users_add_themselves_as_members_registering_makes_one_and_everyone_hears_it(xworld):
    """With *Users can add themselves to rooms as members* on, a user with no affiliation gets the
    registration form and, submitting it, becomes a member with the nickname reserved (XEP-0045
    §7.10). Erin, in the moderated room when the owner took her membership (a visitor then),
    registers again: everyone hears her new affiliation, with the voice members have. An outcast
    may not register, and a blank nickname is refused."""
    xworld.configure(users_add_themselves_as_members=True)
    for user in ("andy", "dave", "erin", "frank"):
        add_user(xworld, user, "imp-1a")
    a = xworld.nodes["imp-1a"]
    room = f"ops@{alias_of(a)}"

    async def scenario():
        async with running(a):
            andy, dave, erin, frank = await started(a, "andy", "dave", "erin", "frank")
            muc = {client: client.plugin["xep_0045"] for client in (andy, dave, erin, frank)}
            await muc[andy].join_muc_wait(room, "Andy", maxstanzas=0, timeout=10)
            await configure(andy, room, moderatedroom="1")
            await muc[andy].set_affiliation(room, "outcast", jid="frank@example.com")
            form = await registration(dave, room)  # Dave is not in the room
            await register(dave, room, "Dave the Brave")
            dave_joined, *_ = await muc[dave].join_muc_wait(room, "Dave the Brave", maxstanzas=0, timeout=10)
            erin_joined, *_ = await muc[erin].join_muc_wait(room, "Erin", maxstanzas=0, timeout=10)  # a member
            at_andy = roles_heard(andy, room)
            await muc[andy].set_affiliation(room, "none", jid="erin@example.com")
            await until(lambda: at_andy)
            await register(erin, room, "Erin")
            await until(lambda: len(at_andy) >= 2)
            erin_speaks = await post(erin, room, "a member again")
            outcast = await refusal(registration(frank, room))
            blank = await refusal(register(dave, room, "   "))
            await stop(andy, dave, erin, frank)
            return form, dave_joined, erin_joined, at_andy, erin_speaks, outcast, blank

    form, dave_joined, erin_joined, at_andy, erin_speaks, outcast, blank = run(scenario())
    assert form.find(f"{REGISTER}registered") is None
    fields = {field.get("var"): field for field in form.find(f"{DATA}x").findall(f"{DATA}field")}
    assert fields["FORM_TYPE"].findtext(f"{DATA}value") == "http://jabber.org/protocol/muc#register"
    assert fields["muc#register_roomnick"].find(f"{DATA}required") is not None
    assert (dave_joined["from"].resource, dave_joined["muc"]["affiliation"]) == ("Dave the Brave", "member")
    assert erin_joined["muc"]["affiliation"] == "member"
    stored = rows(
        xworld.database, "SELECT real_jid, affiliation, nick_jid, reason FROM tc_users WHERE room_jid = %s", (room,)
    )
    assert ("dave@example.com", "member", f"{room}/Dave the Brave", "Registered") in stored
    assert ("erin@example.com", "member", f"{room}/Erin", "Registered") in stored
    assert [(kind, nick, role) for kind, nick, role, *_ in at_andy[:2]] == [
        ("available", "Erin", "visitor"),  # no longer a member of a moderated room
        ("available", "Erin", "participant"),  # registered: a member again
    ]
    assert erin_speaks["body"] == "a member again"
    assert outcast == ("forbidden", f"You are banned from {room}.")
    assert blank[0] == "bad-request"


def test_owners_and_admins_set_and_unset_a_members_reserved_nickname_in_the_member_list(xworld):
    """XEP-0045 §9.5: a member list item with ``nick`` sets the member's reserved nickname, and an
    empty ``nick`` unsets it (back to their JID's localpart); the member list shows it, the member
    discovers it, and nobody else may take it. A nickname another member reserved is a conflict."""
    for user, node in (("andy", "imp-1a"), ("bob", "imp-1a"), ("carol", "imp-1b")):
        add_user(xworld, user, node)
    a, b = xworld.nodes["imp-1a"], xworld.nodes["imp-1b"]
    room = f"ops@{alias_of(a)}"

    def member_item(jid: str, nick: str | None) -> str:
        nick_attr = "" if nick is None else f" nick='{nick}'"
        return f"<item affiliation='member' jid='{jid}'{nick_attr}/>"

    async def scenario():
        async with running(a, b):
            andy, bob = await started(a, "andy", "bob")
            (carol,) = await started(b, "carol")
            await andy.plugin["xep_0045"].join_muc_wait(room, "Andy", maxstanzas=0, timeout=10)
            await admin_set(andy, room, member_item("bob@example.com", "Bobby"))
            members = await member_list(andy, room)
            bobs = await reserved_nick(bob, room)
            taken = await refusal(carol.plugin["xep_0045"].join_muc_wait(room, "Bobby", maxstanzas=0, timeout=10))
            clash = await refusal(admin_set(andy, room, member_item("carol@example.com", "Bobby")))
            stored = stored_nicks(xworld.database, room)["bob@example.com"]
            await admin_set(andy, room, member_item("bob@example.com", ""))
            unset = await reserved_nick(bob, room)
            carol_joined, *_ = await carol.plugin["xep_0045"].join_muc_wait(room, "Bobby", maxstanzas=0, timeout=10)
            await stop(andy, bob, carol)
            return members, bobs, taken, clash, stored, unset, carol_joined

    members, bobs, taken, clash, stored, unset, carol_joined = run(scenario())
    assert members == {"bob@example.com": "Bobby"}
    assert bobs == "Bobby"
    assert taken == ("conflict", f"Bobby is the registered nickname of another member of {room}.")
    assert clash == ("conflict", f"Bobby is the registered nickname of another member of {room}.")
    assert stored == f"{room}/Bobby"
    assert unset == "bob"
    assert stored_nicks(xworld.database, room)["bob@example.com"] == f"{room}/bob"
    assert carol_joined["from"].resource == "Bobby"
    assert "carol@example.com" not in stored_nicks(xworld.database, room)  # the clash stored nothing


def admin_set(client: Client, room: str, items: str):
    iq = client.make_iq_set(ito=room)
    iq.set_payload(fromstring(f"<query xmlns='http://jabber.org/protocol/muc#admin'>{items}</query>"))
    return iq.send(timeout=5)


async def member_list(client: Client, room: str) -> dict[str, str | None]:
    """The room's member list as its owner reads it: JID → the nick the room gives."""
    iq = client.make_iq_get(ito=room)
    iq.set_payload(
        fromstring("<query xmlns='http://jabber.org/protocol/muc#admin'><item affiliation='member'/></query>")
    )
    answer = await iq.send(timeout=5)
    items = answer.xml.findall(".//{http://jabber.org/protocol/muc#admin}item")
    return {item.get("jid"): item.get("nick") for item in items}
