"""The XMPP stream's session with a standard client (slixmpp): XEP-0198 resumption on the same
node after the client's connection drops (and its clean failure once the session expired or its
user was moved by a failover), XEP-0410 self-ping after a failover, and a fenced node that
answers a new stream at once instead of waiting on the config DB."""

from __future__ import annotations

import asyncio
import base64
import time
import xml.etree.ElementTree as ET

from asgiref.sync import sync_to_async
from defusedxml.ElementTree import fromstring
from slixmpp.exceptions import IqError

from messaging.router.xmpp import SM_REQUEST_EVERY
from messaging.tc import requests
from tests.chat.conftest import run, running, signed_in
from tests.chat.test_routing import move_rooms_and_users
from tests.chat.test_xmpp_stream import HEADER, converse
from tests.chat.xmpp import Chatter, Client, add_user, next_groupchat, password_of, whole_archive
from topology.agent.lease import Lease


def room_of(node, name: str = "ops") -> str:
    return f"{name}@conference-{node.pk}-imp1.example.com"


async def until(condition, timeout: float = 15, what: str = "the condition") -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.05)


def kept_binding(router, user_id: str):
    """The XMPP session of ``user_id`` the node keeps for resumption, if any."""
    return next((b for b in router.xmpp.resumable.values() if b.full_jid.startswith(f"{user_id}@")), None)


async def occupants(router, room: str) -> set[str]:
    answer = await router.route(room, requests.Presence(room=room, user="bob@example.com"))
    return {occupant["user"] for occupant in answer.occupants}


async def self_ping(client: Client, room: str, nick: str) -> str:
    try:
        await client.plugin["xep_0199"].send_ping(f"{room}/{nick}", timeout=10)
    except IqError as exc:
        return exc.iq["error"]["condition"]
    return "result"


async def resumable_andy(node, room: str, received: list[str] | None = None) -> Client:
    """Andy with XEP-0198 resumption on, signed in on ``node`` and in ``room`` (no history);
    the bodies of the room messages he gets go to ``received``."""
    andy = Client("andy@example.com", resume=True)
    if received is not None:
        andy.add_event_handler("groupchat_message", lambda m: m["body"] and received.append(m["body"]))
    await andy.start(node.xmpp_port)
    await andy.plugin["xep_0045"].join_muc_wait(room, "andy", maxstanzas=0, timeout=10)
    return andy


def test_a_dropped_connection_is_resumed_and_each_message_posted_meanwhile_arrives_once(xworld):
    add_user(xworld, "andy", "imp-1a")
    xworld.user("bob", "imp-1a")
    node = xworld.nodes["imp-1a"]
    room = room_of(node)

    async def scenario():
        async with running(node) as (node_1a,), signed_in(node, "bob") as (bob,):
            andy = Client("andy@example.com", resume=True)
            received: list[str] = []
            andy.add_event_handler("groupchat_message", lambda m: m["body"] and received.append(m["body"]))
            await andy.start(node.xmpp_port)
            await until(lambda: kept_binding(node_1a.router, "andy"), what="resumption enabled")
            await andy.plugin["xep_0045"].join_muc_wait(room, "andy", maxstanzas=0, timeout=10)
            await bob.join(room)
            await bob.post(room, "before the cut", cid="b-0")
            await until(lambda: "before the cut" in received)
            binding = kept_binding(node_1a.router, "andy")
            andy.cut()
            await until(lambda: binding.detached, what="the node saw the connection drop")
            while_away = await occupants(node_1a.router, room)
            for n in range(5):
                await bob.post(room, f"while away {n}", cid=f"b-{n + 1}")
            resumed = asyncio.ensure_future(andy.wait_until("session_resumed", 15))
            andy.connect("127.0.0.1", node.xmpp_port)
            await resumed
            await bob.post(room, "after the resumption", cid="b-9")
            await until(lambda: "after the resumption" in received)
            message = andy.make_message(mto=room, mbody="andy is back", mtype="groupchat")
            message.send()
            await until(lambda: "andy is back" in received)  # reflected: the session posts as before
            sessions = len(node_1a.router.sessions)
            await andy.stop()
            return received, while_away, andy.resumed, andy.sm_failures, sessions

    received, while_away, resumed, failures, sessions = run(scenario())
    assert "andy@example.com" in while_away  # the session kept its place in the room
    assert received == [
        "before the cut",
        *(f"while away {n}" for n in range(5)),
        "after the resumption",
        "andy is back",
    ]
    assert (resumed, failures, sessions) == (1, [], 2)


