"""XEP-0045 roles with a standard client (slixmpp's xep_0045): moderated rooms (the owner form's
``muc#roomconfig_moderatedroom``, bound by the chat settings), kicking (§8.2), voice (§8.3–§8.5)
and moderator status (§9.6–§9.7), with occupants on both nodes of the redundancy group, each
refusal with its XEP-0045 error, and what a failover keeps: the room's moderation and the
affiliations (stored), not the roles (they last for the occupant's visit). Real PostgreSQL and
Redis, in-process nodes."""

from __future__ import annotations

import asyncio
from xml.etree.ElementTree import tostring

import pytest
from asgiref.sync import sync_to_async
from defusedxml.ElementTree import fromstring
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath, StanzaPath

from tests.agent import conftest as agent_fixtures
from tests.agent.conftest import start_pair_with_xmpp
from tests.chat.conftest import run, running
from tests.chat.test_routing import move_rooms_and_users
from tests.chat.test_xmpp_muc_admin import alias_of, refusal, rows, started, stop, stored_config
from tests.chat.test_xmpp_occupants import until
from tests.chat.test_xmpp_rooms import post
from tests.chat.xmpp import Client, add_user, configure

# Real node agents as subprocesses and their redundancy group, shared with the agent suite.
agents = agent_fixtures.agents
pair = agent_fixtures.pair


def roles_heard(client: Client, room: str) -> list[tuple]:
    """Occupant presence the client hears: (type, nick, role, status codes, reason, actor)."""
    seen: list[tuple] = []

    def presence(stanza) -> None:
        if stanza["from"].bare == room:
            item = stanza["muc"]
            codes = sorted(str(code) for code in item["status_codes"])
            reason = stanza.xml.findtext(".//{http://jabber.org/protocol/muc#user}reason")
            actor = stanza.xml.find(".//{http://jabber.org/protocol/muc#user}actor")
            seen.append(
                (
                    stanza["type"],
                    stanza["from"].resource,
                    item["role"],
                    codes,
                    reason,
                    actor.get("nick") if actor is not None else None,
                )
            )

    client.add_event_handler("groupchat_presence", presence)
    return seen


async def post_error(client: Client, room: str, body: str) -> tuple[str, str]:
    """Post to the room and return the error's (condition, text)."""
    errors: list = []
    client.add_event_handler("groupchat_message_error", errors.append)
    client.make_message(mto=room, mbody=body, mtype="groupchat").send()
    await until(lambda: errors)
    client.del_event_handler("groupchat_message_error", errors.append)
    return errors[0]["error"]["condition"], errors[0]["error"]["text"]


async def moderate(owner: Client, room: str, moderated: bool = True) -> None:
    await configure(owner, room, moderatedroom="1" if moderated else "0")


