"""XEP-0045 rooms, the XEP-0313 archive and XEP-0359 ids with a standard client (slixmpp):
history on join, MAM paging by id and by time, origin-id deduplication, discovery, members-only
and creation refusals, and XMPP and JSON users of two clusters in one room."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from slixmpp.exceptions import IqError, PresenceError

from messaging.tc import requests
from tests.chat.conftest import run, running, signed_in
from tests.chat.xmpp import Client, add_user, next_groupchat


def alias_of(node) -> str:
    return f"conference-{node.pk}-imp1.example.com"


async def post(client: Client, room: str, body: str, origin_id: str | None = None):
    """Send a groupchat message and wait for its reflection (the acknowledgement)."""
    message = client.make_message(mto=room, mbody=body, mtype="groupchat")
    if origin_id:
        message["origin_id"]["id"] = origin_id
        message["id"] = origin_id
    message.send()
    while True:
        reflection = await next_groupchat(client, 10)
        if reflection["body"] == body:
            return reflection


def archive_page(iq) -> list[tuple[str, str]]:
    return [(m["mam_result"]["id"], m["mam_result"]["forwarded"]["stanza"]["body"]) for m in iq["mam"]["results"]]


def test_join_with_history_then_the_archive_by_id_and_by_time(xworld):
    for user in ("andy", "bob"):
        add_user(xworld, user, "imp-1a")
    node = xworld.nodes["imp-1a"]
    room = f"ops@{alias_of(node)}"

    async def scenario():
        async with running(node):
            andy, bob = Client("andy@example.com"), Client("bob@example.com")
            await andy.start(node.xmpp_port)
            await bob.start(node.xmpp_port)
            await andy.plugin["xep_0045"].join_muc_wait(room, "Andy", maxstanzas=0, timeout=10)
            reflections = [await post(andy, room, f"message {n}") for n in range(12)]
            middle = datetime.now(UTC)
            # History on join: the last 5, each with its stamp and the archive's id.
            history: list = []
            bob.add_event_handler("groupchat_message", history.append)
            await bob.plugin["xep_0045"].join_muc_wait(room, "Bob", maxstanzas=5, timeout=10)
            first = await bob.plugin["xep_0313"].retrieve(jid=room, rsm={"max": 5})
            second = await bob.plugin["xep_0313"].retrieve(
                jid=room, rsm={"max": 5, "after": first["mam_fin"]["rsm"]["last"]}
            )
            eleventh = reflections[11]["stanza_id"]["id"]
            last = await bob.plugin["xep_0313"].retrieve(jid=room, rsm={"max": 3, "before": eleventh})
            await asyncio.sleep(0.01)
            await post(andy, room, "after the middle")
            by_time = await bob.plugin["xep_0313"].retrieve(jid=room, start=middle)
            try:
                await bob.plugin["xep_0313"].retrieve(jid=room, rsm={"max": 5, "after": "1-000000000000"})
                unknown = None
            except IqError as exc:
                unknown = exc.iq["error"]["condition"]
            await andy.stop()
            await bob.stop()
            return reflections, history, first, second, last, by_time, unknown

    reflections, history, first, second, last, by_time, unknown = run(scenario())
    ids = [r["stanza_id"]["id"] for r in reflections]
    assert all(r["stanza_id"]["by"] == room for r in reflections)
    assert len(set(ids)) == 12
    replayed = [m for m in history if m["body"].startswith("message")]
    assert [m["body"] for m in replayed] == [f"message {n}" for n in range(7, 12)]
    assert [m["stanza_id"]["id"] for m in replayed] == ids[7:]
    assert all(m["delay"]["stamp"] is not None for m in replayed)
    assert archive_page(first) == [(ids[n], f"message {n}") for n in range(5)]
    assert archive_page(second) == [(ids[n], f"message {n}") for n in range(5, 10)]
    assert not second["mam_fin"]["complete"]
    assert archive_page(last) == [(ids[n], f"message {n}") for n in range(8, 11)]
    assert [body for _, body in archive_page(by_time)] == ["after the middle"]
    assert by_time["mam_fin"]["complete"]
    assert unknown == "item-not-found"


def test_a_repeated_origin_id_gets_the_first_reflection_and_is_stored_once(xworld):
    add_user(xworld, "andy", "imp-1a")
    node = xworld.nodes["imp-1a"]
    room = f"ha-demo@{alias_of(node)}"

    async def scenario():
        async with running(node):
            andy = Client("andy@example.com")
            await andy.start(node.xmpp_port)
            await andy.plugin["xep_0045"].join_muc_wait(room, "Andy", maxstanzas=0, timeout=10)
            first = await post(andy, room, "only once", origin_id="andy-1")
            again = await post(andy, room, "only once", origin_id="andy-1")
            archive = await andy.plugin["xep_0313"].retrieve(jid=room)
            await andy.stop()
            return first, again, archive

    first, again, archive = run(scenario())
    assert first["stanza_id"]["id"] == again["stanza_id"]["id"]
    assert first["origin_id"]["id"] == "andy-1"
    assert archive_page(archive) == [(first["stanza_id"]["id"], "only once")]


def test_discovery_lists_conference_services_rooms_and_room_features(xworld):
    add_user(xworld, "andy", "imp-1a")
    node = xworld.nodes["imp-1a"]
    alias = alias_of(node)

    async def scenario():
        async with running(node) as (running_node,):
            await running_node.tc.handle(
                requests.CreateRoom(room=f"closed@{alias}", user="andy@example.com", members_only=True)
            )
            andy = Client("andy@example.com")
            await andy.start(node.xmpp_port)
            await andy.plugin["xep_0045"].join_muc_wait(f"open@{alias}", "Andy", maxstanzas=0, timeout=10)
            disco = andy.plugin["xep_0030"]
            services = await disco.get_items(jid="example.com")
            rooms = await disco.get_items(jid=alias)
            closed = await disco.get_info(jid=f"closed@{alias}")
            opened = await disco.get_info(jid=f"open@{alias}")
            try:
                await disco.get_info(jid=f"nowhere@{alias}")
                missing = None
            except IqError as exc:
                missing = exc.iq["error"]["condition"]
            await andy.stop()
            return services, rooms, closed, opened, missing

    services, rooms, closed, opened, missing = run(scenario())
    assert alias in [item[0] for item in services["disco_items"]["items"]]
    assert sorted(item[0] for item in rooms["disco_items"]["items"]) == [f"closed@{alias}", f"open@{alias}"]
    closed_features = closed["disco_info"]["features"]
    assert {"http://jabber.org/protocol/muc", "muc_persistent", "muc_membersonly", "urn:xmpp:mam:2"} <= set(
        closed_features
    )
    assert "muc_open" in opened["disco_info"]["features"]
    assert ("conference", "text") in {identity[:2] for identity in opened["disco_info"]["identities"]}
    assert missing == "item-not-found"


def test_members_only_rooms_refuse_non_members_and_creation_follows_the_chat_settings(xworld):
    add_user(xworld, "andy", "imp-1a")
    node = xworld.nodes["imp-1a"]
    alias = alias_of(node)

    async def create_board():
        async with running(node) as (running_node,):
            await running_node.tc.handle(
                requests.CreateRoom(room=f"board@{alias}", user="carol@example.com", members_only=True)
            )

    async def scenario():
        async with running(node):
            andy = Client("andy@example.com")
            await andy.start(node.xmpp_port)
            refusals = []
            for room in (f"board@{alias}", f"new-room@{alias}"):
                try:
                    await andy.plugin["xep_0045"].join_muc_wait(room, "Andy", maxstanzas=0, timeout=10)
                    refusals.append(None)
                except PresenceError as exc:
                    refusals.append((exc.presence["error"]["condition"], exc.presence["error"]["text"]))
            await andy.stop()
            return refusals

    run(create_board())
    xworld.configure(only_admins_create_persistent=True)  # read by the TC when it starts
    members_only, creation = run(scenario())
    assert members_only[0] == "registration-required"
    assert "is for members only" in members_only[1]
    assert creation[0] == "not-allowed"
    assert "Only group chat system administrators may create persistent chat rooms" in creation[1]


def test_xmpp_and_json_users_of_two_clusters_share_a_room_and_self_ping_is_truthful(xworld):
    """Deborah (cluster 2, XMPP) and Bob (cluster 1, JSON) in a room of 1A; XEP-0410 self-ping
    says whether one is in the room, as the node hosting it sees it."""
    add_user(xworld, "deborah", "imp-c2a")
    add_user(xworld, "bob", "imp-1a")
    nodes = xworld.nodes
    room = f"shared@{alias_of(nodes['imp-1a'])}"

    async def scenario():
        async with running(nodes["imp-1a"], nodes["imp-c2a"]), signed_in(nodes["imp-1a"], "bob") as (bob,):
            await bob.create(room)
            await bob.join(room)
            deborah = Client("deborah@example.com")
            await deborah.start(nodes["imp-c2a"].xmpp_port)
            ping = deborah.plugin["xep_0199"]
            try:
                await ping.send_ping(f"{room}/deborah", timeout=10)
                before = "result"
            except IqError as exc:
                before = exc.iq["error"]["condition"]
            await deborah.plugin["xep_0045"].join_muc_wait(room, "deborah", maxstanzas=0, timeout=10)
            await ping.send_ping(f"{room}/deborah", timeout=10)  # joined: a result, no error
            from_deborah = await post(deborah, room, "hello from XMPP")
            await bob.post(room, "hello from JSON", cid="bob-1")
            from_bob = await next_groupchat(deborah, 10)
            while from_bob["body"] != "hello from JSON":
                from_bob = await next_groupchat(deborah, 10)
            seen_by_bob = [m["body"] for m in bob.rooms[room].messages.values()]
            await deborah.stop()
            return before, from_deborah, from_bob, seen_by_bob

    before, from_deborah, from_bob, seen_by_bob = run(scenario())
    assert before == "not-acceptable"
    assert from_deborah["from"].resource == "deborah"
    assert from_bob["from"].resource == "bob"
    assert from_bob["stanza_id"]["by"] == room
    assert "hello from XMPP" in seen_by_bob
