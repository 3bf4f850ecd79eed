"""The JSON front end of the XCP Router: the project's JSON-over-WebSocket protocol
(``docs/chat-protocol.md``, codec in ``messaging.chat.protocol``) on the node's WebSocket port.
It turns frames into calls of the router core and the core's events into frames."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from asgiref.sync import sync_to_async
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from messaging.chat import protocol as proto
from messaging.chat.errors import ChatError, ErrorCode
from messaging.tc import requests
from topology import credentials

logger = logging.getLogger(__name__)

MAX_FRAME_BYTES = proto.MAX_FRAME_BYTES
OUTBOX_LIMIT = 10000


class JsonBinding:
    """A JSON client's connection: the core's events become frames, queued and sent in order."""

    def __init__(self, ws: ServerConnection) -> None:
        self.ws = ws
        self.outbox: asyncio.Queue = asyncio.Queue(OUTBOX_LIMIT)
        self.closing = False

    def deliver(self, event: dict) -> None:
        if self.closing:
            return
        try:
            self.outbox.put_nowait(proto.encode(event))
        except asyncio.QueueFull:  # a client that does not read: drop it, it will resync
            self.closing = True
            self.outbox = asyncio.Queue()
            self.outbox.put_nowait(None)

    def finish(self) -> None:
        self.closing = True
        with contextlib.suppress(asyncio.QueueFull):
            self.outbox.put_nowait(None)

    async def pump(self) -> None:
        """Send the frames in order; close the connection after the last one."""
        try:
            while True:
                frame = await self.outbox.get()
                if frame is None:
                    break
                await self.ws.send(frame)
        except ConnectionClosed:
            pass
        finally:
            with contextlib.suppress(Exception):
                await self.ws.close()


class JsonFrontEnd:
    """The JSON protocol on the router's WebSocket port (clients that ask for no subprotocol)."""

    def __init__(self, router) -> None:
        self.router = router

    async def client(self, ws: ServerConnection) -> None:
        """One JSON client connection, until it closes."""
        binding = JsonBinding(ws)
        session = self.router.new_session(binding)
        pump = asyncio.create_task(binding.pump())
        try:
            async for frame in ws:
                if session.closing:
                    break
                try:
                    command = proto.decode(frame)
                except proto.ProtocolError as exc:
                    session.send(proto.error(exc.request_id, exc))
                    continue
                try:
                    await self._dispatch(session, command)
                except ChatError as exc:
                    session.send(proto.error(command.id, exc))
                except Exception:
                    logger.exception("Request %r failed", command)
                    session.send(proto.error(command.id, ChatError(ErrorCode.INTERNAL, "The request failed.")))
        except ConnectionClosed:
            pass
        finally:
            session.finish()
            await self.router.signed_out(session)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(pump, 2)
            pump.cancel()

    async def _dispatch(self, session, command: proto.Command) -> None:
        """The JSON front end: one command, one reply."""
        if isinstance(command, proto.Ping):
            session.send(proto.reply(command.id, "pong"))
            return
        if isinstance(command, proto.SignIn):
            await self._sign_in(session, command)
            return
        if session.user is None:
            raise ChatError(
                ErrorCode.NOT_SIGNED_IN,
                'Sign in first: {"type": "sign_in", "user": "<user ID>", "password": "<password>"}.',
            )
        user = session.user
        if isinstance(command, proto.ListRooms):
            home = user.home or self.router.node.name
            answer = await self.router.route_home(home, requests.ListRooms(home=home, user=user.jid))
            rooms = [{key: room[key] for key in ("room", "type", "subject")} for room in answer.rooms]
            session.send(proto.reply(command.id, "rooms", rooms=rooms))
            return
        room = self.router.room_jid(session, command.room)
        if isinstance(command, proto.CreateRoom):
            answer = await self.router.create_room(
                session,
                room,
                persistent=command.persistent,
                subject=command.subject,
                members_only=command.members_only,
                max_occupants=command.max_occupants,
                members=command.members,
            )
            session.send(proto.reply(command.id, "created", **answer.fields()))
        elif isinstance(command, proto.Join):
            answer = await self.router.join(
                session, room, since=command.since, history=command.history, password=command.password
            )
            session.send(proto.reply(command.id, "joined", **_without(answer, JOINED_XMPP_ONLY)))
        elif isinstance(command, proto.Leave):
            answer = await self.router.leave(session, room)
            session.send(proto.reply(command.id, "left", **answer.fields()))
        elif isinstance(command, proto.Post):
            answer = await self.router.post(session, room, command.body, command.cid)
            session.send(proto.reply(command.id, "ack", room=answer.room, msg_id=answer.msg_id, cid=answer.cid))
        elif isinstance(command, proto.History):
            request = requests.History(
                room=room, user=user.jid, before=command.before, after=command.after, limit=command.limit
            )
            answer = await self.router.route(room, request)
            session.send(proto.reply(command.id, "history", **answer.fields()))
        elif isinstance(command, proto.Presence):
            answer = await self.router.route(room, requests.Presence(room=room, user=user.jid))
            session.send(proto.reply(command.id, "presence", **answer.fields()))

    async def _sign_in(self, session, command: proto.SignIn) -> None:
        if session.user is not None:
            raise ChatError(ErrorCode.ALREADY_SIGNED_IN, f"This connection is already signed in as {session.user.jid}.")
        if self.router.fenced_reason:
            session.finish()  # the client tries the other node of the user's group
            return
        try:
            user = await credentials.aauthenticate(command.user, command.password, _source_address(session.binding.ws))
        except credentials.SignInRefused as exc:
            # The refusal ends the connection: each try costs the client a new one.
            code = ErrorCode.THROTTLED if isinstance(exc, credentials.SignInThrottled) else ErrorCode.NOT_AUTHORIZED
            session.send(proto.error(command.id, ChatError(code, str(exc))))
            session.finish()
            return
        from messaging.chat.directory import lookup_user

        info = await sync_to_async(lookup_user, thread_sensitive=False)(user.user_id)
        if info is None:
            raise ChatError(ErrorCode.UNKNOWN_USER, f"There is no user {command.user!r} in IM and Presence.")
        if info.serving is None:
            raise ChatError(ErrorCode.UNKNOWN_USER, f"{info.user_id} is not assigned to any IM and Presence node.")
        if info.serving != self.router.node.name:
            await self.router._send_reconnect(session, info.serving, f"{info.user_id} is served by {info.serving}.")
            return
        await self.router.sign_in(session, info)
        snapshot = self.router.directory.snapshot
        backup = snapshot.nodes.get(info.backup) if info.backup else None
        session.send(
            proto.reply(
                command.id,
                "signed_in",
                user=info.user_id,
                jid=info.jid,
                node=self.router.node.name,
                home=info.home,
                backup=_address(backup),
            )
        )
        await self.router.hand_over_kept(session)  # invitations kept while signed in nowhere


def _source_address(ws: ServerConnection) -> str:
    """The client's IP address, for the sign-in throttle."""
    address = ws.remote_address
    return str(address[0]) if isinstance(address, tuple) and address else "unknown"


# What a join answers that only XMPP occupant presence needs.
JOINED_XMPP_ONLY = {"roster", "subject_nick", "affiliation", "role"}


def _without(answer: requests.Answer, names: set[str]) -> dict:
    return {key: value for key, value in answer.fields().items() if key not in names}


def _address(address) -> dict | None:
    if address is None:
        return None
    return {"node": address.name, "host": address.host, "port": address.port}