def test_moderators_kick_and_give_and_take_voice_and_occupants_on_both_nodes_hear_it(xworld):
    for user, node in (("andy", "imp-1a"), ("carol", "imp-1a"), ("bob", "imp-1b")):
        add_user(xworld, user, node)
    a, b = xworld.nodes["imp-1a"], xworld.nodes["imp-1b"]
    room = f"ops@{alias_of(a)}"

    async def scenario():
        async with running(a, b):
            andy, carol = await started(a, "andy", "carol")
            (bob,) = await started(b, "bob")
            muc = {client: client.plugin["xep_0045"] for client in (andy, carol, bob)}
            await muc[andy].join_muc_wait(room, "Andy", maxstanzas=0, timeout=10)  # the owner
            await moderate(andy, room)
            await muc[andy].set_affiliation(room, "member", jid="carol@example.com")
            info = await andy.plugin["xep_0030"].get_info(jid=room)
            carol_joined, *_ = await muc[carol].join_muc_wait(room, "Carol", maxstanzas=0, timeout=10)
            bob_joined, *_ = await muc[bob].join_muc_wait(room, "Bob", maxstanzas=0, timeout=10)
            at_carol, at_bob = roles_heard(carol, room), roles_heard(bob, room)
            visitor_post = await post_error(bob, room, "may I speak?")
            # Refusals: a participant who is no moderator; malformed items; an unknown nick.
            not_moderator = await refusal(muc[carol].set_role(room, "Bob", "none"))
            bad_role = await refusal(_raw_iq(andy, room, "<item nick='Bob' role='boss'/>"))
            no_nick = await refusal(_raw_iq(andy, room, "<item role='visitor'/>"))
            unknown = await refusal(muc[andy].set_role(room, "Nobody", "participant"))
            await muc[andy].set_role(room, "Bob", "participant", reason="go ahead")
            spoken = await post(bob, room, "thank you")
            voice_list = await muc[andy].get_roles_list(room, "participant")
            # A moderator who is only a member may not kick or silence the owner.
            await muc[andy].set_role(room, "Carol", "moderator")
            moderators = await muc[carol].get_roles_list(room, "moderator")
            kick_owner = await refusal(muc[carol].set_role(room, "Andy", "none"))
            silence_owner = await refusal(muc[carol].set_role(room, "Andy", "visitor"))
            await muc[carol].set_role(room, "Bob", "visitor", reason="quiet please")
            silenced = await post_error(bob, room, "and now?")
            await until(lambda: len(at_bob) >= 3)
            await muc[carol].set_role(room, "Bob", "none", reason="off topic")
            await until(lambda: any("307" in codes for *_, codes, _, _ in at_carol[-1:]))
            await until(lambda: any("307" in codes for *_, codes, _, _ in at_bob[-1:]))
            self_ping = await refusal(bob.plugin["xep_0199"].send_ping(f"{room}/Bob", timeout=5))
            rejoined, *_ = await muc[bob].join_muc_wait(room, "Bob", maxstanzas=0, timeout=10)  # not banned
            still_up = await post(andy, room, "the stream stays up")
            await stop(andy, carol, bob)
            return (
                info, carol_joined, bob_joined, visitor_post, not_moderator, bad_role, no_nick, unknown,
                spoken, voice_list, moderators, kick_owner, silence_owner, silenced, at_carol, at_bob,
                self_ping, rejoined, still_up,
            )  # fmt: skip

    (
        info, carol_joined, bob_joined, visitor_post, not_moderator, bad_role, no_nick, unknown,
        spoken, voice_list, moderators, kick_owner, silence_owner, silenced, at_carol, at_bob,
        self_ping, rejoined, still_up,
    ) = run(scenario())  # fmt: skip
    assert {"muc_moderated"} <= set(info["disco_info"]["features"])
    assert "muc_unmoderated" not in set(info["disco_info"]["features"])
    assert stored_config(xworld.database, room)[1].moderated is True
    assert (carol_joined["muc"]["affiliation"], carol_joined["muc"]["role"]) == ("member", "participant")
    assert (bob_joined["muc"]["affiliation"], bob_joined["muc"]["role"]) == ("none", "visitor")
    assert visitor_post == (
        "forbidden",
        f"Visitors may not send messages to everyone in {room}; a moderator can give you voice.",
    )
    assert not_moderator == ("forbidden", f"Only the moderators of {room} may change occupants' roles.")
    assert bad_role == ("bad-request", "'boss' is not a role (moderator, participant, visitor, none).")
    assert no_nick == ("bad-request", "Name the occupant whose role changes by nick.")
    assert unknown == ("item-not-found", f"Nobody in {room} has the nickname Nobody.")
    assert spoken["body"] == "thank you"
    assert sorted(voice_list) == ["Bob", "Carol"]
    assert sorted(moderators) == ["Andy", "Carol"]
    assert kick_owner == ("not-allowed", f"Andy is an owner of {room}; you cannot kick them.")
    assert silence_owner == ("not-allowed", f"Andy is an owner of {room}: a moderator while in the room.")
    assert silenced[0] == "forbidden"
    # Carol (1A) hears each change of Bob's (1B) role, with the reason and who made it; then the kick.
    bobs = [entry for entry in at_carol if entry[1] == "Bob"]
    assert bobs[:3] == [
        ("available", "Bob", "participant", [], "go ahead", "Andy"),
        ("available", "Bob", "visitor", [], "quiet please", "Carol"),
        ("unavailable", "Bob", "none", ["307"], "off topic", "Carol"),
    ]
    assert ("unavailable", "Bob", "none", ["110", "307"], "off topic", "Carol") in at_bob
    assert self_ping[0] == "not-acceptable"  # Bob is out of the room
    assert (rejoined["muc"]["affiliation"], rejoined["muc"]["role"]) == ("none", "visitor")
    assert still_up["body"] == "the stream stays up"


