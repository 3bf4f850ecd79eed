"""XEP-0045 occupant use cases with a standard client (slixmpp's xep_0045): a nickname change in
a room (§7.6), private messages between occupants (§7.5) and mediated invitations (§7.8.2), with
occupants signed in on both nodes of the redundancy group (the room is hosted by 1A's Text
Conference Manager; 1B's users reach it over the bus, and 1B's router delivers to them), after a
failover too, and each refusal with its XEP-0045 error. Real PostgreSQL and Redis; in-process nodes, and for the last
test real node agents (``manage.py run_node``)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from asgiref.sync import sync_to_async
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import StanzaPath

from messaging.tc import requests
from tests.agent import conftest as agent_fixtures
from tests.agent.conftest import start_pair_with_xmpp
from tests.chat.conftest import next_event, run, running, signed_in
from tests.chat.test_routing import move_rooms_and_users
from tests.chat.test_xmpp_muc_admin import alias_of, rows, started, stop
from tests.chat.test_xmpp_rooms import post
from tests.chat.xmpp import Client, add_user
from tests.conftest import chat_user

# Real node agents as subprocesses and their redundancy group, shared with the agent suite.
agents = agent_fixtures.agents
pair = agent_fixtures.pair

MUC_USER = "{http://jabber.org/protocol/muc#user}"


async def until(condition, timeout: float = 5) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.05)


def heard(client: Client, room: str) -> list[tuple]:
    """What the client hears of the room's occupants: (type, nick, status codes, item nick)."""
    seen: list[tuple] = []

    def presence(stanza) -> None:
        if stanza["from"].bare == room:
            muc = stanza["muc"]
            codes = sorted(str(code) for code in muc["status_codes"])
            seen.append((stanza["type"], stanza["from"].resource, codes, muc["item_nick"] or None))

    client.add_event_handler("groupchat_presence", presence)
    return seen


async def presence_error(client: Client, to: str) -> tuple[str, str, str]:
    """Send an available presence to ``to`` and return the error's (from, condition, text)."""
    errors = []
    # slixmpp's xep_0045 keeps presence from occupant JIDs away from its generic events.
    client.register_handler(Callback(f"error from {to}", StanzaPath("presence@type=error"), errors.append))
    client.make_presence(pto=to).send()
    await until(lambda: errors)
    client.remove_handler(f"error from {to}")
    error = errors[0]
    return str(error["from"]), error["error"]["condition"], error["error"]["text"]


