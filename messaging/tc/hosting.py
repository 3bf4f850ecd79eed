"""The rooms a Text Conference Manager holds in memory: how they get there and how they leave.

A node serves the rooms of the home nodes it hosts (its own, and its failed peer's while it
runs in backup mode). When the service starts, and when a failover or a fallback hands it a
home node's rooms, it loads all of that home's rooms in bulk: three queries whatever the
number of rooms (rooms, members, the last messages of each), so every room answers at once
after the switch. A room not loaded that way (created behind the service's back, or unloaded
after the persistent room timeout) is loaded on its first request, batched with the other
rooms asked for meanwhile.

Taking a home's rooms bumps that home's hosting epoch in the external database (the fencing
token, ``PostgresStore.claim``) before they are read; every commit of a post checks it, so
the node that held them before can no longer store anything there. A node whose commit finds
a newer epoch drops the home's rooms (``lost``) and takes them again only once the config DB
says, on a fresh read, that they are its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from messaging.chat import bus as chat_bus
from messaging.chat.directory import Directory, Snapshot
from messaging.chat.errors import ChatError, ErrorCode
from messaging.tc.rooms import Policy, Room
from messaging.tc.store import Fence, MemoryStore, PendingPost, PostgresStore

logger = logging.getLogger(__name__)

ANNOUNCE_CHUNK = 1000  # room_loaded notices published per Redis round trip
MIN_IDLE_CHECK_SECONDS = 0.25
MAX_IDLE_CHECK_SECONDS = 60.0


class HostedRoom:
    """A loaded room and the queue of posts waiting to be stored."""

    def __init__(self, room: Room) -> None:
        self.room = room
        self.queue: asyncio.Queue[tuple[PendingPost, asyncio.Future]] = asyncio.Queue()
        self.worker: asyncio.Task | None = None
        self.lock = asyncio.Lock()  # joins and leaves of this room, one at a time
        # When the room was last seen without occupants (monotonic); None while occupied.
        self.empty_since: float | None = None if room.occupants else time.monotonic()

    def busy(self) -> bool:
        """A join, a leave or a post is under way."""
        return self.lock.locked() or not self.queue.empty() or (self.worker is not None and not self.worker.done())


class RoomHosting:
    """The rooms held in memory by one Text Conference Manager."""

    def __init__(
        self,
        node_name: str,
        store: PostgresStore | MemoryStore,
        directory: Directory,
        bus: chat_bus.Bus | None,
        policy: Policy,
    ) -> None:
        self.node_name = node_name
        self.store = store
        self.directory = directory
        self.bus = bus
        self.policy = policy
        self.rooms: dict[str, HostedRoom] = {}
        self.loaded_homes: set[str] = set()  # home nodes whose rooms were loaded in bulk
        self.epochs: dict[str, int] = {}  # home node → the hosting epoch this node claimed
        self.lost_homes: set[str] = set()  # homes whose epoch another node bumped since
        self._home_loads: dict[str, asyncio.Future] = {}
        self._wanted: dict[str, asyncio.Future] = {}  # rooms waiting for the next batched load
        self._loader: asyncio.Task | None = None

    # --- which homes -------------------------------------------------------------------------

    def homes_hosted(self, snapshot: Snapshot | None = None) -> set[str]:
        """The home nodes whose rooms this node serves now, per the directory."""
        snapshot = snapshot or self.directory.snapshot
        return {home for home, host in snapshot.host_of.items() if host == self.node_name}

    def hosts(self, jid: str, snapshot: Snapshot | None = None) -> bool:
        host = (snapshot or self.directory.snapshot).host_of_room(jid)
        return host is not None and host.name == self.node_name

    # --- loading -----------------------------------------------------------------------------

    async def get(self, jid: str) -> HostedRoom:
        """The hosted room ``jid`` (the caller checked this node hosts it), loaded if need be."""
        hosted = self.rooms.get(jid)
        if hosted is not None:
            return hosted
        home = self.directory.snapshot.home_of_room(jid)
        if home is not None and home not in self.loaded_homes:
            await self.load_homes({home})
            hosted = self.rooms.get(jid)
            if hosted is not None:
                return hosted
        return await self._load_one(jid)

    async def load_homes(self, homes: set[str]) -> None:
        """Load every room of these home nodes in bulk; one load per home even when asked
        for at once by the agent (refresh_hosting) and by requests."""
        lost = homes & self.lost_homes
        if lost:
            lost -= await self._taken_back(lost)
        if lost:
            raise ChatError(
                ErrorCode.ROOM_UNAVAILABLE,
                f"Another node took the rooms of {', '.join(sorted(lost))} from {self.node_name}; try again.",
            )
        waiting = [self._home_loads[home] for home in homes if home in self._home_loads]
        todo = {home for home in homes if home not in self.loaded_homes and home not in self._home_loads}
        if todo:
            future = asyncio.get_running_loop().create_future()
            for home in todo:
                self._home_loads[home] = future
            try:
                await self._load_in_bulk(todo)
                future.set_result(None)
            except BaseException as exc:
                future.set_exception(exc)
                future.exception()  # retrieved here; waiters re-raise it
                raise
            finally:
                for home in todo:
                    self._home_loads.pop(home, None)
        for future in waiting:
            await asyncio.shield(future)

    async def _taken_back(self, homes: set[str]) -> set[str]:
        """Of the homes lost to another node's epoch, those the config DB, read now, says this
        node hosts: the other node claimed them from a picture a step behind (its directory
        not yet refreshed after a Fallback) and has given them up or will at its next commit.
        They may be claimed again. Without a fresh read nothing is taken back."""
        try:
            snapshot = await self.directory.refresh()
        except Exception as exc:
            logger.warning("%s cannot confirm the hosting of %s: %s", self.node_name, ", ".join(sorted(homes)), exc)
            return set()
        mine = {home for home in homes if snapshot.host_of.get(home) == self.node_name}
        self.lost_homes -= mine
        return mine

    async def _load_in_bulk(self, homes: set[str]) -> None:
        started = time.monotonic()
        # Claim on a fresh read of the hosting, not the directory's last one (up to a second
        # old): claiming from a stale picture takes the rooms from the node now hosting them.
        try:
            snapshot = await self.directory.refresh()
        except Exception as exc:
            logger.warning("%s loads rooms on the last hosting it read: %s", self.node_name, exc)
            snapshot = self.directory.snapshot
        for home in sorted(homes):
            if snapshot.host_of.get(home) == self.node_name:
                epoch = await self.store.claim(home, self.node_name)
                if epoch is not None:
                    self.epochs[home] = epoch
                    logger.info("%s claimed the rooms of %s: hosting epoch %d", self.node_name, home, epoch)
        aliases = sorted({alias for home in homes for alias in snapshot.aliases_of(home)})
        rooms = (
            await self.store.load_rooms(aliases=aliases, policy=self.policy, keep=self.policy.history_max)
            if aliases
            else []
        )
        # The hosting may have moved on while the rooms were read.
        snapshot = self.directory.snapshot
        mine = {home for home in homes if snapshot.host_of.get(home) == self.node_name}
        loaded = []
        for room in rooms:
            if snapshot.home_of_room(room.jid) in mine and room.jid not in self.rooms:
                self.rooms[room.jid] = HostedRoom(room)
                loaded.append(room.jid)
        self.loaded_homes |= mine
        for home in homes - mine:
            self.epochs.pop(home, None)
        await self._announce(loaded)
        logger.info(
            "Loaded %d rooms of %s in %.3f s", len(loaded), ", ".join(sorted(mine)) or "-", time.monotonic() - started
        )

    async def _load_one(self, jid: str) -> HostedRoom:
        future = self._wanted.get(jid)
        if future is None:
            future = asyncio.get_running_loop().create_future()
            self._wanted[jid] = future
            if self._loader is None or self._loader.done():
                self._loader = asyncio.create_task(self._load_wanted(), name="tc-room-loader")
        return await asyncio.shield(future)

    async def _load_wanted(self) -> None:
        """Load the rooms asked for, all those asked for meanwhile in one go."""
        while self._wanted:
            batch, self._wanted = self._wanted, {}
            try:
                rooms = await self.store.load_rooms(jids=list(batch), policy=self.policy, keep=self.policy.history_max)
            except BaseException as exc:
                for future in batch.values():
                    if not future.done():
                        future.set_exception(exc)
                        future.exception()
                if isinstance(exc, asyncio.CancelledError):
                    raise
                continue
            found = {room.jid: room for room in rooms}
            loaded = []
            for jid, future in batch.items():
                room = found.get(jid)
                if room is None or not self.hosts(jid):
                    future.set_exception(
                        ChatError(ErrorCode.ROOM_NOT_FOUND, f"There is no room {jid}.")
                        if room is None
                        else ChatError(ErrorCode.ROOM_UNAVAILABLE, f"{jid} moved to another node; try again.")
                    )
                    future.exception()
                    continue
                hosted = self.rooms.get(jid)
                if hosted is None:
                    hosted = self.rooms[jid] = HostedRoom(room)
                    loaded.append(jid)
                future.set_result(hosted)
            await self._announce(loaded)

    async def _announce(self, jids: list[str]) -> None:
        """Tell the routers whose users are in these rooms that the rooms are here now, so
        they restate their occupants (``resync``)."""
        if self.bus is None or not jids:
            return
        for start in range(0, len(jids), ANNOUNCE_CHUNK):
            notices = [
                (chat_bus.room_channel(self.bus.prefix, jid), {"event": "room_loaded", "room": jid, "node": node})
                for jid, node in ((jid, self.node_name) for jid in jids[start : start + ANNOUNCE_CHUNK])
            ]
            try:
                await self.bus.publish_many(notices)
            except Exception as exc:  # occupants are restated on their next post anyway
                logger.warning("Could not announce %d loaded rooms: %s", len(notices), exc)
                return

    # --- the fencing token --------------------------------------------------------------------

    def fence_for(self, jid: str) -> Fence | None:
        """What a commit to ``jid`` must find in the database (None: nothing to fence, in memory)."""
        if isinstance(self.store, MemoryStore):
            return None
        home = self.directory.snapshot.home_of_room(jid)
        epoch = self.epochs.get(home)
        if epoch is None:
            message = f"{self.node_name} does not hold the rooms of {home}; try again."
            raise ChatError(ErrorCode.ROOM_UNAVAILABLE, message)
        return Fence(home, epoch, self.node_name)

    async def lost(self, home: str, reason: str) -> None:
        """Another node bumped ``home``'s epoch: drop its rooms until the config DB says otherwise."""
        logger.warning("%s lost the rooms of %s: %s", self.node_name, home, reason)
        self.lost_homes.add(home)
        self.loaded_homes.discard(home)
        self.epochs.pop(home, None)
        for jid, hosted in list(self.rooms.items()):
            if self.directory.snapshot.home_of_room(jid) == home:
                await self.unload(hosted, reason)

    # --- unloading ---------------------------------------------------------------------------

    async def release(self, snapshot: Snapshot) -> None:
        """Unload the rooms of the homes this node no longer serves; a fresh read of the hosting
        also lets it take again the homes it lost to an epoch, if they are its own."""
        self.lost_homes.clear()
        self.loaded_homes &= self.homes_hosted(snapshot)
        for home in set(self.epochs) - self.loaded_homes:
            self.epochs.pop(home, None)
        for jid, hosted in list(self.rooms.items()):
            if not self.hosts(jid, snapshot):
                await self.unload(hosted, f"{jid} moved to another node.")

    async def unload(self, hosted: HostedRoom, reason: str) -> None:
        """Forget a room; posts still queued for it are refused (nothing of them was stored)."""
        if self.rooms.get(hosted.room.jid) is hosted:
            del self.rooms[hosted.room.jid]
        if hosted.worker is not None:
            hosted.worker.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await hosted.worker
        while not hosted.queue.empty():
            _, future = hosted.queue.get_nowait()
            if not future.done():
                future.set_exception(ChatError(ErrorCode.ROOM_UNAVAILABLE, f"{reason} Nothing was stored; try again."))

    async def stop(self, reason: str) -> None:
        if self._loader is not None:
            self._loader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._loader
        for future in self._wanted.values():
            if not future.done():
                future.set_exception(ChatError(ErrorCode.ROOM_UNAVAILABLE, reason))
                future.exception()
        self._wanted.clear()
        for hosted in list(self.rooms.values()):
            await self.unload(hosted, reason)
        self.rooms.clear()
        self.loaded_homes.clear()
        self.epochs.clear()

    async def unload_idle_rooms(self) -> None:
        """Unload persistent rooms left without occupants longer than the "Timeout value for
        persistent chat rooms"; they stay in the database and load again on the next request.
        Runs for the life of the service when the timeout is not 0 (never)."""
        timeout = self.policy.persistent_room_timeout * 60
        if timeout <= 0:
            return
        interval = min(MAX_IDLE_CHECK_SECONDS, max(MIN_IDLE_CHECK_SECONDS, timeout / 4))
        while True:
            await asyncio.sleep(interval)
            now = time.monotonic()
            unloaded = []
            for jid, hosted in list(self.rooms.items()):
                room = hosted.room
                if not room.persistent or room.occupants:
                    hosted.empty_since = None
                elif hosted.empty_since is None:
                    hosted.empty_since = now
                elif now - hosted.empty_since >= timeout and not hosted.busy():
                    del self.rooms[jid]  # nothing queued, no await: no request can slip in between
                    unloaded.append(jid)
            if unloaded:
                logger.info("Unloaded %d persistent rooms left empty for %s minutes", len(unloaded), timeout / 60)