async def _raw_iq(client: Client, room: str, items: str):
    iq = client.make_iq_set(ito=room)
    iq.set_payload(_admin_query(items))
    return await iq.send(timeout=5)


def _admin_query(items: str):
    return fromstring(f"<query xmlns='http://jabber.org/protocol/muc#admin'>{items}</query>")


def test_the_chat_settings_decide_whether_owners_may_change_moderation_and_how_rooms_start(xworld):
    add_user(xworld, "andy", "imp-1a")
    add_user(xworld, "bob", "imp-1a")
    xworld.configure(moderated_default=True, owners_change_moderated=False)
    a = xworld.nodes["imp-1a"]
    room = f"ops@{alias_of(a)}"

    async def scenario():
        async with running(a):
            andy, bob = await started(a, "andy", "bob")
            await andy.plugin["xep_0045"].join_muc_wait(room, "Andy", maxstanzas=0, timeout=10)
            form = await andy.plugin["xep_0045"].get_room_config(room)
            locked = form.xml.find(
                ".//{jabber:x:data}field[@var='muc#roomconfig_moderatedroom']/{jabber:x:data}desc"
            ).text
            refused = await refusal(moderate(andy, room, moderated=False))
            joined, *_ = await bob.plugin["xep_0045"].join_muc_wait(room, "Bob", maxstanzas=0, timeout=10)
            await stop(andy, bob)
            return form.get_values(), locked, refused, joined

    values, locked, refused, joined = run(scenario())
    assert values["muc#roomconfig_moderatedroom"] is True
    assert locked == "The chat settings let no room owner change this."
    assert refused == ("not-allowed", "Room owners may not change whether the room is moderated here.")
    assert joined["muc"]["role"] == "visitor"


