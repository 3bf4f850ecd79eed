"""The chat client: signs in on a node's chat port and keeps a user's conversation going.

It signs in with the user's password, and again with it after every reconnect. A refused
sign-in (wrong password, throttled) raises ChatClientError and is not retried.

It follows "reconnect to node X" by itself (waiting the re-login delay the server names),
reconnects to the user's backup node when the home node is unreachable, rejoins its rooms
and fetches what it missed (room message ids are consecutive, so a gap is visible), and
retries a post that was not acknowledged with the same client id, which the service stores
at most once. Used by ``manage.py chat``, the tests and ``bench/chat_load.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import random
import time
import uuid
from dataclasses import dataclass, field

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

logger = logging.getLogger(__name__)

CONNECT_TIMEOUT = 3.0
REPLY_TIMEOUT = 15.0


class ChatClientError(Exception):
    """The server refused a request: ``code`` and ``message`` as in the protocol."""

    def __init__(self, code: str, message: str, retry: bool = False) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.retry = retry


class Disconnected(Exception):
    """The connection went away before the reply came."""


@dataclass(frozen=True)
class Address:
    node: str
    host: str
    port: int


@dataclass
class RoomView:
    """What the client has seen of a room: messages by id, in order."""

    jid: str
    messages: dict[int, dict] = field(default_factory=dict)

    @property
    def last_id(self) -> int:
        return max(self.messages, default=0)


class ChatClient:
    """One signed-in user. ``events`` receives messages, presence and notices as dicts."""

    def __init__(
        self,
        user: str,
        host: str,
        port: int,
        *,
        password: str,
        max_relogin_delay: float | None = None,
        give_up_after: float = 600.0,
    ) -> None:
        self.user = user
        self._password = password  # kept for signing in again after a failover; never logged
        self.address = Address("", host, port)
        self.home = self.address
        self.backup: Address | None = None
        self.max_relogin_delay = max_relogin_delay
        self.give_up_after = give_up_after
        self.node: str | None = None
        self.jid: str | None = None
        self.rooms: dict[str, RoomView] = {}
        self.events: asyncio.Queue[dict] = asyncio.Queue()
        self.reconnects = 0
        self._ws: ClientConnection | None = None
        self._ids = itertools.count(1)
        self._pending: dict[str, asyncio.Future] = {}
        self._reader: asyncio.Task | None = None
        self._connected = asyncio.Event()
        self._closing = False
        self._reconnecting: asyncio.Task | None = None
        self._lost_again: tuple[dict | None] | None = None
        self._redirect: dict | None = None

    # --- connection -------------------------------------------------------------------------

    async def connect(self) -> None:
        """Sign in, following redirects, until a node accepts the user (or give up)."""
        deadline = time.monotonic() + self.give_up_after
        candidates = [self.address]
        reported: set[Address] = set()
        while True:
            address = candidates[0]
            try:
                await self._sign_in(address)
                return
            except Redirected as redirect:
                notice = redirect.notice
                target = Address(notice["node"], notice["host"], notice["port"])
                await self._relogin_delay(notice)
                candidates = [target]
            except ChatClientError as exc:
                # A refusal (a wrong password) ends it; a retryable error (the node busy, an
                # internal error) is tried again, as an unreachable node is.
                if not exc.retry:
                    raise
                logger.info("%s: %s refused the sign-in (%s); retrying", self.user, address.host, exc.code)
                await asyncio.sleep(0.3)
            except (OSError, InvalidHandshake, ConnectionClosed, TimeoutError, Disconnected) as exc:
                # Say it once per node; the retries every 0.3 s would drown the conversation.
                level = logging.DEBUG if address in reported else logging.INFO
                reported.add(address)
                logger.log(level, "%s: cannot reach %s:%s (%s); retrying", self.user, address.host, address.port, exc)
                # The node is down: try the other node of the user's redundancy group.
                others = [a for a in (self.home, self.backup) if a is not None and a != address]
                candidates = [*others, address]
                await asyncio.sleep(0.3)
            if time.monotonic() > deadline:
                raise Disconnected(f"{self.user} could not sign in within {self.give_up_after} s")

    async def _relogin_delay(self, notice: dict) -> None:
        low, high = float(notice.get("delay_min", 0)), float(notice.get("delay_max", 0))
        delay = random.uniform(low, max(low, high))
        if self.max_relogin_delay is not None:
            delay = min(delay, self.max_relogin_delay)
        await asyncio.sleep(delay)

    async def _sign_in(self, address: Address) -> None:
        async with asyncio.timeout(CONNECT_TIMEOUT):
            ws = await connect(f"ws://{address.host}:{address.port}", open_timeout=CONNECT_TIMEOUT, max_size=2**20)
        self._ws = ws
        self._redirect = None
        self._reader = asyncio.create_task(self._read(ws))
        try:
            reply = await self._request_on(ws, {"type": "sign_in", "user": self.user, "password": self._password})
        except Disconnected:
            if self._redirect is not None:
                raise Redirected(self._redirect) from None
            raise
        self.node, self.jid = reply["node"], reply["jid"]
        self.address = Address(reply["node"], address.host, address.port)
        if reply.get("home") == reply["node"]:
            self.home = self.address
        backup = reply.get("backup")
        if backup:
            self.backup = Address(backup["node"], backup["host"], backup["port"])
        self._connected.set()

    async def close(self) -> None:
        self._closing = True
        if self._reconnecting is not None:
            self._reconnecting.cancel()
        if self._ws is not None:
            await self._ws.close()
        if self._reader is not None:
            with contextlib.suppress(Exception):
                await self._reader

    async def _read(self, ws: ClientConnection) -> None:
        try:
            async for frame in ws:
                event = json.loads(frame)
                self._on_frame(event)
        except ConnectionClosed:
            pass
        finally:
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(Disconnected("connection closed"))
            if self._ws is ws:
                self._connected.clear()
                if not self._closing and self.node is not None and self._redirect is None:
                    self._start_reconnect(None)

    def _on_frame(self, event: dict) -> None:
        request_id = event.get("re")
        if request_id is not None and request_id in self._pending:
            future = self._pending[request_id]
            if not future.done():
                future.set_result(event)
            return
        kind = event.get("type")
        if kind == "signed_out":
            # Another connection signed in as this user: reconnecting would sign it out in
            # turn, so this client stops here and says why.
            self._closing = True
        elif kind == "reconnect":
            self._redirect = event
            if self.node is not None:
                self._start_reconnect(event)
        elif kind == "message":
            view = self.rooms.get(event["room"])
            if view is not None:
                self._add_message(view, event)
        self.events.put_nowait(event)

    def _add_message(self, view: RoomView, message: dict) -> None:
        gap = message["msg_id"] > view.last_id + 1 and view.messages
        view.messages[message["msg_id"]] = message
        if gap:
            asyncio.get_running_loop().create_task(self._fill_gap(view.jid))

    def _start_reconnect(self, notice: dict | None) -> None:
        self._connected.clear()
        if self._reconnecting is None or self._reconnecting.done():
            self._reconnecting = asyncio.get_running_loop().create_task(self._reconnect(notice))
        else:
            # The connection the running reconnect made was lost (or redirected) while it was
            # rejoining rooms: it goes round again once it is through.
            self._lost_again = (notice,)

    async def _reconnect(self, notice: dict | None) -> None:
        """Sign in again where the server says (or wherever a node answers) and rejoin rooms.

        Goes round again until one connection has stayed up through the rejoin of every room.
        """
        while True:
            if self._ws is not None:
                with contextlib.suppress(Exception):
                    await self._ws.close()
            if notice is not None:
                await self._relogin_delay(notice)
                self.address = Address(notice["node"], notice["host"], notice["port"])
            else:
                await asyncio.sleep(0.2)
            self.node = None
            await self.connect()
            # Only a loss of the connection connect() just made counts from here on.
            self._lost_again = None
            for jid, view in list(self.rooms.items()):
                await self._rejoin(jid, view)
            if self._lost_again is None:
                break
            (notice,) = self._lost_again
        self.reconnects += 1
        self.events.put_nowait({"type": "reconnected", "node": self.node})

    async def _rejoin(self, jid: str, view: RoomView) -> None:
        while not self._closing:
            try:
                reply = await self.request("join", room=jid, since=view.last_id, _wait=False)
            except ChatClientError as exc:
                if not exc.retry:
                    raise
                await asyncio.sleep(0.3)
                continue
            except Disconnected:
                return  # a newer reconnect takes over
            for message in reply.get("history", []):
                view.messages[message["msg_id"]] = message
            await self._fill_gap(jid)
            return

    async def _fill_gap(self, jid: str) -> None:
        """Fetch every message after the first gap, page by page."""
        view = self.rooms.get(jid)
        if view is None:
            return
        ids = sorted(view.messages)
        after = next((a for a, b in itertools.pairwise(ids) if b != a + 1), ids[-1] if ids else 0)
        with contextlib.suppress(ChatClientError, Disconnected):
            while True:
                reply = await self.request("history", room=jid, after=after)
                messages = reply.get("messages", [])
                for message in messages:
                    view.messages[message["msg_id"]] = message
                if not messages:
                    return
                after = messages[-1]["msg_id"]

    # --- requests ---------------------------------------------------------------------------

    async def _request_on(self, ws: ClientConnection, frame: dict) -> dict:
        request_id = str(next(self._ids))
        future = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        try:
            await ws.send(json.dumps({**frame, "id": request_id}))
            async with asyncio.timeout(REPLY_TIMEOUT):
                reply = await future
        except ConnectionClosed:
            raise Disconnected("connection closed") from None
        finally:
            self._pending.pop(request_id, None)
        if reply.get("type") == "error":
            raise ChatClientError(reply["code"], reply["message"], reply.get("retry", False))
        return reply

    async def request(self, kind: str, _wait: bool = True, **fields) -> dict:
        """One request; waits for the connection first (while a reconnect is under way)."""
        if _wait:
            async with asyncio.timeout(self.give_up_after):
                await self._connected.wait()
        if self._ws is None:
            raise Disconnected("not connected")
        return await self._request_on(self._ws, {"type": kind, **fields})

    async def create(self, room: str, **options) -> dict:
        return await self.request("create", room=room, **options)

    async def join(self, room: str, history: int | None = None, password: str = "") -> dict:
        fields = {"history": history} if history is not None else {}
        if password:
            fields["password"] = password
        reply = await self.request("join", room=room, **fields)
        view = self.rooms.setdefault(reply["room"], RoomView(reply["room"]))
        for message in reply.get("history", []):
            view.messages[message["msg_id"]] = message
        return reply

    async def leave(self, room: str) -> dict:
        reply = await self.request("leave", room=room)
        self.rooms.pop(reply["room"], None)
        return reply

    async def history(self, room: str, **paging) -> dict:
        return await self.request("history", room=room, **paging)

    async def presence(self, room: str) -> dict:
        return await self.request("presence", room=room)

    async def list_rooms(self) -> list[dict]:
        return (await self.request("rooms"))["rooms"]

    async def post(self, room: str, body: str, cid: str | None = None, retry_for: float | None = None) -> dict:
        """Post and wait for the acknowledgement, retrying with the same client id while the
        service says to retry or the connection is being re-established."""
        cid = cid or uuid.uuid4().hex
        deadline = time.monotonic() + (self.give_up_after if retry_for is None else retry_for)
        while True:
            try:
                return await self.request("post", room=room, body=body, cid=cid)
            except ChatClientError as exc:
                if not exc.retry or time.monotonic() > deadline:
                    raise
            except (Disconnected, TimeoutError):
                if time.monotonic() > deadline:
                    raise
            await asyncio.sleep(0.2)

    def room_jid(self, room: str) -> str | None:
        """The full JID of a joined room given its name or JID."""
        room = room.lower()
        return next((jid for jid in self.rooms if jid == room or jid.split("@")[0] == room), None)


class Redirected(Exception):
    def __init__(self, notice: dict) -> None:
        super().__init__(notice.get("reason", "reconnect"))
        self.notice = notice