def test_the_node_asks_for_acknowledgements_so_it_keeps_only_what_the_client_may_lack(xworld):
    """XEP-0198 §4: the node sends <r/> as stanzas go out; slixmpp answers with <a h/>, and the
    node drops what the client acknowledged instead of keeping every stanza for a resumption."""
    add_user(xworld, "andy", "imp-1a")
    xworld.user("bob", "imp-1a")
    node = xworld.nodes["imp-1a"]
    room = room_of(node)

    async def scenario():
        async with running(node) as (node_1a,), signed_in(node, "bob") as (bob,):
            received: list[str] = []
            andy = await resumable_andy(node, room, received)
            await bob.join(room)
            for n in range(3 * SM_REQUEST_EVERY):
                await bob.post(room, f"message {n}", cid=f"b-{n}")
            await until(lambda: len(received) == 3 * SM_REQUEST_EVERY)
            binding = kept_binding(node_1a.router, "andy")
            await until(lambda: len(binding.unacked) < SM_REQUEST_EVERY, what="acknowledgements")
            sent = binding.sent
            await andy.stop()
            return sent

    assert run(scenario()) > 3 * SM_REQUEST_EVERY


def test_a_resumption_before_the_old_connection_dropped_takes_the_session_over(xworld):
    """A client whose network changed resumes before the node saw its old connection drop: the
    node moves the session to the new connection and closes the old one without signing the
    user out of the room."""
    add_user(xworld, "andy", "imp-1a")
    xworld.user("bob", "imp-1a")
    node = xworld.nodes["imp-1a"]
    room = room_of(node)

    async def scenario():
        async with running(node) as (node_1a,), signed_in(node, "bob") as (bob,):
            old = await resumable_andy(node, room)
            await bob.join(room)
            await bob.post(room, "to the old connection", cid="b-0")
            await until(lambda: not old.groupchat.empty())
            await until(lambda: kept_binding(node_1a.router, "andy"))
            # The same client on a new connection, with the old one's XEP-0198 state.
            new = Client("andy@example.com", resume=True)
            for name in ("sm_id", "handled", "seq", "last_ack", "unacked_queue"):
                setattr(new.plugin["xep_0198"], name, getattr(old.plugin["xep_0198"], name))
            old_closed = asyncio.Event()
            old.add_event_handler("disconnected", lambda _: old_closed.set())
            received: list[str] = []
            new.add_event_handler("groupchat_message", lambda m: m["body"] and received.append(m["body"]))
            resumed = asyncio.ensure_future(new.wait_until("session_resumed", 15))
            new.connect("127.0.0.1", node.xmpp_port)
            await resumed
            await asyncio.wait_for(old_closed.wait(), 10)  # the node closed the old connection
            await bob.post(room, "to the new connection", cid="b-1")
            await until(lambda: "to the new connection" in received)
            present = await occupants(node_1a.router, room)
            stream = node_1a.router.sessions["andy@example.com"].binding.stream
            serving = (stream.closed, stream.replaced, len(node_1a.router.xmpp.resumable))
            await new.stop()
            return received, present, serving, old.resumed

    received, present, serving, old_resumed = run(scenario())
    assert received == ["to the new connection"]
    assert "andy@example.com" in present
    assert serving == (False, False, 1)  # the session is on the new connection, still resumable
    assert old_resumed == 0


def test_a_fresh_sign_in_ends_the_kept_session_and_the_new_one_stays_in_the_room(xworld):
    """A client that lost its XEP-0198 state signs in anew instead of resuming: the session the
    node kept for it ends (it can no longer be resumed), and ending it does not take the user's
    new session out of the room it joined again."""
    add_user(xworld, "andy", "imp-1a")
    xworld.user("bob", "imp-1a")
    node = xworld.nodes["imp-1a"]
    room = room_of(node)

    async def scenario():
        async with running(node) as (node_1a,), signed_in(node, "bob") as (bob,):
            await bob.create(room)
            await bob.join(room)
            old = await resumable_andy(node, room)
            await until(lambda: kept_binding(node_1a.router, "andy"))
            kept = kept_binding(node_1a.router, "andy")
            old.cut()
            await until(lambda: kept.detached)
            new = await resumable_andy(node, room)
            await until(lambda: kept.sm_id not in node_1a.router.xmpp.resumable, what="the kept session ended")
            await bob.post(room, "still there?", cid="b-0")
            reflection = await next_groupchat(new, 10)
            while reflection["body"] != "still there?":
                reflection = await next_groupchat(new, 10)
            present = await occupants(node_1a.router, room)
            ping = await self_ping(new, room, "andy")
            await new.stop()
            return present, ping

    present, ping = run(scenario())
    assert "andy@example.com" in present
    assert ping == "result"