def test_a_room_made_unmoderated_gives_its_visitors_voice_and_a_room_made_moderated_takes_nobodys(xworld):
    """XEP-0045: in an unmoderated room every occupant may speak (§4), and every occupant hears
    each role change (§5.1.3). When the owner turns moderation off, each visitor becomes a
    participant and everyone, on both nodes, hears it; turning it on takes nobody's voice (as in
    Prosody and ejabberd): Carol, in before, keeps hers, and only Bob, who enters after, is a
    visitor."""
    add_user(xworld, "andy", "imp-1a")
    add_user(xworld, "carol", "imp-1a")
    add_user(xworld, "bob", "imp-1b")
    a, b = xworld.nodes["imp-1a"], xworld.nodes["imp-1b"]
    room = f"ops@{alias_of(a)}"

    async def scenario():
        async with running(a, b):
            andy, carol = await started(a, "andy", "carol")
            (bob,) = await started(b, "bob")
            muc = {client: client.plugin["xep_0045"] for client in (andy, carol, bob)}
            await muc[andy].join_muc_wait(room, "Andy", maxstanzas=0, timeout=10)
            carol_joined, *_ = await muc[carol].join_muc_wait(room, "Carol", maxstanzas=0, timeout=10)
            at_andy, at_carol = roles_heard(andy, room), roles_heard(carol, room)
            config_notices: list = []
            carol.add_event_handler("groupchat_config_status", config_notices.append)
            await moderate(andy, room)
            bob_joined, *_ = await muc[bob].join_muc_wait(room, "Bob", maxstanzas=0, timeout=10)
            at_bob = roles_heard(bob, room)
            # The room's events arrive in order: once Carol hears Bob enter, she has heard
            # whatever making the room moderated did to her.
            await until(lambda: any(nick == "Bob" for _, nick, *_ in at_carol))
            heard_before = list(at_carol)
            carol_speaks = await post(carol, room, "carol kept her voice")
            bob_refused = await post_error(bob, room, "may I?")
            await moderate(andy, room, moderated=False)
            await until(lambda: len(config_notices) >= 2)
            await until(lambda: any(entry[2] == "participant" for entry in at_bob))
            await until(lambda: any(nick == "Bob" and role == "participant" for _, nick, role, *_ in at_andy))
            bob_speaks = await post(bob, room, "now I may")
            info = await andy.plugin["xep_0030"].get_info(jid=room)
            await stop(andy, carol, bob)
            return (
                carol_joined,
                bob_joined,
                heard_before,
                carol_speaks,
                bob_refused,
                at_andy,
                at_carol,
                at_bob,
                bob_speaks,
                info,
            )

    (
        carol_joined, bob_joined, heard_before, carol_speaks, bob_refused, at_andy, at_carol, at_bob, bob_speaks, info
    ) = run(scenario())  # fmt: skip
    assert carol_joined["muc"]["role"] == "participant"
    assert bob_joined["muc"]["role"] == "visitor"
    assert heard_before == [("available", "Bob", "visitor", [], None, None)]  # nothing about Carol
    assert carol_speaks["body"] == "carol kept her voice"
    assert bob_refused[0] == "forbidden"
    voiced = ("available", "Bob", "participant", [], "The room is no longer moderated.", None)
    assert voiced in at_andy
    assert voiced in at_carol
    assert ("available", "Bob", "participant", ["110"], "The room is no longer moderated.", None) in at_bob
    assert not [entry for entry in at_carol if entry[1] in ("Andy", "Carol")]  # their roles stayed
    assert bob_speaks["body"] == "now I may"
    assert "muc_unmoderated" in set(info["disco_info"]["features"])
    assert stored_config(xworld.database, room)[1].moderated is False


def test_after_a_failover_the_stored_moderation_and_affiliations_give_the_roles_not_the_last_visit(xworld):
    """Roles last for the occupant's visit (XEP-0045 §5.1): after 1A fails, everyone signs in on
    1B and enters again, with the role their affiliation and the room's moderation (both stored in
    the external database) give; a voice given or taken on 1A is not carried over."""
    for user in ("andy", "bob", "carol"):
        add_user(xworld, user, "imp-1a")
    a, b = xworld.nodes["imp-1a"], xworld.nodes["imp-1b"]
    room = f"ops@{alias_of(a)}"

    async def scenario():
        async with running(a, b) as (node_a, _node_b):
            andy, bob, carol = await started(a, "andy", "bob", "carol")
            muc = {client: client.plugin["xep_0045"] for client in (andy, bob, carol)}
            await muc[andy].join_muc_wait(room, "Andy", maxstanzas=0, timeout=10)
            await moderate(andy, room)
            await muc[andy].set_affiliation(room, "member", jid="bob@example.com")
            await muc[bob].join_muc_wait(room, "Bob", maxstanzas=0, timeout=10)
            await muc[carol].join_muc_wait(room, "Carol", maxstanzas=0, timeout=10)
            await muc[andy].set_role(room, "Bob", "visitor")
            await muc[andy].set_role(room, "Carol", "participant")
            await post(carol, room, "carol has voice on 1A")
            moved = [asyncio.ensure_future(c.wait_until("session_start", 30)) for c in (andy, bob, carol)]
            await node_a.tc.stop()
            await sync_to_async(move_rooms_and_users, thread_sensitive=False)("imp-1a", "imp-1b")
            await _node_b.tc.refresh_hosting()
            await asyncio.gather(*moved)  # see-other-host: all three signed in on 1B
            joined = {}
            for client, nick in ((andy, "Andy"), (bob, "Bob"), (carol, "Carol")):
                joined[nick], *_ = await muc[client].join_muc_wait(room, nick, maxstanzas=0, timeout=15)
            bob_posts = await post(bob, room, "bob speaks again on 1B")
            carol_refused = await post_error(carol, room, "and carol?")
            await stop(andy, bob, carol)
            return joined, bob_posts, carol_refused

    joined, bob_posts, carol_refused = run(scenario())
    assert {nick: (p["muc"]["affiliation"], p["muc"]["role"]) for nick, p in joined.items()} == {
        "Andy": ("owner", "moderator"),
        "Bob": ("member", "participant"),
        "Carol": ("none", "visitor"),
    }
    assert bob_posts["body"] == "bob speaks again on 1B"
    assert carol_refused[0] == "forbidden"
    assert stored_config(xworld.database, room)[1].moderated is True
    stored = rows(xworld.database, "SELECT real_jid, affiliation FROM tc_users WHERE room_jid = %s", (room,))
    assert sorted(stored) == [("andy@example.com", "owner"), ("bob@example.com", "member")]