def test_a_nickname_change_reaches_every_occupant_on_both_nodes_and_a_taken_or_blank_nick_is_refused(xworld):
    for user, node in (("andy", "imp-1a"), ("carol", "imp-1a"), ("bob", "imp-1b")):
        add_user(xworld, user, node)
    xworld.configure(archive_joins_and_exits=True)
    a, b = xworld.nodes["imp-1a"], xworld.nodes["imp-1b"]
    room = f"ops@{alias_of(a)}"

    async def scenario():
        async with running(a, b):
            andy, carol = await started(a, "andy", "carol")
            (bob,) = await started(b, "bob")
            for client, nick in ((andy, "Andy"), (carol, "Carol"), (bob, "Bob")):
                await client.plugin["xep_0045"].join_muc_wait(room, nick, maxstanzas=0, timeout=10)
            at_andy, at_bob = heard(andy, room), heard(bob, room)
            # Bob, on 1B, takes another nickname in 1A's room; then Andy, on 1A, does.
            bobs = await bob.plugin["xep_0045"].set_self_nick(room, "Robert", timeout=10)
            await until(lambda: len(at_andy) >= 2)
            andys = await andy.plugin["xep_0045"].set_self_nick(room, "Andrew", timeout=10)
            await until(lambda: len(at_bob) >= 4)
            reflection = await post(bob, room, "posted as Robert")
            ping = await bob.plugin["xep_0199"].ping(f"{room}/Robert", timeout=10)
            # Refusals: a nickname someone else has (from 1A and from 1B), a blank one.
            taken = await presence_error(carol, f"{room}/Robert")
            taken_from_b = await presence_error(bob, f"{room}/Carol")
            blank = await presence_error(carol, f"{room}/   ")
            still_up = await post(carol, room, "still here")  # the stream stays up after each
            await stop(andy, carol, bob)
            return bobs, andys, at_andy, at_bob, reflection, ping, taken, taken_from_b, blank, still_up

    bobs, andys, at_andy, at_bob, reflection, ping, taken, taken_from_b, blank, still_up = run(scenario())
    assert (bobs, andys) == ("Robert", "Andrew")
    # XEP-0045 §7.6: unavailable from the old nick with 303 and the new nick, then the new one.
    assert at_andy[:2] == [("unavailable", "Bob", ["303"], "Robert"), ("available", "Robert", [], None)]
    assert at_bob == [
        ("unavailable", "Bob", ["110", "303"], "Robert"),
        ("available", "Robert", ["110"], None),
        ("unavailable", "Andy", ["303"], "Andrew"),
        ("available", "Andrew", [], None),
    ]
    assert reflection["from"].resource == "Robert"
    assert ping is not None
    assert taken == (f"{room}/Robert", "conflict", f"Someone else in {room} has the nickname Robert.")
    assert taken_from_b == (f"{room}/Carol", "conflict", f"Someone else in {room} has the nickname Carol.")
    assert blank[1] == "jid-malformed"
    assert still_up["body"] == "still here"
    timelog = rows(
        xworld.database, "SELECT nick_jid, direction FROM tc_timelog WHERE real_jid = %s", ("bob@example.com",)
    )
    assert (f"{room}/Bob", "L") in timelog and (f"{room}/Robert", "E") in timelog


def chats(client: Client) -> list:
    """Every private message (type chat or normal, from an occupant JID) the client receives."""
    received: list = []

    def message(stanza) -> None:
        if stanza["type"] in ("chat", "normal") and stanza["from"].resource:
            received.append(stanza)

    client.add_event_handler("message", message)
    return received


async def message_error(client: Client, to: str, body: str, kind: str = "chat") -> tuple[str, str, str]:
    """Send a message to ``to`` and return the error's (from, condition, text)."""
    errors: list = []
    name = f"message error from {to}"
    client.register_handler(Callback(name, StanzaPath("message@type=error"), errors.append))
    client.make_message(mto=to, mbody=body, mtype=kind).send()
    await until(lambda: errors)
    client.remove_handler(name)
    error = errors[0]
    return str(error["from"]), error["error"]["condition"], error["error"]["text"]