def test_a_session_not_resumed_in_time_is_signed_out_and_its_resumption_fails_cleanly(xworld, settings):
    settings.XMPP_RESUME_SECONDS = 1
    add_user(xworld, "andy", "imp-1a")
    xworld.user("bob", "imp-1a")
    node = xworld.nodes["imp-1a"]
    room = room_of(node)

    async def scenario():
        async with running(node) as (node_1a,), signed_in(node, "bob") as (bob,):
            await bob.create(room)
            await bob.join(room)
            andy = Client("andy@example.com", resume=True)
            offered: list[str] = []
            andy.add_event_handler("sm_enabled", lambda enabled: offered.append(enabled["max"]))
            await andy.start(node.xmpp_port)
            await andy.plugin["xep_0045"].join_muc_wait(room, "andy", maxstanzas=0, timeout=10)
            await until(lambda: kept_binding(node_1a.router, "andy"))
            andy.cut()
            await until(lambda: not node_1a.router.xmpp.resumable, what="the session expired")
            after_expiry = await occupants(node_1a.router, room)
            started = asyncio.ensure_future(andy.wait_until("session_start", 15))
            andy.connect("127.0.0.1", node.xmpp_port)
            await started  # resumption failed; the client bound a new session
            ping = await self_ping(andy, room, "andy")
            await andy.stop()
            return offered, after_expiry, andy.sm_failures, andy.resumed, ping

    offered, after_expiry, failures, resumed, ping = run(scenario())
    assert offered[0] == "1"
    assert "andy@example.com" not in after_expiry
    assert len(failures) == 1 and "<item-not-found" in failures[0] and resumed == 0
    assert ping == "not-acceptable"  # XEP-0410: the new session is not in the room; rejoin


def test_resumption_after_a_failover_fails_and_the_client_catches_up_on_the_backup(xworld):
    add_user(xworld, "andy", "imp-1a")
    xworld.user("bob", "imp-1b")
    nodes = xworld.nodes
    room = room_of(nodes["imp-1a"])

    async def scenario():
        async with (
            running(nodes["imp-1a"], nodes["imp-1b"]) as (node_1a, node_1b),
            signed_in(nodes["imp-1b"], "bob") as (bob,),
        ):
            andy = Chatter("andy", nodes["imp-1a"].xmpp_port, room, resume=True)
            await andy.start()
            await bob.join(room)
            await andy.post(0)
            await bob.post(room, "bob before", cid="b-0")
            await until(lambda: "bob before" in andy.seen.values())
            await until(lambda: kept_binding(node_1a.router, "andy"))
            andy.client.cut()
            await until(lambda: kept_binding(node_1a.router, "andy").detached)
            # Failover while Andy is away: 1A's TC fails, the SRM moves its rooms and users to 1B.
            await node_1a.tc.stop()
            await sync_to_async(move_rooms_and_users, thread_sensitive=False)("imp-1a", "imp-1b")
            await node_1b.tc.refresh_hosting()
            await until(lambda: not node_1a.router.xmpp.resumable, what="1A let Andy's session go")
            for n in range(3):
                await bob.post(room, f"bob during the failover {n}", cid=f"b-{n + 1}", retry_for=30)
            andy.client.connect("127.0.0.1", nodes["imp-1a"].xmpp_port)
            await until(lambda: andy.sessions == 2 and andy.joined.is_set(), 30, "Andy back on 1B")
            await andy.post(1)
            archive = await whole_archive(andy.client, room)
            errors = [(e["condition"], e["see_other_host"]) for e in andy.client.stream_errors]
            await andy.client.stop()
            return andy, archive, errors

    andy, archive, errors = run(scenario())
    assert errors == [("see-other-host", f"127.0.0.1:{nodes['imp-1b'].xmpp_port}")]
    assert len(andy.client.sm_failures) == 1 and "<item-not-found" in andy.client.sm_failures[0]
    assert andy.client.resumed == 0
    assert [body for _, body in archive] == [
        "andy 0",
        "bob before",
        *(f"bob during the failover {n}" for n in range(3)),
        "andy 1",
    ]
    assert set(andy.seen) == {stanza_id for stanza_id, _ in archive} and andy.caught_up_twice == []
    assert andy.catchups[0][1] == 3  # the three posted while away, by MAM after the last stanza-id seen