def test_an_occupant_whose_node_stays_up_keeps_the_role_of_their_visit_when_the_room_fails_over(xworld):
    """Bob and Carol are signed in on 1B; the room is hosted by 1A. When 1A fails, 1B's router
    restates them to the room's new host (itself) with the roles they had: their visit goes on,
    so Bob stays silenced and Carol keeps the voice she was given; Andy (moved) enters anew."""
    add_user(xworld, "andy", "imp-1a")
    add_user(xworld, "bob", "imp-1b")
    add_user(xworld, "carol", "imp-1b")
    a, b = xworld.nodes["imp-1a"], xworld.nodes["imp-1b"]
    room = f"ops@{alias_of(a)}"

    async def scenario():
        async with running(a, b) as (node_a, node_b):
            (andy,) = await started(a, "andy")
            bob, carol = await started(b, "bob", "carol")
            muc = andy.plugin["xep_0045"]
            await muc.join_muc_wait(room, "Andy", maxstanzas=0, timeout=10)
            await moderate(andy, room)
            await muc.set_affiliation(room, "member", jid="bob@example.com")
            for client, nick in ((bob, "Bob"), (carol, "Carol")):
                await client.plugin["xep_0045"].join_muc_wait(room, nick, maxstanzas=0, timeout=10)
            await muc.set_role(room, "Bob", "visitor")
            await muc.set_role(room, "Carol", "participant")
            await post(carol, room, "carol speaks on 1A's room")
            moved = asyncio.ensure_future(andy.wait_until("session_start", 30))
            await node_a.tc.stop()
            await sync_to_async(move_rooms_and_users, thread_sensitive=False)("imp-1a", "imp-1b")
            await node_b.tc.refresh_hosting()

            def restated() -> dict:
                hosted = node_b.tc.rooms.get(room)
                return {o.nick: str(o.role) for o in hosted.room.occupants.values()} if hosted else {}

            await until(lambda: {"Bob", "Carol"} <= set(restated()), 10)
            roles = restated()
            carol_posts = await post(carol, room, "carol still has voice")
            bob_refused = await post_error(bob, room, "bob is still silenced")
            await moved
            andy_again, *_ = await andy.plugin["xep_0045"].join_muc_wait(room, "Andy", maxstanzas=0, timeout=15)
            await stop(andy, bob, carol)
            return roles, carol_posts, bob_refused, andy_again

    roles, carol_posts, bob_refused, andy_again = run(scenario())
    assert roles == {"Bob": "visitor", "Carol": "participant"}
    assert carol_posts["body"] == "carol still has voice"
    assert bob_refused[0] == "forbidden"
    assert andy_again["muc"]["role"] == "moderator"


