"""The bus between nodes: Redis pub/sub.

Channels (all under a prefix, so test runs and deployments sharing a Redis never cross):

- ``<prefix>:tc:<node>``: requests to the Text Conference Manager of ``node``;
- ``<prefix>:reply:<id>``: replies to one XCP Router (or client of the bus);
- ``<prefix>:room:<room JID>``: what a room's host broadcasts to the routers whose users
  are in the room (messages, presence, "room loaded");
- ``<prefix>:users-moved``: a node's Server Recovery Manager saw a transition of its redundancy
  group, so users may be served by another node now: every XCP Router checks its users at once;
- ``<prefix>:router:<node>``: events for one user signed in on that node's XCP Router (a private
  message from an occupant of a room, a room invitation), as ``{"to": user JID, "event": …}``.

Pub/sub delivers at most once; nothing here is needed to keep an acknowledged message, which
is in the database before anyone publishes it. Readers fill gaps from the room's history.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as redis
from django.conf import settings

logger = logging.getLogger(__name__)

Handler = Callable[[dict], None]
Responder = Callable[[dict], Awaitable[dict]]
DEFAULT_PREFIX = "imp-chat"


def bus_prefix() -> str:
    return getattr(settings, "CHAT_BUS_PREFIX", None) or DEFAULT_PREFIX


def tc_channel(prefix: str, node_name: str) -> str:
    return f"{prefix}:tc:{node_name}"


def room_channel(prefix: str, room_jid: str) -> str:
    return f"{prefix}:room:{room_jid}"


def users_moved_channel(prefix: str) -> str:
    return f"{prefix}:users-moved"


def router_channel(prefix: str, node_name: str) -> str:
    return f"{prefix}:router:{node_name}"


class BusTimeout(Exception):
    """No reply within the time allowed (the addressee is down or overloaded)."""


class NoListener(Exception):
    """Nobody subscribes to the channel: the addressed service is not running."""


class Bus:
    """One Redis connection for publishing and one pub/sub reader, on the caller's loop."""

    def __init__(self, url: str | None = None, prefix: str | None = None) -> None:
        self.url = url or settings.REDIS_URL
        self.prefix = prefix or bus_prefix()
        self.reply_channel = f"{self.prefix}:reply:{uuid.uuid4().hex}"
        self._handlers: dict[str, Handler] = {}
        self._pending: dict[str, asyncio.Future] = {}
        self._tasks: set[asyncio.Task] = set()
        self._redis: redis.Redis | None = None
        self._pubsub = None
        self._reader: asyncio.Task | None = None

    async def start(self) -> None:
        self._redis = redis.from_url(self.url, decode_responses=True)
        await self._redis.ping()
        self._pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
        await self._pubsub.subscribe(self.reply_channel)
        self._handlers[self.reply_channel] = self._on_reply
        self._reader = asyncio.create_task(self._read(), name="bus-reader")

    async def stop(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader
            self._reader = None
        for task in list(self._tasks):
            task.cancel()
        for future in self._pending.values():
            if not future.done():
                future.set_exception(BusTimeout("the bus stopped"))
        self._pending.clear()
        if self._pubsub is not None:
            with contextlib.suppress(Exception):
                await self._pubsub.aclose()
            self._pubsub = None
        if self._redis is not None:
            with contextlib.suppress(Exception):
                await self._redis.aclose()
            self._redis = None

    async def subscribe(self, channel: str, handler: Handler) -> None:
        """Call ``handler(payload)`` (synchronously, in order) for each message on ``channel``."""
        self._handlers[channel] = handler
        await self._pubsub.subscribe(channel)

    async def unsubscribe(self, channel: str) -> None:
        self._handlers.pop(channel, None)
        with contextlib.suppress(Exception):
            await self._pubsub.unsubscribe(channel)

    async def serve(self, channel: str, responder: Responder) -> None:
        """Answer requests on ``channel``: each runs as its own task; its reply goes back."""

        def on_request(payload: dict) -> None:
            task = asyncio.create_task(self._answer(responder, payload))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

        await self.subscribe(channel, on_request)

    async def _answer(self, responder: Responder, payload: dict) -> None:
        try:
            answer = await responder(payload)
        except Exception:
            logger.exception("Request on the chat bus failed")
            answer = {"ok": False, "code": "internal-error", "message": "The node failed to handle the request."}
        if payload.get("reply_to"):
            await self.publish(payload["reply_to"], {**answer, "rid": payload.get("rid")})

    async def publish(self, channel: str, payload: dict) -> int:
        """Publish; return how many subscribers received it."""
        return await self._redis.publish(channel, json.dumps(payload, default=str))

    async def publish_many(self, messages: list[tuple[str, dict]]) -> None:
        """Publish (channel, payload) pairs in one round trip."""
        async with self._redis.pipeline(transaction=False) as pipe:
            for channel, payload in messages:
                pipe.publish(channel, json.dumps(payload, default=str))
            await pipe.execute()

    async def set_occupants(self, room_jid: str, count: int) -> None:
        """Record how many users are in a room now, for the console's room report."""
        key = f"{self.prefix}:occupants"
        if count:
            await self._redis.hset(key, room_jid, count)
        else:
            await self._redis.hdel(key, room_jid)

    async def request(self, channel: str, payload: dict[str, Any], timeout: float) -> dict:
        """Send a request and wait for its reply."""
        rid = uuid.uuid4().hex
        future = asyncio.get_running_loop().create_future()
        self._pending[rid] = future
        try:
            receivers = await self.publish(channel, {**payload, "rid": rid, "reply_to": self.reply_channel})
            if receivers == 0:
                raise NoListener(channel)
            async with asyncio.timeout(timeout):
                return await future
        except TimeoutError:
            raise BusTimeout(channel) from None
        finally:
            self._pending.pop(rid, None)

    def _on_reply(self, payload: dict) -> None:
        future = self._pending.get(payload.get("rid"))
        if future is not None and not future.done():
            future.set_result(payload)

    async def _read(self) -> None:
        while True:
            try:
                message = await self._pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Redis went away: redis-py reconnects and resubscribes
                logger.warning("Chat bus read failed (%s); retrying", exc)
                await asyncio.sleep(0.5)
                continue
            if message is None or message.get("type") != "message":
                continue
            handler = self._handlers.get(message["channel"])
            if handler is None:
                continue
            try:
                handler(json.loads(message["data"]))
            except Exception:
                logger.exception("Chat bus handler for %s failed", message["channel"])