def test_private_messages_reach_the_occupant_on_either_node_from_the_senders_nick_and_are_not_stored(xworld):
    for user, node in (("andy", "imp-1a"), ("carol", "imp-1a"), ("dave", "imp-1a"), ("bob", "imp-1b")):
        add_user(xworld, user, node)
    xworld.user("frank", "imp-1b")  # a JSON client
    a, b = xworld.nodes["imp-1a"], xworld.nodes["imp-1b"]
    room = f"ops@{alias_of(a)}"

    async def scenario():
        async with running(a, b), signed_in(b, "frank") as (frank,):
            andy, carol, dave = await started(a, "andy", "carol", "dave")
            (bob,) = await started(b, "bob")
            for client, nick in ((andy, "Andy"), (carol, "Carol"), (bob, "Bob")):
                await client.plugin["xep_0045"].join_muc_wait(room, nick, maxstanzas=0, timeout=10)
            await frank.join(room)
            at_andy, at_bob, at_carol = chats(andy), chats(bob), chats(carol)
            andy.make_message(mto=f"{room}/frank", mbody="to Frank's JSON client", mtype="chat").send()
            at_frank = await next_event(frank, "private")
            andy.make_message(mto=f"{room}/Bob", mbody="to Bob on 1B", mtype="chat").send()  # 1A → 1B
            await until(lambda: at_bob)
            bob.make_message(mto=f"{room}/Andy", mbody="back to Andy on 1A", mtype="chat").send()  # 1B → 1A
            andy.make_message(mto=f"{room}/Carol", mbody="to Carol, same node").send()  # type normal
            await until(lambda: at_andy and at_carol)
            # Refusals: an unknown nick, someone not in the room, a groupchat message to an occupant.
            unknown = await message_error(andy, f"{room}/Nobody", "hello?")
            outsider = await message_error(dave, f"{room}/Bob", "let me in")
            groupchat = await message_error(andy, f"{room}/Bob", "wrong type", kind="groupchat")
            still_up = await post(andy, room, "still here")
            archive = await andy.plugin["xep_0313"].retrieve(jid=room)
            await stop(andy, carol, dave, bob)
            return at_andy, at_bob, at_carol, at_frank, unknown, outsider, groupchat, still_up, archive

    at_andy, at_bob, at_carol, at_frank, unknown, outsider, groupchat, still_up, archive = run(scenario())
    [to_bob], [to_andy], [to_carol] = at_bob, at_andy, at_carol
    assert (str(to_bob["from"]), to_bob["to"].bare, to_bob["type"], to_bob["body"]) == (
        f"{room}/Andy",
        "bob@example.com",
        "chat",
        "to Bob on 1B",
    )
    assert to_bob.xml.find(f"{MUC_USER}x") is not None
    assert to_bob["to"].resource  # the occupant's full JID
    assert (str(to_andy["from"]), to_andy["body"]) == (f"{room}/Bob", "back to Andy on 1A")
    assert (str(to_carol["from"]), to_carol["type"]) == (f"{room}/Andy", "normal")
    assert to_carol["body"] == "to Carol, same node"
    assert {key: at_frank[key] for key in ("room", "nick", "from", "body", "message_type")} == {
        "room": room,
        "nick": "Andy",
        "from": "andy@example.com",
        "body": "to Frank's JSON client",
        "message_type": "chat",
    }
    assert unknown == (f"{room}/Nobody", "item-not-found", f"Nobody in {room} has the nickname Nobody.")
    assert outsider[:2] == (f"{room}/Bob", "not-acceptable")
    assert groupchat[:2] == (f"{room}/Bob", "bad-request")
    assert still_up["body"] == "still here"
    bodies = [m["mam_result"]["forwarded"]["stanza"]["body"] for m in archive["mam"]["results"]]
    assert bodies == ["still here"]
    assert rows(xworld.database, "SELECT count(*) FROM tc_messages WHERE msg LIKE %s", ("%Andy on 1A%",)) == [(0,)]


def test_private_messages_and_invitations_follow_the_lowest_participation_levels_of_the_chat_settings(xworld):
    for user in ("andy", "bob"):
        add_user(xworld, user, "imp-1a")
    xworld.configure(private_message_min_level="moderator", invite_min_level="moderator")
    a = xworld.nodes["imp-1a"]
    room = f"ops@{alias_of(a)}"

    async def scenario():
        async with running(a):
            andy, bob = await started(a, "andy", "bob")
            for client, nick in ((andy, "Andy"), (bob, "Bob")):  # Andy creates the room: its owner
                await client.plugin["xep_0045"].join_muc_wait(room, nick, maxstanzas=0, timeout=10)
            at_bob = chats(bob)
            refused = await message_error(bob, f"{room}/Andy", "may I?")
            not_invited = await invite_error(bob, room, "carol@example.com")
            andy.make_message(mto=f"{room}/Bob", mbody="a moderator may", mtype="chat").send()
            await until(lambda: at_bob)
            await stop(andy, bob)
            return refused, not_invited, at_bob

    refused, not_invited, at_bob = run(scenario())
    assert refused == (f"{room}/Andy", "forbidden", f"Only moderators may send private messages in {room}.")
    assert not_invited == (room, "forbidden", f"Only moderators may invite people to {room}.")
    assert [m["body"] for m in at_bob] == ["a moderator may"]


def invitations(client: Client) -> list:
    """Every invitation or decline the room passes on to the client (slixmpp's own events skip
    some: a decline from a room the client is not in)."""
    received: list = []
    for kind in ("invite", "decline"):
        client.register_handler(Callback(f"muc {kind}", StanzaPath(f"message/muc/{kind}"), received.append))
    return received