def test_a_post_that_reaches_the_rooms_new_host_before_its_occupants_are_restated_keeps_the_visits_role(xworld):
    """The room moves from 1A to 1B while Bob and Carol stay signed in on 1B. Their posts may
    reach the new host before 1B's router has restated them (its restatement is held back here):
    each post carries the role the room last gave them, so Bob, given voice in a moderated room,
    still speaks, and Carol, a member whose voice was taken, stays silenced; before, both were
    judged by the default role (Bob a visitor, Carol a participant)."""
    add_user(xworld, "andy", "imp-1a")
    add_user(xworld, "bob", "imp-1b")
    add_user(xworld, "carol", "imp-1b")
    a, b = xworld.nodes["imp-1a"], xworld.nodes["imp-1b"]
    room = f"ops@{alias_of(a)}"

    async def scenario():
        async with running(a, b) as (node_a, node_b):
            (andy,) = await started(a, "andy")
            bob, carol = await started(b, "bob", "carol")
            muc = andy.plugin["xep_0045"]
            await muc.join_muc_wait(room, "Andy", maxstanzas=0, timeout=10)
            await moderate(andy, room)
            await muc.set_affiliation(room, "member", jid="carol@example.com")
            for client, nick in ((bob, "Bob"), (carol, "Carol")):
                await client.plugin["xep_0045"].join_muc_wait(room, nick, maxstanzas=0, timeout=10)
            at_carol = roles_heard(carol, room)
            await muc.set_role(room, "Bob", "participant")
            await muc.set_role(room, "Carol", "visitor")
            await until(lambda: len(at_carol) >= 2)  # both changes reached 1B's router
            restating, release = asyncio.Event(), asyncio.Event()
            resync = node_b.router._resync

            async def held_resync(*args, **kwargs):
                restating.set()
                await release.wait()
                await resync(*args, **kwargs)

            node_b.router._resync = held_resync
            await node_a.tc.stop()
            await sync_to_async(move_rooms_and_users, thread_sensitive=False)("imp-1a", "imp-1b")
            await node_b.tc.refresh_hosting()
            await asyncio.wait_for(restating.wait(), 10)  # 1B's router would restate them now
            await node_b.router.directory.refresh()  # routes to the new host now, not within a second
            bob_posts = await post(bob, room, "bob keeps his voice")
            carol_refused = await post_error(carol, room, "carol is still silenced")
            roles = {o.nick: str(o.role) for o in node_b.tc.rooms[room].room.occupants.values()}
            release.set()
            await stop(andy, bob, carol)
            return bob_posts, carol_refused, roles

    bob_posts, carol_refused, roles = run(scenario())
    assert bob_posts["body"] == "bob keeps his voice"
    assert carol_refused[0] == "forbidden"
    assert roles == {"Bob": "participant", "Carol": "visitor"}


@pytest.mark.slow
def test_with_real_node_agents_a_password_voice_and_a_kick_cross_the_pair(pair, agents):
    """With ``manage.py run_node`` agents: Andy on 1A (which hosts the room) makes it moderated and
    password-protected; Bob on 1B needs the password, enters as a visitor, gets voice, and is
    kicked: every request crosses the bus to 1A's Text Conference Manager, every change reaches
    1B's router."""
    a, b = pair["a"], pair["b"]
    start_pair_with_xmpp(pair, agents)
    room = f"pair-roles@conference-{a.pk}-imp1.example.com"

    async def scenario():
        andy, bob = Client("andy@example.com"), Client("bob@example.com")
        await andy.start(a.xmpp_port, timeout=30)
        await bob.start(b.xmpp_port, timeout=30)
        await andy.plugin["xep_0045"].join_muc_wait(room, "Andy", maxstanzas=0, timeout=15)
        await configure(andy, room, moderatedroom="1", passwordprotectedroom="1", roomsecret="pair")
        join = bob.plugin["xep_0045"].join_muc_wait
        without = await refusal(join(room, "Bob", maxstanzas=0, timeout=15))
        joined, *_ = await join(room, "Bob", password="pair", maxstanzas=0, timeout=15)
        silenced = await post_error(bob, room, "hello?")
        at_bob = roles_heard(bob, room)
        await andy.plugin["xep_0045"].set_role(room, "Bob", "participant")
        spoken = await post(bob, room, "hello from 1B")
        await andy.plugin["xep_0045"].set_role(room, "Bob", "none", reason="done")
        await until(lambda: any("307" in entry[3] for entry in at_bob), 15)
        for client in (andy, bob):
            await client.stop()
        return without, joined, silenced, spoken, at_bob

    without, joined, silenced, spoken, at_bob = asyncio.run(scenario())
    assert without[0] == "not-authorized"
    assert joined["muc"]["role"] == "visitor"
    assert silenced[0] == "forbidden"
    assert spoken["body"] == "hello from 1B"
    assert ("unavailable", "Bob", "none", ["110", "307"], "done", "Andy") in at_bob


