"""Cisco XCP Router, its core: sessions by JID, room subscriptions, routing to the Text
Conference Manager hosting a room (the local one, or another node's over the bus), and moving
users when a failover or fallback changes the node serving them. The wire formats are front
ends: JSON over WebSocket (``json_ws``) and XMPP over TCP and WebSocket (``xmpp``); the core
hands each session's events to its front end's ``Binding``.

A user signs in on the node serving them (their home node, or its backup during a
failover); a user who connects elsewhere, or whose serving node changes while connected, is
told to reconnect to the right node: at once when a Server Recovery Manager announces a
transition (``users_moved``, locally or over the bus), else at the next safety-net check.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from typing import Protocol

from asgiref.sync import sync_to_async
from django.db import close_old_connections
from websockets.asyncio.server import ServerConnection, serve

from messaging import invitations
from messaging.chat import bus as chat_bus
from messaging.chat.directory import Directory, NodeAddress, UserInfo, host_port, xmpp_client_port
from messaging.chat.errors import ChatError, ErrorCode
from messaging.router.json_ws import MAX_FRAME_BYTES, JsonFrontEnd
from messaging.router.xmpp import XmppFrontEnd
from messaging.tc import requests
from messaging.tc.rooms import bare_room_jid, nick_for
from topology.agent.base import NodeService, ServiceStartError
from topology.models import EndUser, Node

logger = logging.getLogger(__name__)

REQUEST_TIMEOUT = 5.0  # how long a router waits for another node's TC
ROUTE_ATTEMPTS = 3
# How often the router checks its users are still served here even when no SRM announced a
# transition (``XcpRouter.users_moved``): a safety net, not the way users learn of a failover.
WATCH_SECONDS = 5.0


def serving_nodes(jids: list[str]) -> dict[str, str | None]:
    close_old_connections()
    try:
        rows = EndUser.objects.filter(jid__in=jids).values_list("jid", "active_node__name", "assigned_node__name")
        return {jid.lower(): active or assigned for jid, active, assigned in rows}
    finally:
        close_old_connections()


def relogin_limits(node: Node) -> tuple[int, int]:
    """The node's Client Re-Login Lower and Upper Limits (SRM service parameters)."""
    close_old_connections()
    try:
        from topology.models import NodeServiceParameters

        row = NodeServiceParameters.objects.filter(node=node).first() or NodeServiceParameters(node=node)
        return row.client_relogin_lower_limit, row.client_relogin_upper_limit
    finally:
        close_old_connections()


class Binding(Protocol):
    """How a front end reaches its client: ``deliver`` an event of the core (a dict with a
    ``type``: message, presence, reconnect, signed_out) in the front end's wire format, and
    ``finish`` the connection after what was delivered."""

    def deliver(self, event: dict) -> None: ...

    def finish(self) -> None: ...


@dataclass(eq=False)
class Session:
    """One signed-in client, of any front end (``binding``)."""

    binding: Binding
    user: UserInfo | None = None
    rooms: dict[str, str] = field(default_factory=dict)  # room JID → nick
    closing: bool = False
    # Handed what was kept for the user while they were signed in nowhere (room invitations):
    # XMPP clients once they send their initial presence, JSON clients on sign-in.
    available: bool = False

    def send(self, event: dict) -> None:
        if not self.closing:
            self.binding.deliver(event)

    def finish(self) -> None:
        self.closing = True
        self.binding.finish()