def mediated(item) -> tuple:
    """(room, what, from, reason, body) of an invitation or a decline as the client got it."""
    x = item.xml.find(f"{MUC_USER}x")
    inner = x.find(f"{MUC_USER}invite")
    if inner is None:
        inner = x.find(f"{MUC_USER}decline")
    reason = inner.findtext(f"{MUC_USER}reason") or ""
    return str(item["from"]), inner.tag.rpartition("}")[2], inner.get("from"), reason, item["body"]


def test_invitations_reach_the_invitee_on_either_node_declines_come_back_and_members_only_rooms_admit_them(xworld):
    users = {"andy": "imp-1a", "carol": "imp-1a", "dave": "imp-1a", "erin": "imp-1a", "bob": "imp-1b"}
    for user, node in users.items():
        add_user(xworld, user, node)
    a, b = xworld.nodes["imp-1a"], xworld.nodes["imp-1b"]
    ops, board = f"ops@{alias_of(a)}", f"board@{alias_of(a)}"

    async def scenario():
        async with running(a, b) as (node_a, _node_b):
            await node_a.tc.handle(requests.CreateRoom(room=board, user="andy@example.com", members_only=True))
            andy, carol, dave = await started(a, "andy", "carol", "dave")
            (bob,) = await started(b, "bob")
            for client, room, nick in ((andy, ops, "Andy"), (carol, ops, "Carol"), (andy, board, "Andy")):
                await client.plugin["xep_0045"].join_muc_wait(room, nick, maxstanzas=0, timeout=10)
            at_andy, at_bob, at_dave = invitations(andy), invitations(bob), invitations(dave)
            andy.plugin["xep_0045"].invite(ops, "bob@example.com", "stand-up")  # 1A → Bob on 1B
            carol.plugin["xep_0045"].invite(ops, "dave@example.com")  # a participant, same node
            await until(lambda: at_bob and at_dave)
            bob.plugin["xep_0045"].decline(ops, "andy@example.com", "on holiday")  # back from 1B
            await until(lambda: at_andy)
            # The members-only room: the owner's invitation makes Bob and Erin (signed in nowhere:
            # nothing comes back) members; Bob may join then.
            andy.plugin["xep_0045"].invite(board, "bob@example.com")
            andy.plugin["xep_0045"].invite(board, "erin@example.com")
            await post(andy, ops, "after the invitations")  # any error would have come before this
            await until(lambda: len(at_bob) == 2)
            joined = await bob.plugin["xep_0045"].join_muc_wait(board, "Bob", maxstanzas=0, timeout=10)
            # Refusals: a member inviting to a members-only room (only moderators may, by default),
            # someone not in the room, an invitee that is not a JID, neither an invitation nor a
            # decline, a decline to a room that does not exist; the stream stays up after each.
            member = await invite_error(bob, board, "carol@example.com")
            outsider = await invite_error(dave, ops, "carol@example.com")
            malformed = await invite_error(andy, ops, "not a jid")
            empty = await muc_user_error(andy, ops, "<status code='110'/>")
            nowhere = await muc_user_error(bob, f"nowhere@{alias_of(a)}", "<decline to='andy@example.com'/>")
            still_up = await post(andy, ops, "still here")
            await stop(andy, carol, dave, bob)
            return at_andy, at_bob, at_dave, joined, member, outsider, malformed, empty, nowhere, still_up

    at_andy, at_bob, at_dave, joined, member, outsider, malformed, empty, nowhere, still_up = run(scenario())
    assert [mediated(m) for m in at_bob] == [
        (ops, "invite", "andy@example.com", "stand-up", f"andy@example.com invited you to the room {ops} (stand-up)"),
        (board, "invite", "andy@example.com", "", f"andy@example.com invited you to the room {board}"),
    ]
    assert all(m["to"].bare == "bob@example.com" and m["to"].resource for m in at_bob)
    assert [mediated(m)[:4] for m in at_dave] == [(ops, "invite", "carol@example.com", "")]
    assert [mediated(m)[:4] for m in at_andy] == [(ops, "decline", "bob@example.com", "on holiday")]
    assert joined[0]["muc"]["affiliation"] == "member"
    assert sorted(
        rows(
            xworld.database,
            "SELECT real_jid, affiliation, reason, initiator_jid FROM tc_users WHERE room_jid = %s",
            (board,),
        )
    ) == [
        ("andy@example.com", "owner", "", "andy@example.com"),
        ("bob@example.com", "member", "Invited by Andy", "andy@example.com"),
        ("erin@example.com", "member", "Invited by Andy", "andy@example.com"),
    ]
    assert member == (board, "forbidden", f"Only moderators may invite people to {board}, a members-only room.")
    assert outsider[:2] == (ops, "not-acceptable")
    assert malformed[:2] == (ops, "jid-malformed")
    assert empty[:2] == (ops, "bad-request")
    assert nowhere[:2] == (f"nowhere@{alias_of(a)}", "item-not-found")
    assert still_up["body"] == "still here"