def voice_requests(client: Client) -> list:
    """Every voice request form (XEP-0045 §8.6) the client receives from a room."""
    received: list = []

    def message(stanza) -> None:
        form = stanza.xml.find("{jabber:x:data}x")
        if form is not None and "muc#request" in tostring(form, encoding="unicode"):
            received.append(form)

    # slixmpp's "message" event wants a body, and a voice request form comes without one.
    client.register_handler(Callback("voice requests", MatchXPath("{jabber:client}message/{jabber:x:data}x"), message))
    return received


def request_form(fields: dict[str, str]) -> str:
    values = "".join(f"<field var='{var}'><value>{value}</value></field>" for var, value in fields.items())
    return f"<x xmlns='jabber:x:data' type='submit'>{values}</x>"


def test_a_visitor_asks_for_voice_the_moderators_on_either_node_get_the_form_and_one_grants_it(xworld):
    add_user(xworld, "andy", "imp-1a")
    add_user(xworld, "bob", "imp-1b")
    a, b = xworld.nodes["imp-1a"], xworld.nodes["imp-1b"]
    room = f"ops@{alias_of(a)}"
    request = {"FORM_TYPE": "http://jabber.org/protocol/muc#request", "muc#role": "participant"}

    async def scenario():
        async with running(a, b):
            (andy,) = await started(a, "andy")
            (bob,) = await started(b, "bob")
            await andy.plugin["xep_0045"].join_muc_wait(room, "Andy", maxstanzas=0, timeout=10)
            await moderate(andy, room)
            await bob.plugin["xep_0045"].join_muc_wait(room, "Bob", maxstanzas=0, timeout=10)
            at_andy, at_bob = voice_requests(andy), roles_heard(bob, room)
            bob.send_raw(f"<message to='{room}'>{request_form(request)}</message>")  # 1B → 1A's room
            await until(lambda: at_andy)
            fields = {
                f.get("var"): f.findtext("{jabber:x:data}value") for f in at_andy[0].findall("{jabber:x:data}field")
            }
            answer = {**request, "muc#roomnick": fields["muc#roomnick"], "muc#request_allow": "true"}
            andy.send_raw(f"<message to='{room}'>{request_form(answer)}</message>")
            await until(lambda: any(entry[2] == "participant" for entry in at_bob))
            spoken = await post(bob, room, "thanks for the voice")
            again = await message_error_from_room(bob, room, request_form(request))
            await stop(andy, bob)
            return fields, spoken, again

    fields, spoken, again = run(scenario())
    assert fields == {
        "FORM_TYPE": "http://jabber.org/protocol/muc#request",
        "muc#role": "participant",
        "muc#jid": "bob@example.com",
        "muc#roomnick": "Bob",
        "muc#request_allow": "false",
    }
    assert spoken["body"] == "thanks for the voice"
    assert again == ("not-allowed", f"You have voice in {room} already; only visitors ask for it.")


async def message_error_from_room(client: Client, room: str, payload: str) -> tuple[str, str]:
    errors: list = []
    name = f"errors from {room}"
    client.register_handler(Callback(name, StanzaPath("message@type=error"), errors.append))
    client.send_raw(f"<message to='{room}'>{payload}</message>")
    await until(lambda: errors)
    client.remove_handler(name)
    return errors[0]["error"]["condition"], errors[0]["error"]["text"]