def test_self_ping_is_truthful_after_a_failover(xworld):
    """XEP-0410: Bob (1B) stays joined while the room moves to 1B; Andy, moved from 1A to 1B,
    is told he is not joined until he rejoins there."""
    add_user(xworld, "andy", "imp-1a")
    add_user(xworld, "bob", "imp-1b")
    nodes = xworld.nodes
    room = room_of(nodes["imp-1a"])

    async def scenario():
        async with running(nodes["imp-1a"], nodes["imp-1b"]) as (node_1a, node_1b):
            andy, bob = Client("andy@example.com"), Client("bob@example.com")
            await andy.start(nodes["imp-1a"].xmpp_port)
            await bob.start(nodes["imp-1b"].xmpp_port)
            for client, nick in ((andy, "andy"), (bob, "bob")):
                await client.plugin["xep_0045"].join_muc_wait(room, nick, maxstanzas=0, timeout=10)
            before = [await self_ping(andy, room, "andy"), await self_ping(bob, room, "bob")]
            moved = asyncio.ensure_future(andy.wait_until("session_start", 30))
            await node_1a.tc.stop()
            await sync_to_async(move_rooms_and_users, thread_sensitive=False)("imp-1a", "imp-1b")
            await node_1b.tc.refresh_hosting()
            await moved  # see-other-host: Andy signed in on 1B
            after = [await self_ping(andy, room, "andy"), await self_ping(bob, room, "bob")]
            await andy.plugin["xep_0045"].join_muc_wait(room, "andy", maxstanzas=0, timeout=10)
            rejoined = await self_ping(andy, room, "andy")
            address = andy.address
            for client in (andy, bob):
                await client.stop()
            return before, after, rejoined, address

    before, after, rejoined, address = run(scenario())
    assert address == ("127.0.0.1", nodes["imp-1b"].xmpp_port)
    assert before == ["result", "result"]
    assert after == ["not-acceptable", "result"]
    assert rejoined == "result"


def test_a_fenced_node_answers_a_new_stream_at_once_without_the_config_db(xworld):
    """While its lease has run out the node serves nobody: a new stream gets a retryable
    resource-constraint before any sign-in step (which would read the config DB); once its peer
    may have taken its users over, see-other-host names the peer's client port, and the client
    signs in there."""
    add_user(xworld, "andy", "imp-1a")
    nodes = xworld.nodes

    async def scenario():
        async with running(nodes["imp-1a"], nodes["imp-1b"]) as (node_1a, _node_1b):
            node_1a.tc.lease = Lease()
            node_1a.tc.lease.renew(time.monotonic() - 10, 2)  # the last heartbeat got through 10 s ago
            lease_lost = await converse(nodes["imp-1a"].xmpp_port, HEADER, timeout=5)
            node_1a.router.fence("imp-1a lost touch with the config DB (no heartbeat for 10.0 s)")
            fenced = await converse(nodes["imp-1a"].xmpp_port, HEADER, timeout=5)
            # The peer's SRM takes the users over; a client follows see-other-host to it.
            await sync_to_async(move_rooms_and_users, thread_sensitive=False)("imp-1a", "imp-1b")
            andy = Client("andy@example.com")
            await andy.start(nodes["imp-1a"].xmpp_port, timeout=20)
            address = andy.address
            await andy.stop()
            return lease_lost, fenced, address

    lease_lost, fenced, address = run(scenario())
    for answer in (lease_lost, fenced):
        assert "<stream:features" not in answer and answer.endswith("</stream:stream>")
    assert "<resource-constraint xmlns='urn:ietf:params:xml:ns:xmpp-streams'></resource-constraint>" in lease_lost
    assert "imp-1a lost touch with the config DB; it serves nobody until it is back" in lease_lost
    assert "or sign in on imp-1b" in lease_lost
    assert "<see-other-host xmlns='urn:ietf:params:xml:ns:xmpp-streams'>127.0.0.1:" in fenced
    assert f"127.0.0.1:{nodes['imp-1b'].xmpp_port}</see-other-host>" in fenced
    assert address == ("127.0.0.1", nodes["imp-1b"].xmpp_port)