def test_a_direct_invitation_as_converse_sends_it_is_checked_by_the_room_and_reaches_the_invitee(xworld):
    for user, node in (("andy", "imp-1a"), ("dave", "imp-1a"), ("bob", "imp-1b")):
        add_user(xworld, user, node)
    a, b = xworld.nodes["imp-1a"], xworld.nodes["imp-1b"]
    ops = f"ops@{alias_of(a)}"

    async def scenario():
        async with running(a, b):
            andy, dave, bob = Client("andy@example.com"), Client("dave@example.com"), Client("bob@example.com")
            for client, node in ((andy, a), (dave, a), (bob, b)):
                client.register_plugin("xep_0249")
                await client.start(node.xmpp_port)
            await andy.plugin["xep_0045"].join_muc_wait(ops, "Andy", maxstanzas=0, timeout=10)
            received: list = []
            bob.add_event_handler("groupchat_direct_invite", received.append)
            andy.plugin["xep_0249"].send_invitation("bob@example.com", ops, reason="XEP-0249")
            await until(lambda: received)
            errors: list = []
            dave.register_handler(Callback("direct error", StanzaPath("message@type=error"), errors.append))
            dave.plugin["xep_0249"].send_invitation("bob@example.com", ops)  # not in the room
            await until(lambda: errors)
            await stop(andy, dave, bob)
            return received, errors

    received, errors = run(scenario())
    [invitation] = received
    assert invitation["from"].bare == "andy@example.com" and invitation["from"].resource  # Andy's full JID
    assert (invitation["groupchat_invite"]["jid"], invitation["groupchat_invite"]["reason"]) == (ops, "XEP-0249")
    assert [(str(e["from"]), e["error"]["condition"]) for e in errors] == [("bob@example.com", "not-acceptable")]


def kept_invitations() -> list[tuple[str, str, str, str]]:
    """(recipient, kind, room, sender) of every invitation or decline waiting for its
    recipient's next sign-in."""
    from messaging.models import KeptInvitation

    return sorted(KeptInvitation.objects.values_list("user__jid", "kind", "room_jid", "sender"))


async def signed_in_again(node, user: str, timeout: float = 10) -> tuple[Client, list, list]:
    """Sign ``user`` in as a client does: the session, then the initial presence; returns the
    client, the mediated and the direct invitations it got, once a ping shows the node has
    answered the presence (a stream's stanzas are served in order)."""
    client = Client(f"{user}@example.com")
    client.register_plugin("xep_0249")
    mediated_ones, direct_ones = invitations(client), []
    client.add_event_handler("groupchat_direct_invite", direct_ones.append)
    await client.start(node.xmpp_port, timeout=timeout)
    client.send_presence()
    await client.plugin["xep_0199"].send_ping("example.com", timeout=timeout)
    return client, mediated_ones, direct_ones