@dataclass(eq=False)
class RoomFeed:
    """A room's events on their way to this router's sessions: ``last`` is the msg_id of the
    last message delivered (None until the first join or message)."""

    events: asyncio.Queue = field(default_factory=asyncio.Queue)
    last: int | None = None
    task: asyncio.Task | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class XcpRouter(NodeService):
    """The node's message router and chat port, bound to ``node.agent_host:agent_port``."""

    name = "Cisco XCP Router"

    def __init__(self, node: Node) -> None:
        self.node = node
        self.tc = None
        self.directory = Directory()
        self.bus: chat_bus.Bus | None = None
        self.server = None
        self.sessions: dict[str, Session] = {}
        self.room_sessions: dict[str, set[Session]] = {}
        self.room_feeds: dict[str, RoomFeed] = {}
        # (room, user) → the role of each of our users in each room, as the room last said it:
        # restated with them to a room's new host, since a role lasts for the whole visit.
        self.occupant_roles: dict[tuple[str, str], str] = {}
        self._tasks: list[asyncio.Task] = []
        self._background: set[asyncio.Task] = set()
        self.json = JsonFrontEnd(self)
        self.xmpp = XmppFrontEnd(self)
        self.fenced_reason = ""  # set while the node's lease has run out (see ``fence``)
        self._relogin_limits = (1, 1)  # the last limits read; used when the config DB is away
        self._users_moved = asyncio.Event()  # set when an SRM announces a transition

    # --- life cycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        await self.directory.start()
        self.bus = chat_bus.Bus()
        try:
            await self.bus.start()
        except Exception as exc:
            await self.directory.stop()
            raise ServiceStartError(f"The chat bus (Redis at {self.bus.url}) is unreachable: {exc}") from exc
        self.xmpp.domain = await sync_to_async(cluster_domain, thread_sensitive=False)(self.node)
        client_port = xmpp_client_port(self.node)
        try:
            self.server = await serve(
                self._connection,
                self.node.agent_host,
                self.node.agent_port,
                max_size=MAX_FRAME_BYTES,
                subprotocols=["xmpp"],
                select_subprotocol=_select_subprotocol,
            )
            if client_port:
                await self.xmpp.start(self.node.agent_host, client_port)
        except OSError as exc:
            if self.server is not None:
                self.server.close()
                self.server = None
            await self.bus.stop()
            await self.directory.stop()
            port = client_port if self.server is None and client_port else self.node.agent_port
            raise ServiceStartError(f"Cannot listen on {self.node.agent_host}:{port}: {exc.strerror or exc}") from exc
        await self.bus.subscribe(chat_bus.users_moved_channel(self.bus.prefix), self._on_users_moved)
        await self.bus.subscribe(chat_bus.router_channel(self.bus.prefix, self.node.name), self._on_user_event)
        self._tasks = [asyncio.create_task(self._watch_users(), name="router-watch-users")]
        with contextlib.suppress(Exception):
            self._relogin_limits = await sync_to_async(relogin_limits, thread_sensitive=False)(self.node)

    # --- fencing ------------------------------------------------------------------------------

    def fence(self, reason: str) -> None:
        """The node's lease ran out (it lost touch with the config DB): tell every signed-in user
        to sign in on the other node of their redundancy group, and turn new sign-ins away
        (their connection is closed, so clients try the other node) until ``unfence``."""
        if self.fenced_reason:
            return
        self.fenced_reason = reason
        low, high = self._relogin_limits
        snapshot = self.directory.snapshot
        for session in list(self.sessions.values()):
            user = session.user
            target = next((n for n in (user.backup, user.home) if n and n != self.node.name), None)
            address = snapshot.nodes.get(target) if target else None
            if address is None:
                session.finish()
                continue
            session.send(
                reconnect_event(target, address.host, address.port, f"{reason}; sign in on {target}.", low, high)
            )
            session.finish()

    def unfence(self) -> None:
        self.fenced_reason = ""

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await self.xmpp.stop()
        if self.server is not None:
            self.server.close()
            with contextlib.suppress(Exception):
                await self.server.wait_closed()
            self.server = None
        for task in list(self._background):
            task.cancel()
        if self.bus is not None:
            await self.bus.stop()
            self.bus = None
        await self.directory.stop()
        self.sessions.clear()
        self.room_sessions.clear()
        for feed in self.room_feeds.values():
            if feed.task is not None:
                feed.task.cancel()
        self.room_feeds.clear()

    def is_running(self) -> bool:
        return self.server is not None and self.server.is_serving()

    def attach_tc(self, tc) -> None:
        self.tc = tc

    def detach_tc(self, tc) -> None:
        if self.tc is tc:
            self.tc = None

    # --- connections --------------------------------------------------------------------------

    async def _connection(self, ws: ServerConnection) -> None:
        """The WebSocket port: RFC 7395 clients ask for the ``xmpp`` subprotocol, JSON clients for none."""
        if ws.subprotocol == "xmpp":
            await self.xmpp.websocket_client(ws)
        else:
            await self.json.client(ws)

    async def _signed_out(self, session: Session) -> None:
        user = session.user
        if user is None:
            return
        if self.sessions.get(user.jid) is session:
            del self.sessions[user.jid]
        for room in list(session.rooms):
            await self._drop_from_room(session, room)
            current = self.sessions.get(user.jid)
            if current is not None and room in current.rooms:
                continue  # the user's new session is in the room: the room must not see them leave
            with contextlib.suppress(Exception):
                await self.route(room, requests.Leave(room=room, user=user.jid), attempts=1)

    # --- the router core, shared by the front ends ----------------------------------------------

    def new_session(self, binding: Binding) -> Session:
        """A session for a front end's connection (signed in by ``sign_in``)."""
        return Session(binding=binding)

    async def sign_in(self, session: Session, info: UserInfo) -> None:
        """Register an authenticated session; the user's earlier session here is signed out."""
        earlier = self.sessions.get(info.jid)
        if earlier is not None and earlier is not session:
            earlier.send({"type": "signed_out", "reason": "You signed in again on another connection."})
            earlier.finish()
        session.user = info
        self.sessions[info.jid] = session

    async def signed_out(self, session: Session) -> None:
        await self._signed_out(session)

    def room_jid(self, session: Session, room: str) -> str:
        """A room name or JID as the user gave it: a bare name is in the user's home node's alias."""
        default_alias = self.directory.snapshot.primary_alias.get(session.user.home or self.node.name, "")
        return bare_room_jid(room, default_alias)

    async def create_room(
        self,
        session: Session,
        room: str,
        *,
        persistent: bool = True,
        subject: str = "",
        members_only: bool | None = None,
        max_occupants: int | None = None,
        members: tuple[str, ...] = (),
    ) -> requests.Created:
        domain = session.user.jid.partition("@")[2]
        return await self.route(
            room,
            requests.CreateRoom(
                room=room,
                user=session.user.jid,
                persistent=persistent,
                subject=subject,
                members_only=members_only,
                max_occupants=max_occupants,
                members=tuple(m.lower() if "@" in m else f"{m.lower()}@{domain}" for m in members),
            ),
        )

    async def join(
        self,
        session: Session,
        room: str,
        nick: str | None = None,
        since: int | None = None,
        history: int | None = None,
        password: str = "",
    ) -> requests.Joined:
        """Enter a room (subscribed to its events first, so nothing after the history is missed);
        ``password``: a password-protected room's (XEP-0045 §7.2.6)."""
        nick = nick or nick_for(session.user.jid)
        was_in = room in session.rooms
        await self._add_to_room(session, room, nick)
        request = requests.Join(
            room=room,
            user=session.user.jid,
            nick=nick,
            router=self.node.name,
            since=since,
            history=history,
            password=password,
        )
        try:
            answer = await self.route(room, request)
        except ChatError:
            if not was_in:
                await self._drop_from_room(session, room)
            raise
        feed = self.room_feeds.setdefault(room, RoomFeed())
        if feed.task is None:
            feed.task = asyncio.create_task(self._deliver_in_order(room, feed), name=f"router-feed-{room}")
        if feed.last is None:  # the first of our users in the room: deliver what follows the join
            feed.last = answer.last_msg_id
        self.occupant_roles[(room, session.user.jid)] = answer.role
        return answer

    async def leave(self, session: Session, room: str) -> requests.Left:
        if room not in session.rooms:
            raise ChatError(ErrorCode.NOT_IN_ROOM, f"You are not in {room}.")
        await self._drop_from_room(session, room)
        return await self.route(room, requests.Leave(room=room, user=session.user.jid))

    async def post(self, session: Session, room: str, body: str, cid: str) -> requests.Posted:
        """Store a message; the answer (after the commit) carries the stored message."""
        if room not in session.rooms:
            raise ChatError(ErrorCode.NOT_IN_ROOM, f"Join {room} before posting to it.")
        return await self.route(
            room,
            requests.Post(
                room=room,
                user=session.user.jid,
                nick=session.rooms[room],
                body=body,
                cid=cid,
                joined=True,
                router=self.node.name,
                role=self.occupant_roles.get((room, session.user.jid), ""),
            ),
        )

    async def set_subject(self, session: Session, room: str, subject: str) -> requests.Done:
        """Change a room's subject (XEP-0045 §8.1); the room broadcasts it after storing it."""
        if room not in session.rooms:
            raise ChatError(ErrorCode.NOT_IN_ROOM, f"Join {room} before changing its subject.")
        return await self.route(room, requests.SetSubject(room=room, user=session.user.jid, subject=subject))

    async def change_nick(self, session: Session, room: str, nick: str) -> requests.NickChanged:
        """Take another nickname in a room (XEP-0045 §7.6); the room tells the other occupants."""
        if room not in session.rooms:
            raise ChatError(ErrorCode.NOT_IN_ROOM, f"Join {room} before changing your nickname in it.")
        request = requests.ChangeNick(
            room=room,
            user=session.user.jid,
            nick=nick,
            old_nick=session.rooms[room],
            router=self.node.name,
            role=self.occupant_roles.get((room, session.user.jid), ""),
        )
        answer = await self.route(room, request)
        if room in session.rooms:  # not left meanwhile
            session.rooms[room] = answer.nick
        return answer

    async def send_private(self, session: Session, room: str, nick: str, content: dict) -> None:
        """A private message to the occupant known as ``nick`` in the room (XEP-0045 §7.5): the
        room says who that is and where they are signed in; the message goes there, from the
        sender's nickname, and is stored nowhere. ``content``: what the front end carries over
        (``body``, ``id``, ``message_type``)."""
        if room not in session.rooms:
            raise ChatError(ErrorCode.NOT_IN_ROOM, f"Join {room} before sending private messages in it.")
        request = requests.PrivateMessage(
            room=room,
            user=session.user.jid,
            to_nick=nick,
            nick=session.rooms[room],
            router=self.node.name,
            role=self.occupant_roles.get((room, session.user.jid), ""),
        )
        recipient = await self.route(room, request)
        event = {"type": "private", "room": room, "nick": recipient.nick, "from": session.user.jid, **content}
        if not await self.deliver_to_user(recipient.user, recipient.router, event):
            raise ChatError(
                ErrorCode.ROOM_UNAVAILABLE,
                f"{nick} in {room} cannot be reached right now; try again.",
            )

    async def request_voice(self, session: Session, room: str) -> None:
        """A visitor asks for voice (XEP-0045 §8.6): the room names its moderators, and each gets
        the request wherever they are signed in. Nobody answers the visitor but a moderator's
        grant (their new presence)."""
        if room not in session.rooms:
            raise ChatError(ErrorCode.NOT_IN_ROOM, f"Join {room} before asking for voice in it.")
        answer = await self.route(room, requests.RequestVoice(room=room, user=session.user.jid))
        event = {"type": "voice_request", "room": room, "user": session.user.jid, "nick": answer.nick}
        for moderator in answer.moderators:
            await self.deliver_to_user(moderator["user"], moderator["router"], event)

    async def invite(
        self, session: Session, room: str, invitee: str, reason: str = "", message_id: str = "", direct_from: str = ""
    ) -> None:
        """A mediated invitation (XEP-0045 §7.8.2): the room checks it (and, in a members-only
        room, makes the invitee a member); then it goes to the invitee wherever they are signed
        in. An invitee signed in nowhere gets it at their next sign-in, on whichever node
        (``KeptInvitation``), as Prosody's and ejabberd's offline stores do; the inviter hears
        nothing either way. A JID no user has is ``item-not-found`` (XEP-0045 §7.8.2), once the
        room has checked that the inviter may invite, and a members-only room makes no member of it.
        ``direct_from``: the inviter's full JID, for a XEP-0249 direct invitation (checked by the
        room all the same, and written as the inviter sent it)."""
        if room not in session.rooms:
            raise ChatError(ErrorCode.NOT_IN_ROOM, f"Join {room} before inviting people to it.")
        try:
            nodes = await sync_to_async(serving_nodes, thread_sensitive=False)([invitee])
        except Exception as exc:
            logger.warning("Could not read where %s is served: %s", invitee, exc)
            raise ChatError(ErrorCode.INTERNAL, f"The invitation to {invitee} could not be sent; try again.") from None
        request = requests.Invite(
            room=room,
            user=session.user.jid,
            invitee=invitee,
            nick=session.rooms[room],
            router=self.node.name,
            known=invitee in nodes,
            role=self.occupant_roles.get((room, session.user.jid), ""),
        )
        invited = await self.route(room, request)
        event = {"type": "invite", "room": room, "from": session.user.jid, "reason": reason, "id": message_id}
        if direct_from:
            event["direct_from"] = direct_from
        await self._hand_or_keep(invited.invitee, nodes.get(invited.invitee), event)

    async def _hand_or_keep(self, jid: str, node: str | None, event: dict) -> None:
        """Hand an invitation or a decline to ``jid``'s session on ``node`` (that node's router
        keeps it when the user has no session there), or keep it here when no router can take it."""
        if node and node != self.node.name:
            try:
                channel = chat_bus.router_channel(self.bus.prefix, node)
                if await self.bus.publish(channel, {"to": jid, "event": event, "keep": True}) > 0:
                    return
            except Exception as exc:
                logger.warning("Could not hand an invitation for %s to %s: %s", jid, node, exc)
        elif node:
            session = self.sessions.get(jid)
            if session is not None:
                session.send(event)
                return
        await self.keep_invitation(jid, event)

    async def keep_invitation(self, jid: str, event: dict) -> None:
        """Keep an invitation or a decline for a user signed in nowhere, for their next sign-in;
        a user who signed in here meanwhile gets it at once."""
        try:
            kept = await sync_to_async(invitations.keep, thread_sensitive=False)(jid, event)
        except Exception as exc:
            logger.warning("Could not keep an invitation to %s for %s: %s", event.get("room"), jid, exc)
            return
        session = self.sessions.get(jid)
        if kept and session is not None and session.available:
            await self.hand_over_kept(session)

    async def hand_over_kept(self, session: Session) -> None:
        """Give a session the invitations kept for its user (once: each is deleted as it is
        taken, so two nodes or two calls never hand one over twice)."""
        session.available = True
        if session.closing or session.user is None:
            return
        try:
            kept = await sync_to_async(invitations.take, thread_sensitive=False)(session.user.jid)
        except Exception as exc:
            logger.warning("Could not read the invitations kept for %s: %s", session.user.jid, exc)
            return
        for event in kept:
            session.send(event)

    async def decline(self, session: Session, room: str, inviter: str, reason: str = "", message_id: str = "") -> None:
        """An invitee declines (XEP-0045 §7.8.2): the room passes it on to the inviter, wherever
        they are signed in (nowhere: at their next sign-in, as an invitation is; a JID no user
        has: dropped). The room must exist; nothing is checked of an invitation, as in Prosody."""
        await self.route(room, requests.Info(room=room, user=session.user.jid))
        event = {"type": "decline", "room": room, "from": session.user.jid, "reason": reason, "id": message_id}
        try:
            nodes = await sync_to_async(serving_nodes, thread_sensitive=False)([inviter])
        except Exception as exc:
            logger.warning("Could not read where %s is served: %s", inviter, exc)
            raise ChatError(ErrorCode.INTERNAL, f"The decline to {inviter} could not be sent; try again.") from None
        if inviter in nodes:
            await self._hand_or_keep(inviter, nodes[inviter], event)

    async def deliver_to_user(self, jid: str, node: str, event: dict) -> bool:
        """Hand ``event`` to the session of ``jid`` on ``node``'s router: this router's own, or
        another's over the bus. False when it cannot have arrived (no such session here, or
        nobody listens on that node)."""
        if node == self.node.name or not node:
            session = self.sessions.get(jid)
            if session is None:
                return False
            session.send(event)
            return True
        channel = chat_bus.router_channel(self.bus.prefix, node)
        try:
            return await self.bus.publish(channel, {"to": jid, "event": event}) > 0
        except Exception as exc:
            logger.warning("Could not hand an event for %s to %s: %s", jid, node, exc)
            return False

    def _on_user_event(self, payload: dict) -> None:
        session = self.sessions.get(payload.get("to") or "")
        event = payload.get("event")
        if not isinstance(event, dict):
            return
        if session is not None:
            session.send(event)
        elif payload.get("keep") and event.get("type") in ("invite", "decline"):
            self._spawn(self.keep_invitation(payload["to"], event))

    async def client_address(self, node_name: str, websocket: bool = False) -> str:
        """``host:port`` of a node's XMPP client port (``ws://host:port`` for WebSocket clients)."""
        address = self.directory.snapshot.nodes.get(node_name)
        if address is None:
            address = (await self.directory.refresh()).nodes.get(node_name)
        if address is None:
            return ""
        if websocket:
            return f"ws://{host_port(address.host, address.port)}/"
        return host_port(address.host, address.xmpp_port or address.port)

    def spawn(self, coroutine) -> asyncio.Task:
        return self._spawn(coroutine)

    # --- rooms and routing --------------------------------------------------------------------

    async def _add_to_room(self, session: Session, room: str, nick: str) -> None:
        sessions = self.room_sessions.get(room)
        if sessions is None:
            sessions = self.room_sessions[room] = set()
            # Subscribe before joining, so nothing posted after the join's history is missed.
            await self.bus.subscribe(chat_bus.room_channel(self.bus.prefix, room), self._room_event_handler(room))
        sessions.add(session)
        session.rooms[room] = nick

    async def _drop_from_room(self, session: Session, room: str) -> None:
        session.rooms.pop(room, None)
        if session.user is not None:
            self.occupant_roles.pop((room, session.user.jid), None)
        sessions = self.room_sessions.get(room)
        if sessions is None:
            return
        sessions.discard(session)
        if not sessions:
            del self.room_sessions[room]
            feed = self.room_feeds.pop(room, None)
            if feed is not None and feed.task is not None:
                feed.task.cancel()
            if self.bus is not None:
                await self.bus.unsubscribe(chat_bus.room_channel(self.bus.prefix, room))

    def _room_event_handler(self, room: str):
        def deliver(event: dict) -> None:
            if event.get("event") == "room_loaded":
                self._spawn(self._resync(room, event.get("node")))
                return
            feed = self.room_feeds.get(room)
            if feed is None:
                feed = self.room_feeds[room] = RoomFeed()
                feed.task = asyncio.create_task(self._deliver_in_order(room, feed), name=f"router-feed-{room}")
            feed.events.put_nowait(event)

        return deliver

    async def _deliver_in_order(self, room: str, feed: RoomFeed) -> None:
        """Hand a room's events to its sessions in the room's order, each message once.

        The bus delivers at most once and, while a room moves between nodes, two nodes may
        publish; message ids of a room are consecutive, so a jump is a message this router
        missed: it is read from the archive and delivered first, and a late copy of a message
        already delivered is dropped. An XMPP client thus sees the room without gaps, and its
        last stanza-id really is "everything up to here" (what it asks MAM after when it moves).
        """
        while True:
            event = await feed.events.get()
            kind = event.pop("event", None)
            async with feed.lock:
                if kind == "message":
                    msg_id = event["msg_id"]
                    if feed.last is not None and msg_id <= feed.last:
                        continue
                    if feed.last is not None and msg_id > feed.last + 1:
                        await self._deliver_missing(room, feed, msg_id)
                    feed.last = msg_id
                if kind == "presence" and (room, event.get("user")) in self.occupant_roles and event.get("role"):
                    self.occupant_roles[(room, event["user"])] = event["role"]
                if kind == "presence" and event.get("kicked"):
                    self._put_out(room, event)
                elif kind in ("message", "presence", "subject", "config"):
                    self._to_room(room, kind, event)

    async def _deliver_missing(self, room: str, feed: RoomFeed, upto: int) -> None:
        for missing in await self._missing_messages(room, feed.last, upto):
            self._to_room(room, "message", missing)
            feed.last = missing["msg_id"]

    async def delivered_through(self, room: str, msg_id: int) -> bool:
        """Make sure the room's messages up to ``msg_id`` reached this router's sessions in
        order (a post answered as a repeat names a message whose broadcast may have been lost
        while the room moved); True when this call delivered ``msg_id`` itself."""
        feed = self.room_feeds.get(room)
        if feed is None:
            return False
        async with feed.lock:
            if feed.last is None or feed.last >= msg_id:
                return False
            await self._deliver_missing(room, feed, msg_id + 1)
            return feed.last >= msg_id

    def _put_out(self, room: str, event: dict) -> None:
        """An occupant was put out of the room (banned, no longer a member, the room destroyed):
        everyone hears it, and the occupant's own sessions here leave the room."""
        self._to_room(room, "presence", event)
        for session in list(self.room_sessions.get(room, ())):
            if session.user is not None and session.user.jid == event["user"]:
                self._spawn(self._drop_from_room(session, room))

    def _to_room(self, room: str, kind: str, event: dict) -> None:
        # One event for every session, read-only to them: a front end renders it once
        # (``XmppFrontEnd.render``) and each session differs only in its address.
        event = {"type": kind, **event}
        for session in list(self.room_sessions.get(room, ())):
            session.send(event)

    async def _missing_messages(self, room: str, last: int, upto: int) -> list[dict]:
        """Messages after ``last`` and before ``upto``, read from the room's host (its archive)."""
        reader = next((s.user.jid for s in self.room_sessions.get(room, ()) if s.user), None)
        found: list[dict] = []
        while reader is not None and last + 1 < upto:
            try:
                page = await self.route(room, requests.History(room=room, user=reader, after=last))
            except ChatError as exc:
                logger.warning("Could not read the messages of %s after %s: %s", room, last, exc.message)
                break
            page = [m for m in page.messages if m["msg_id"] < upto]
            if not page:
                break
            found += page
            last = page[-1]["msg_id"]
        return found

    async def _resync(self, room: str, host: str | None = None) -> None:
        """Tell the room's new host which of our users are in it. The host that announced the
        room is asked directly: this router's directory may not know of the move yet, and a
        resync lost to the old host would leave our users out of the room's occupants (a
        XEP-0410 self-ping would then wrongly tell them to rejoin)."""
        occupants = [
            (s.user.jid, s.rooms[room], self.occupant_roles.get((room, s.user.jid), ""))
            for s in self.room_sessions.get(room, ())
            if s.user and room in s.rooms
        ]
        if not occupants:
            return
        request = requests.Resync(room=room, occupants=tuple(occupants), router=self.node.name)
        address = self.directory.snapshot.nodes.get(host) if host else None
        if address is not None:
            with contextlib.suppress(ChatError):
                await self._ask(address, request, room)
                return
        with contextlib.suppress(ChatError):
            await self.route(room, request, attempts=1)

    def _spawn(self, coroutine) -> asyncio.Task:
        task = asyncio.create_task(coroutine)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    async def route(self, room: str, request: requests.Request, attempts: int = ROUTE_ATTEMPTS) -> requests.Answer:
        """Send a room request to the TC hosting the room now; retry while the room moves."""
        for attempt in range(attempts):
            snapshot = self.directory.snapshot
            if snapshot.home_of_room(room) is None:
                snapshot = await self.directory.refresh()
                if snapshot.home_of_room(room) is None:
                    raise ChatError(
                        ErrorCode.ROOM_NOT_FOUND, f"No IM and Presence node answers to the alias of {room}."
                    )
            host = snapshot.host_of_room(room)
            try:
                return await self._ask(host, request, room)
            except ChatError as exc:
                if exc.code != ErrorCode.ROOM_UNAVAILABLE or attempt == attempts - 1:
                    raise
            await asyncio.sleep(0.2 * (attempt + 1))
            await self.directory.refresh()
        raise ChatError(ErrorCode.ROOM_UNAVAILABLE, f"No node serves {room} right now; try again.")

    async def route_home(self, home: str, request: requests.Request) -> requests.Answer:
        snapshot = self.directory.snapshot
        host = snapshot.nodes.get(snapshot.host_of.get(home, ""))
        return await self._ask(host, request, f"the rooms of {home}")

    async def _ask(self, host: NodeAddress | None, request: requests.Request, what: str) -> requests.Answer:
        """The answer of the TC on ``host``: this node's directly, another's over the bus."""
        if host is None:
            raise _unavailable(f"No node serves {what} right now (a fallback is moving it); try again.")
        if host.name == self.node.name and self.tc is not None:
            return await self.tc.handle(request)
        try:
            data = await self.bus.request(
                chat_bus.tc_channel(self.bus.prefix, host.name), request.to_wire(), REQUEST_TIMEOUT
            )
        except chat_bus.NoListener:
            raise _unavailable(
                f"The Text Conference Manager of {host.name}, which hosts {what}, is not running."
            ) from None
        except chat_bus.BusTimeout:
            raise _unavailable(f"{host.name}, which hosts {what}, did not answer in time.") from None
        return requests.answer_from_wire(request, data)

    # --- users moved by a failover or fallback ------------------------------------------------

    def users_moved(self) -> None:
        """This node's SRM saw a transition of its redundancy group (``NodeService.users_moved``):
        check this router's users at once, and have every other router check theirs (the peer's
        users may have moved to or from it)."""
        self._users_moved.set()
        if self.bus is not None:
            channel = chat_bus.users_moved_channel(self.bus.prefix)
            self._spawn(self.bus.publish(channel, {"by": self.node.name}))

    def _on_users_moved(self, payload: dict) -> None:
        if payload.get("by") != self.node.name:  # our own announcement: already checking
            self._users_moved.set()

    async def _watch_users(self) -> None:
        """Send each signed-in user no longer served here to the node serving them: as soon as
        an SRM announces a transition (``users_moved``), and every ``WATCH_SECONDS`` in any case
        (a user reassigned in the console, an announcement lost with the bus)."""
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(WATCH_SECONDS):
                    await self._users_moved.wait()
            self._users_moved.clear()
            if not self.sessions:
                continue
            try:
                await self._reconnect_moved_users()
            except Exception as exc:
                logger.warning("Could not read where users are served: %s", exc)

    async def _reconnect_moved_users(self) -> None:
        serving = await sync_to_async(serving_nodes, thread_sensitive=False)(list(self.sessions))
        moved = [
            (session, node)
            for jid, session in list(self.sessions.items())
            if (node := serving.get(jid)) and node != self.node.name and not session.closing
        ]
        await self._send_reconnects([(s, node, f"{s.user.user_id} is now served by {node}.") for s, node in moved])

    async def _send_reconnect(self, session: Session, node_name: str, reason: str) -> None:
        await self._send_reconnects([(session, node_name, reason)])

    async def _send_reconnects(self, moves: list[tuple[Session, str, str]]) -> None:
        """Tell each session to sign in again on a node (session, node name, why): the limits
        and addresses are read once for all of them, so fifty users moved by a failover are
        told together."""
        if not moves:
            return
        with contextlib.suppress(Exception):  # the config DB away: the limits last read
            self._relogin_limits = await sync_to_async(relogin_limits, thread_sensitive=False)(self.node)
        low, high = self._relogin_limits
        snapshot = self.directory.snapshot
        if any(node not in snapshot.nodes for _, node, _ in moves):
            snapshot = await self.directory.refresh()
        for session, node, reason in moves:
            # A client still signing in has no user yet; the reason names the user either way.
            logger.info("%s Asking the client to reconnect there.", reason)
            address = snapshot.nodes.get(node)
            if address is not None:
                session.send(reconnect_event(node, address.host, address.port, reason, low, high))
            session.finish()


def cluster_domain(node: Node) -> str:
    """The IM domain of the node's cluster (the XMPP stream's domain)."""
    close_old_connections()
    try:
        return Node.objects.select_related("cluster").get(pk=node.pk).cluster.domain.lower()
    finally:
        close_old_connections()


def reconnect_event(node: str, host: str, port: int, reason: str, delay_min: int = 0, delay_max: int = 0) -> dict:
    """The core's notice: sign in again on ``node`` (at ``host:port``, the WebSocket port; XMPP
    front ends name the node's XMPP client port) after a delay in the range."""
    return {
        "type": "reconnect",
        "node": node,
        "host": host,
        "port": port,
        "reason": reason,
        "delay_min": delay_min,
        "delay_max": delay_max,
    }


def _select_subprotocol(connection, subprotocols):
    """RFC 7395 clients ask for ``xmpp``; JSON clients ask for nothing."""
    return "xmpp" if "xmpp" in subprotocols else None


def _unavailable(message: str) -> ChatError:
    return ChatError(ErrorCode.ROOM_UNAVAILABLE, message)