class RawWebSocketClient:
    """An RFC 7395 client written out by hand (SASL PLAIN, which the WebSocket port accepts), to
    cut and resume a stream on the transport browser clients use."""

    FRAMING = "urn:ietf:params:xml:ns:xmpp-framing"

    def __init__(self, port: int, user: str) -> None:
        self.port, self.user = port, user
        self.handled = 0  # stanzas received since <enabled/> or <resumed/> (XEP-0198 h)
        self.counting = False
        self.frames: list[ET.Element] = []

    async def connect(self) -> None:
        from websockets.asyncio.client import connect

        self.ws = await connect(f"ws://127.0.0.1:{self.port}/", subprotocols=["xmpp"])
        await self.ws.send(f"<open xmlns='{self.FRAMING}' to='example.com' version='1.0'/>")
        await self.until("features")
        plain = base64.b64encode(f"\0{self.user}\0{password_of(self.user)}".encode()).decode()
        await self.ws.send(f"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{plain}</auth>")
        await self.until("success")
        await self.ws.send(f"<open xmlns='{self.FRAMING}' to='example.com' version='1.0'/>")
        await self.until("features")

    async def until(self, name: str) -> ET.Element:
        """Read frames up to the first element called ``name``; ``self.frames`` keeps them all."""
        async with asyncio.timeout(10):
            while True:
                frame = fromstring(await self.ws.recv())
                local = frame.tag.rpartition("}")[2]
                self.frames.append(frame)
                if self.counting and local in ("message", "presence", "iq"):
                    self.handled += 1
                if local == name:
                    return frame


def test_a_websocket_stream_is_resumed_too(xworld):
    """RFC 7395 (converse.js's transport): the same resumption after the WebSocket connection drops."""
    add_user(xworld, "andy", "imp-1a")
    xworld.user("bob", "imp-1a")
    node = xworld.nodes["imp-1a"]
    room = room_of(node)

    async def scenario():
        async with running(node) as (node_1a,), signed_in(node, "bob") as (bob,):
            await bob.create(room)
            await bob.join(room)
            andy = RawWebSocketClient(node.agent_port, "andy")
            await andy.connect()
            await andy.ws.send(
                "<iq xmlns='jabber:client' type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
                "<resource>web</resource></bind></iq>"
            )
            await andy.until("iq")
            await andy.ws.send("<enable xmlns='urn:xmpp:sm:3' resume='true'/>")
            previd = (await andy.until("enabled")).get("id")
            andy.counting = True
            await andy.ws.send(
                f"<presence xmlns='jabber:client' to='{room}/andy'>"
                "<x xmlns='http://jabber.org/protocol/muc'><history maxstanzas='0'/></x></presence>"
            )
            while (await andy.until("message")).find("{jabber:client}subject") is None:
                pass  # joined: the subject comes last
            binding = kept_binding(node_1a.router, "andy")
            andy.ws.transport.abort()
            await until(lambda: binding.detached)
            for n in range(3):
                await bob.post(room, f"while away {n}", cid=f"b-{n}")
            back = RawWebSocketClient(node.agent_port, "andy")
            await back.connect()
            await back.ws.send(f"<resume xmlns='urn:xmpp:sm:3' previd='{previd}' h='{andy.handled}'/>")
            resumed = await back.until("resumed")
            back.counting = True
            await bob.post(room, "after", cid="b-9")
            while not any(f.findtext("{jabber:client}body") == "after" for f in back.frames):
                await back.until("message")
            bodies = [f.findtext("{jabber:client}body") for f in back.frames if f.findtext("{jabber:client}body")]
            await back.ws.close()
            return resumed.get("previd"), bodies

    previd, bodies = run(scenario())
    assert previd
    assert bodies == ["while away 0", "while away 1", "while away 2", "after"]