def test_an_invitation_to_someone_signed_in_nowhere_waits_for_their_next_sign_in(xworld):
    """XEP-0045 §7.8.2 with XEP-0160: Erin (of 1B) and Dave (of 1A) are signed in nowhere when
    Andy invites them, Erin through the room, Dave directly (XEP-0249, as converse.js does). Each
    gets the invitation at the next sign-in, once the client sends its initial presence, with the
    time it was sent (XEP-0203), and never again; Prosody and ejabberd keep them the same way.
    Erin's decline, once Andy has signed out, waits for Andy the same way. A JID no user has is
    item-not-found, and a members-only room makes no member of it."""
    for user, node in (("andy", "imp-1a"), ("dave", "imp-1a"), ("erin", "imp-1b")):
        add_user(xworld, user, node)
    xworld.user("frank", "imp-1b")  # a JSON client
    a, b = xworld.nodes["imp-1a"], xworld.nodes["imp-1b"]
    ops, board = f"ops@{alias_of(a)}", f"board@{alias_of(a)}"

    async def scenario():
        async with running(a, b) as (node_a, _node_b):
            await node_a.tc.handle(requests.CreateRoom(room=board, user="andy@example.com", members_only=True))
            andy = Client("andy@example.com")
            andy.register_plugin("xep_0249")
            await andy.start(a.xmpp_port)
            for room in (ops, board):
                await andy.plugin["xep_0045"].join_muc_wait(room, "Andy", maxstanzas=0, timeout=10)
            andy.plugin["xep_0045"].invite(ops, "erin@example.com", "stand-up")  # 1B's router keeps it
            andy.plugin["xep_0249"].send_invitation("dave@example.com", ops, reason="XEP-0249")  # 1A's does
            andy.plugin["xep_0045"].invite(board, "frank@example.com")  # a member now, invited
            unknown = await invite_error(andy, ops, "nobody@example.com")
            not_a_member = await invite_error(andy, board, "nobody@example.com")

            async def kept_now() -> list:
                return await sync_to_async(kept_invitations, thread_sensitive=False)()

            kept = []
            async with asyncio.timeout(10):  # 1B's router keeps Erin's after Andy's request is done
                while len(kept) < 3:
                    kept = await kept_now()
                    await asyncio.sleep(0.05)
            erin, to_erin, _ = await signed_in_again(b, "erin")
            dave, _, to_dave = await signed_in_again(a, "dave")
            async with signed_in(b, "frank") as (frank,):
                to_frank = await next_event(frank, "invite")
            left = await kept_now()
            await stop(andy)
            erin.plugin["xep_0045"].decline(ops, "andy@example.com", "not today")  # 1A's router keeps it
            async with asyncio.timeout(10):
                while not await kept_now():
                    await asyncio.sleep(0.05)
            andy, declined, _ = await signed_in_again(a, "andy")
            await stop(erin, dave)
            _, again_erin, _ = await signed_in_again(b, "erin")  # nothing is handed over twice
            await stop(andy)
            return unknown, not_a_member, kept, to_erin, to_dave, to_frank, left, declined, again_erin

    unknown, not_a_member, kept, to_erin, to_dave, to_frank, left, declined, again_erin = run(scenario())
    assert unknown == (ops, "item-not-found", "There is no user nobody@example.com in IM and Presence.")
    assert not_a_member[:2] == (board, "item-not-found")
    assert ("nobody@example.com",) not in rows(
        xworld.database, "SELECT real_jid FROM tc_users WHERE room_jid = %s", (board,)
    )
    assert kept == [
        ("dave@example.com", "invite", ops, "andy@example.com"),
        ("erin@example.com", "invite", ops, "andy@example.com"),
        ("frank@example.com", "invite", board, "andy@example.com"),
    ]
    [invitation] = to_erin
    assert mediated(invitation) == (
        ops, "invite", "andy@example.com", "stand-up", f"andy@example.com invited you to the room {ops} (stand-up)"
    )  # fmt: skip
    [direct] = to_dave
    assert direct["from"].bare == "andy@example.com" and direct["from"].resource
    assert (direct["groupchat_invite"]["jid"], direct["groupchat_invite"]["reason"]) == (ops, "XEP-0249")
    [decline] = declined
    assert mediated(decline)[:4] == (ops, "decline", "erin@example.com", "not today")
    for stanza in (invitation, direct, decline):
        delay = stanza.xml.find("{urn:xmpp:delay}delay")
        assert delay is not None and delay.get("from") == "example.com"
        sent = datetime.fromisoformat(delay.get("stamp").replace("Z", "+00:00"))
        assert timedelta(0) <= datetime.now(UTC) - sent < timedelta(minutes=5)
    assert {key: to_frank[key] for key in ("room", "from", "reason")} == {
        "room": board,
        "from": "andy@example.com",
        "reason": "",
    }
    sent = datetime.fromisoformat(to_frank["stamp"].replace("Z", "+00:00"))
    assert timedelta(0) <= datetime.now(UTC) - sent < timedelta(minutes=5)
    assert ("frank@example.com", "member") in rows(
        xworld.database, "SELECT real_jid, affiliation FROM tc_users WHERE room_jid = %s", (board,)
    )
    assert left == []
    assert again_erin == []


