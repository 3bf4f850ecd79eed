"""The owner form's ``muc#roomconfig_allowpm`` and ``muc#roomconfig_allowinvites`` (XEP-0045 §10.2)
with a standard client (slixmpp's xep_0045): each room's own rule for private messages (§7.5)
and for invitations to a members-only room (§7.8.2), starting from the chat settings and bound by
their "Room owners can change …" boxes; applied by the room's host for occupants on either node
of the pair, kept in ``tc_rooms.config`` and so applied by the backup node after a failover. Real
PostgreSQL and Redis, in-process nodes."""

from __future__ import annotations

from tests.chat.conftest import run, running
from tests.chat.test_xmpp_muc_admin import alias_of, refusal, rows, started, stop, stored_config
from tests.chat.test_xmpp_occupants import chats, invite_error, message_error, until
from tests.chat.test_xmpp_rooms import post
from tests.chat.xmpp import add_user, configure
from topology.models import Node


def test_each_room_decides_who_sends_private_messages_and_whether_members_invite_on_either_node(xworld):
    for user, node in (("andy", "imp-1a"), ("carol", "imp-1a"), ("bob", "imp-1b"), ("dave", "imp-1a")):
        add_user(xworld, user, node)
    a, b = xworld.nodes["imp-1a"], xworld.nodes["imp-1b"]
    room = f"ops@{alias_of(a)}"

    async def scenario():
        async with running(a, b):
            andy, carol = await started(a, "andy", "carol")
            (bob,) = await started(b, "bob")
            muc = andy.plugin["xep_0045"]
            await muc.join_muc_wait(room, "Andy", maxstanzas=0, timeout=10)
            offered = (await muc.get_room_config(room)).get_values()
            for who in ("bob", "carol"):
                await muc.set_affiliation(room, "member", jid=f"{who}@example.com")
            await configure(andy, room, allowpm="moderators", membersonly="1")
            for client, nick in ((carol, "Carol"), (bob, "Bob")):
                await client.plugin["xep_0045"].join_muc_wait(room, nick, maxstanzas=0, timeout=10)
            at_bob, at_carol = chats(bob), chats(carol)
            refused_pm = await message_error(bob, f"{room}/Carol", "psst")  # 1B → 1A, a participant
            andy.make_message(mto=f"{room}/Bob", mbody="moderators may", mtype="chat").send()  # 1A → 1B
            await until(lambda: at_bob)
            refused_invite = await invite_error(bob, room, "dave@example.com")
            await configure(andy, room, allowpm="none", allowinvites="1")
            nobody = await message_error(andy, f"{room}/Carol", "not even me")
            bob.plugin["xep_0045"].invite(room, "dave@example.com", "join us")
            await post(bob, room, "after the invitation")  # the room has handled the invitation
            bad_value = await refusal(configure(andy, room, allowpm="everyone"))
            await stop(andy, carol, bob)
            return offered, refused_pm, at_bob, at_carol, refused_invite, nobody, bad_value

    offered, refused_pm, at_bob, at_carol, refused_invite, nobody, bad_value = run(scenario())
    # Defaults from the chat settings: Visitor for private messages; only moderators invite.
    assert (offered["muc#roomconfig_allowpm"], offered["muc#roomconfig_allowinvites"]) == ("anyone", False)
    assert refused_pm == (f"{room}/Carol", "forbidden", f"Only moderators may send private messages in {room}.")
    assert [(str(m["from"]), m["body"]) for m in at_bob] == [(f"{room}/Andy", "moderators may")]
    assert at_carol == []
    assert refused_invite == (
        room,
        "forbidden",
        f"Only moderators may invite people to {room}, a members-only room.",
    )
    assert nobody == (f"{room}/Carol", "forbidden", f"Private messages are off in {room}.")
    assert bad_value[0] == "not-acceptable"
    assert ("dave@example.com", "member", "Invited by Bob") in rows(
        xworld.database, "SELECT real_jid, affiliation, reason FROM tc_users WHERE room_jid = %s", (room,)
    )
    config = stored_config(xworld.database, room)[1]
    assert (str(config.allow_pm), config.allow_invites) == ("none", True)


def test_the_chat_settings_give_the_defaults_and_may_keep_owners_from_changing_them(xworld):
    add_user(xworld, "andy", "imp-1a")
    xworld.configure(
        private_message_min_level="participant",
        owners_change_private_message_level=False,
        only_moderators_invite=False,
        owners_change_only_moderators_invite=False,
    )
    a = xworld.nodes["imp-1a"]
    room = f"ops@{alias_of(a)}"

    async def scenario():
        async with running(a):
            (andy,) = await started(a, "andy")
            await andy.plugin["xep_0045"].join_muc_wait(room, "Andy", maxstanzas=0, timeout=10)
            form = await andy.plugin["xep_0045"].get_room_config(room)
            pm = await refusal(configure(andy, room, allowpm="anyone"))
            invites = await refusal(configure(andy, room, allowinvites="0"))
            await stop(andy)
            return form, pm, invites

    form, pm, invites = run(scenario())
    values = form.get_values()
    assert (values["muc#roomconfig_allowpm"], values["muc#roomconfig_allowinvites"]) == ("participants", True)
    for var in ("muc#roomconfig_allowpm", "muc#roomconfig_allowinvites"):
        desc = form.xml.find(f".//{{jabber:x:data}}field[@var='{var}']/{{jabber:x:data}}desc").text
        assert desc == "The chat settings let no room owner change this."
    assert pm == ("not-allowed", "Room owners may not change who may send private messages here.")
    assert invites == (
        "not-allowed",
        "Room owners may not change whether members may invite others to a members-only room here.",
    )


def test_after_a_failover_the_backup_node_applies_the_rooms_stored_private_message_rule(xworld):
    add_user(xworld, "andy", "imp-1a")
    add_user(xworld, "bob", "imp-1b")
    add_user(xworld, "carol", "imp-1b")
    a, b = xworld.nodes["imp-1a"], xworld.nodes["imp-1b"]
    room = f"ops@{alias_of(a)}"

    async def scenario():
        async with running(a, b) as (node_a, node_b):
            (andy,) = await started(a, "andy")
            bob, carol = await started(b, "bob", "carol")
            await andy.plugin["xep_0045"].join_muc_wait(room, "Andy", maxstanzas=0, timeout=10)
            await configure(andy, room, allowpm="moderators")
            for client, nick in ((bob, "Bob"), (carol, "Carol")):
                await client.plugin["xep_0045"].join_muc_wait(room, nick, maxstanzas=0, timeout=10)
            await stop(andy)
            await node_a.tc.stop()
            await Node.objects.filter(pk=a.pk).aupdate(rooms_hosted_by=b)
            await node_b.tc.refresh_hosting()
            refused = await message_error(bob, f"{room}/Carol", "on the backup?")
            await stop(bob, carol)
            return refused

    refused = run(scenario())
    assert refused == (f"{room}/Carol", "forbidden", f"Only moderators may send private messages in {room}.")