def test_after_a_failover_the_new_host_knows_each_occupant_by_nick_and_node(xworld):
    """1A's rooms move to 1B: Bob (1B) stays in the room (his router restates him to the new host,
    with the nickname he took), Andy is moved to 1B and rejoins; private messages and a nickname
    change work on the new host."""
    add_user(xworld, "andy", "imp-1a")
    add_user(xworld, "bob", "imp-1b")
    a, b = xworld.nodes["imp-1a"], xworld.nodes["imp-1b"]
    room = f"ops@{alias_of(a)}"

    async def scenario():
        async with running(a, b) as (node_a, node_b):
            andy, bob = Client("andy@example.com"), Client("bob@example.com")
            await andy.start(a.xmpp_port)
            await bob.start(b.xmpp_port)
            for client, nick in ((andy, "Andy"), (bob, "Bob")):
                await client.plugin["xep_0045"].join_muc_wait(room, nick, maxstanzas=0, timeout=10)
            await bob.plugin["xep_0045"].set_self_nick(room, "Robert", timeout=10)
            moved = asyncio.ensure_future(andy.wait_until("session_start", 30))
            await node_a.tc.stop()
            await sync_to_async(move_rooms_and_users, thread_sensitive=False)("imp-1a", "imp-1b")
            await node_b.tc.refresh_hosting()
            await moved  # see-other-host: Andy signed in on 1B
            await andy.plugin["xep_0045"].join_muc_wait(room, "Andy", maxstanzas=0, timeout=10)
            to_andy, to_bob, at_andy = chats(andy), chats(bob), heard(andy, room)
            andy.make_message(mto=f"{room}/Robert", mbody="still Robert?", mtype="chat").send()
            bob.make_message(mto=f"{room}/Andy", mbody="yes", mtype="chat").send()
            await until(lambda: to_andy and to_bob, 10)
            renamed = await bob.plugin["xep_0045"].set_self_nick(room, "Rob", timeout=10)
            await until(lambda: len(at_andy) >= 2, 10)
            for client in (andy, bob):
                await client.stop()
            return to_andy, to_bob, renamed, at_andy

    to_andy, to_bob, renamed, at_andy = run(scenario())
    assert [(str(m["from"]), m["body"]) for m in to_bob] == [(f"{room}/Andy", "still Robert?")]
    assert [(str(m["from"]), m["body"]) for m in to_andy] == [(f"{room}/Robert", "yes")]
    assert renamed == "Rob"
    assert at_andy[:2] == [("unavailable", "Robert", ["303"], "Rob"), ("available", "Rob", [], None)]


async def invite_error(client: Client, room: str, invitee: str) -> tuple[str, str, str]:
    """Invite ``invitee`` (written into the stanza as it is) and return the error's (from,
    condition, text)."""
    return await muc_user_error(client, room, f"<invite to='{invitee}'/>")


async def muc_user_error(client: Client, room: str, inner: str) -> tuple[str, str, str]:
    """Send ``<x xmlns='…muc#user'>inner</x>`` to the room and return the error's (from,
    condition, text)."""
    errors: list = []
    name = f"invitation error from {room}"
    client.register_handler(Callback(name, StanzaPath("message@type=error"), errors.append))
    client.send_raw(f"<message to='{room}'><x xmlns='http://jabber.org/protocol/muc#user'>{inner}</x></message>")
    await until(lambda: errors)
    client.remove_handler(name)
    error = errors[0]
    return str(error["from"]), error["error"]["condition"], error["error"]["text"]


@pytest.mark.slow
def test_with_real_node_agents_nick_changes_private_messages_and_invitations_cross_the_pair(pair, agents):
    """The same three across the pair with ``manage.py run_node`` agents: Andy on 1A (which hosts
    the room), Bob and Carol on 1B, so every request crosses the bus to 1A's Text Conference
    Manager and every delivery to 1B's router; and an invitation to Dave, of 1B and signed in
    nowhere, which 1B's agent keeps until he signs in there."""
    a, b = pair["a"], pair["b"]
    chat_user("carol", b)
    chat_user("dave", b)
    start_pair_with_xmpp(pair, agents)
    room = f"pair@conference-{a.pk}-imp1.example.com"

    async def scenario():
        andy = Client("andy@example.com")
        await andy.start(a.xmpp_port, timeout=30)
        bob, carol = Client("bob@example.com"), Client("carol@example.com")
        for client in (bob, carol):
            await client.start(b.xmpp_port, timeout=30)
        for client, nick in ((andy, "Andy"), (bob, "Bob")):
            await client.plugin["xep_0045"].join_muc_wait(room, nick, maxstanzas=0, timeout=15)
        # Bob's join reaches Andy through 1A's router after Bob has his own answer from 1B's:
        # listen once it has, so what Andy hears next is the nickname change.
        await until(lambda: "Bob" in andy.plugin["xep_0045"].get_roster(room), 15)
        at_andy, invited, declined = heard(andy, room), invitations(carol), invitations(andy)
        renamed = await bob.plugin["xep_0045"].set_self_nick(room, "Robert", timeout=15)
        await until(lambda: len(at_andy) >= 2, 15)
        to_andy, to_bob = chats(andy), chats(bob)
        andy.make_message(mto=f"{room}/Robert", mbody="to Robert", mtype="chat").send()
        bob.make_message(mto=f"{room}/Andy", mbody="to Andy", mtype="chat").send()
        andy.plugin["xep_0045"].invite(room, "carol@example.com", "join us")
        await until(lambda: to_andy and to_bob and invited, 15)
        carol.plugin["xep_0045"].decline(room, "andy@example.com", "busy")
        await until(lambda: declined, 15)
        andy.plugin["xep_0045"].invite(room, "dave@example.com", "while you were away")
        async with asyncio.timeout(15):
            while not await sync_to_async(kept_invitations, thread_sensitive=False)():
                await asyncio.sleep(0.1)
        dave, to_dave, _ = await signed_in_again(b, "dave", timeout=30)
        for client in (andy, bob, carol, dave):
            await client.stop()
        return renamed, at_andy, to_andy, to_bob, invited, declined, to_dave

    renamed, at_andy, to_andy, to_bob, invited, declined, to_dave = asyncio.run(scenario())
    assert renamed == "Robert"
    assert at_andy[:2] == [("unavailable", "Bob", ["303"], "Robert"), ("available", "Robert", [], None)]
    assert [(str(m["from"]), m["body"]) for m in to_bob] == [(f"{room}/Andy", "to Robert")]
    assert [(str(m["from"]), m["body"]) for m in to_andy] == [(f"{room}/Robert", "to Andy")]
    assert [mediated(m)[:4] for m in invited] == [(room, "invite", "andy@example.com", "join us")]
    assert [mediated(m)[:4] for m in declined] == [(room, "decline", "carol@example.com", "busy")]
    assert [mediated(m)[:4] for m in to_dave] == [(room, "invite", "andy@example.com", "while you were away")]
    assert to_dave[0].xml.find("{urn:xmpp:delay}delay") is not None
