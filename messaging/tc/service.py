"""Cisco XCP Text Conference Manager (TC): hosts the rooms of a node, and of its failed peer
while running in backup mode, and stores them in the node's external database.

Requests reach it from the local XCP Router directly and from the routers of other nodes
(other clusters too) over the bus; both take the same path, ``handle(request)``. A request
is one of the dataclasses of ``messaging.tc.requests``, and so is its answer: this module knows
rooms, not the client protocol.

Rooms are held in memory (``hosting``): loaded in bulk when the service starts and when a
failover or fallback hands the node a home node's rooms, with each room's last messages, so
joins and history requests are answered from memory. Posts to a room are queued and stored
in batches, one transaction per batch; a post is answered (and so acknowledged to its
sender) only after its batch is committed. While the database is away, posts are refused
with ``database-unavailable`` until the heartbeat, every "database connection heartbeat
interval", finds it back.

Fencing (docs/operations.md): while the node agent's lease has run out (the node lost touch
with the config DB) the service refuses every request with the retryable
``room-unavailable``, and stays so until the agent has re-read the room hosting; and each
commit of posts carries the home node's hosting epoch (``RoomHosting.fence_for``), so a post
to rooms another node has taken is never stored nor acknowledged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import psycopg
import psycopg_pool
from asgiref.sync import sync_to_async
from django.db import close_old_connections

from messaging.chat import bus as chat_bus
from messaging.chat.directory import Directory
from messaging.chat.errors import ChatError, ErrorCode
from messaging.tc import requests
from messaging.tc.administration import RoomAdministration
from messaging.tc.hosting import HostedRoom, RoomHosting
from messaging.tc.occupants import OccupantRequests
from messaging.tc.rooms import (
    MODERATOR_AFFILIATIONS,
    Affiliation,
    Occupant,
    Policy,
    RecentHistory,
    Role,
    Room,
    RoomType,
    bare_room_jid,
    nick_for,
)
from messaging.tc.stanzas import ChatMessage
from messaging.tc.store import (
    ArchiveQuery,
    DatabaseUnavailable,
    Fenced,
    MemoryStore,
    PendingPost,
    PostgresStore,
)
from topology.agent.base import NodeService, ServiceStartError
from topology.agent.lease import Lease
from topology.agent.metrics import COMMIT_SECONDS, MESSAGES_COMMITTED
from topology.models import Node

logger = logging.getLogger(__name__)

MAX_BATCH = 200
# The posts of a batch are answered after their broadcast; a bus that went silent (Redis cut
# off) must not hold the acknowledgements of what is already committed.
BROADCAST_TIMEOUT = 1.0
ROOM_LIST_LIMIT = 200
DATABASE_ERRORS = (psycopg.OperationalError, psycopg.InterfaceError, psycopg_pool.PoolTimeout)
# Once a request found the database lost, it is tried this often until it answers: requests
# are refused meanwhile, so waiting for the next connection heartbeat (300 s by default)
# would refuse them for minutes after a blip the pool got over at once.
DATABASE_PROBE_SECONDS = 1.0


@dataclass(frozen=True)
class TCConfig:
    """What the service reads from the config DB when it starts."""

    policy: Policy
    conninfo: dict | None
    database_label: str


def read_config(node: Node) -> TCConfig:
    from messaging.database_assignment import database_for_node
    from messaging.models import ChatSettings

    close_old_connections()
    try:
        node = Node.objects.select_related("cluster").get(pk=node.pk)
        settings = ChatSettings.for_node(node)
        policy = Policy.from_settings(settings)
        database = database_for_node(node)
        if database is None:
            return TCConfig(policy, None, "")
        return TCConfig(policy, database.postgres_conninfo(), str(database))
    finally:
        close_old_connections()


class TextConferenceManager(RoomAdministration, OccupantRequests, NodeService):
    """The node's text conference service."""

    name = "Cisco XCP Text Conference Manager"

    def __init__(self, node: Node, router, lease: Lease | None = None) -> None:
        self.node = node
        self.router = router
        self.lease = lease
        self.fenced_reason = ""  # why the node stopped serving, until the agent re-reads the hosting
        self.config: TCConfig | None = None
        self.store: PostgresStore | MemoryStore | None = None
        self.bus: chat_bus.Bus | None = None
        self.directory = Directory()
        self.hosting: RoomHosting | None = None
        self.database_ok = False
        self.last_database_error = ""
        self._database_lost_event = asyncio.Event()
        self._running = False
        self._tasks: list[asyncio.Task] = []
        self._background: asyncio.Task | None = None

    @property
    def rooms(self) -> dict[str, HostedRoom]:
        """The rooms held in memory now, by room JID."""
        return self.hosting.rooms if self.hosting is not None else {}

    # --- life cycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        self.config = await sync_to_async(read_config, thread_sensitive=False)(self.node)
        policy = self.config.policy
        if policy.persistent_chat_enabled:
            if self.config.conninfo is None:
                raise ServiceStartError(
                    f"Persistent chat is enabled but no external database is assigned to {self.node}; "
                    "assign one under Messaging > Group Chat and Persistent Chat."
                )
            self.store = PostgresStore(self.config.conninfo, policy.db_connections)
            try:
                await self.store.open()
                problems = await self.store.verify_schema()
                if not problems:
                    await self.store.ensure_fencing()
            except (psycopg.Error, psycopg_pool.PoolTimeout, ChatError) as exc:
                await self.store.close()
                raise ServiceStartError(
                    f"Persistent chat is enabled but the external database {self.config.database_label} "
                    f"is unreachable: {_first_line(exc)}",
                    database_failure=True,
                ) from exc
            if problems:
                await self.store.close()
                raise ServiceStartError(
                    f"The external database {self.config.database_label} failed schema verification: "
                    + " ".join(problems),
                    database_failure=True,
                )
        else:
            self.store = MemoryStore()
        self.database_ok = True
        await self.directory.start()
        self.bus = chat_bus.Bus()
        await self.bus.start()
        self.hosting = RoomHosting(self.node.name, self.store, self.directory, self.bus, policy)
        try:
            await self.hosting.load_homes(self.hosting.homes_hosted())
        except DATABASE_ERRORS as exc:
            await self.stop()
            raise ServiceStartError(
                f"The Text Conference Manager could not load its rooms from the external database "
                f"{self.config.database_label}: {_first_line(exc)}"
            ) from exc
        await self.bus.serve(chat_bus.tc_channel(self.bus.prefix, self.node.name), self._answer_bus)
        self._tasks = [
            asyncio.create_task(self._heartbeat(), name="tc-db-heartbeat"),
            asyncio.create_task(self.hosting.unload_idle_rooms(), name="tc-room-timeout"),
        ]
        self._running = True
        if self.router is not None:
            self.router.attach_tc(self)

    async def stop(self) -> None:
        self._running = False
        if self.router is not None:
            self.router.detach_tc(self)
        for task in self._tasks:
            task.cancel()
        if self.hosting is not None:
            await self.hosting.stop("The Text Conference Manager stopped.")
        if self.bus is not None:
            await self.bus.stop()
            self.bus = None
        await self.directory.stop()
        if self.store is not None:
            await self.store.close()
            self.store = None

    def is_running(self) -> bool:
        return self._running

    # --- fencing -----------------------------------------------------------------------------

    def serving(self) -> bool:
        """Whether the node may serve its rooms now: its lease is held and it is not fenced."""
        return not self.fenced_reason and (self.lease is None or self.lease.held())

    def fence(self, reason: str) -> None:
        """The agent's lease ran out: refuse everything until ``unfence`` (after a hosting re-read)."""
        if not self.fenced_reason:
            logger.warning("%s stops serving its rooms: %s", self.node, reason)
        self.fenced_reason = reason

    def unfence(self) -> None:
        if self.fenced_reason:
            logger.warning("%s serves its rooms again", self.node)
        self.fenced_reason = ""

    def _check_serving(self) -> None:
        if not self.serving():
            reason = self.fenced_reason or f"{self.node} lost touch with the config DB (its lease ran out)"
            raise ChatError(
                ErrorCode.ROOM_UNAVAILABLE,
                f"{reason}; it stopped serving its rooms and its backup node takes them over; try again.",
            )

    async def refresh_hosting(self) -> None:
        """Re-read which home nodes' rooms this node serves (after a failover or a fallback):
        unload the rooms it gave up, and load in bulk every room of the home nodes it gained.

        Raises when the gained rooms cannot be read from the database, so the SRM does not
        count them as loaded (a node that cannot reach its peer's rooms says so)."""
        if self.hosting is None:  # not started: it reads the hosting when it starts
            return
        snapshot = await self.directory.refresh()
        await self.hosting.release(snapshot)
        gained = self.hosting.homes_hosted(snapshot) - self.hosting.loaded_homes
        if gained:
            await self.hosting.load_homes(gained)
            self.database_ok = True

    def administrators_of(self, cluster_pk: int) -> frozenset[str] | None:
        """JIDs of the cluster's group chat system administrators (Messaging > Group Chat
        System Administrators, reference 4.5), or None when "Enable Group Chat System
        Administrators" is off there. Read from the directory, so a change applies within
        its refresh interval, without a restart."""
        return self.directory.snapshot.administrators.get(cluster_pk)

    # --- requests ----------------------------------------------------------------------------

    async def _answer_bus(self, data: dict) -> dict:
        """A request from another node's router, as it travels on the bus."""
        try:
            request = requests.request_from_wire(data)
        except ChatError as exc:
            return requests.error_to_wire(exc)
        try:
            return (await self.handle(request)).to_wire()
        except ChatError as exc:
            return requests.error_to_wire(exc)

    async def handle(self, request: requests.Request) -> requests.Answer:
        """Carry out one request; a refusal is raised as a ChatError."""
        try:
            if not self._running:
                raise ChatError(ErrorCode.ROOM_UNAVAILABLE, f"The Text Conference Manager of {self.node} is stopped.")
            self._check_serving()
            handler = getattr(self, f"_op_{request.op}", None)
            if handler is None:
                raise ChatError(ErrorCode.BAD_REQUEST, f"Unknown request {request.op!r}.")
            return await handler(request)
        except DATABASE_ERRORS as exc:
            self._database_lost(exc)
            raise DatabaseUnavailable(_first_line(exc)) from None

    async def _op_create(self, request: requests.CreateRoom) -> requests.Created:
        user = request.user
        snapshot = self.directory.snapshot
        jid = request.room
        home = snapshot.home_of_room(jid)
        self._check_hosted(jid)
        persistent = request.persistent
        self._check_database()
        aliases = snapshot.aliases_of(home)
        total, persistent_count = await self.store.count_rooms(aliases)
        policy = self.config.policy
        policy.check_create(user, persistent, total, persistent_count, self.administrators_of(self.node.cluster_id))
        config = policy.new_room_config(jid.split("@")[0], persistent, request.members_only, request.max_occupants)
        room = Room(
            jid=jid,
            room_type=RoomType.PERSISTENT if persistent else RoomType.AD_HOC,
            creator=user,
            config=config,
            members={user: Affiliation.OWNER},
            subject=request.subject,
            history=RecentHistory(jid, policy.history_max),
        )
        for member in request.members:
            room.members.setdefault(member, Affiliation.MEMBER)
        await self.store.create_room(room)
        self.rooms[jid] = HostedRoom(room)
        return requests.Created(room=jid, persistent=persistent, members_only=config.members_only)

    async def _op_join(self, request: requests.Join) -> requests.Joined:
        hosted = await self._room(request.room)
        room, user, policy = hosted.room, request.user, self.config.policy
        nick = request.nick or nick_for(user)
        async with hosted.lock:
            new = user not in room.occupants
            room.check_join(user, policy)
            if new:
                room.check_password(request.password)
            room.check_nick(user, nick)
            if new and policy.users_add_themselves_as_members and not room.is_member(user) and room.persistent:
                await self.store.add_member(room, user, nick)
                room.members[user] = Affiliation.MEMBER
                if nick != nick_for(user):
                    room.nicks[user] = nick
            if new:
                room.add_occupant(user, nick, request.router)
            else:  # joined again (another resource, or a rejoin): the visit and its role go on
                room.occupants[user].nick, room.occupants[user].router = nick, request.router
            if new and policy.archive_joins_and_exits:
                await self.store.log_presence(user, room.nick_jid(nick), "E")
        if request.since is not None:
            history = await self._history(room, None, request.since, policy.history_max)
        else:
            history = await self._history(room, None, None, policy.history_count(request.history))
        if new:
            await self._publish_occupants(room)
            await self._broadcast(room.jid, room.presence_event(user, nick, "joined"))
        return requests.Joined(
            room=room.jid,
            subject=room.subject,
            subject_nick=room.subject_nick,
            persistent=room.persistent,
            members_only=room.config.members_only,
            occupants=tuple(sorted(room.occupants)),
            roster=tuple(
                {"user": o.jid, "nick": o.nick, "affiliation": str(room.affiliation(o.jid)), "role": str(o.role)}
                for o in room.occupants.values()
            ),
            affiliation=str(room.affiliation(user)),
            role=str(room.role(user)),
            last_msg_id=room.known_next_msg_id - 1,
            history=tuple(message.as_event() for message in history),
        )

    async def _op_leave(self, request: requests.Leave) -> requests.Left:
        hosted = await self._room(request.room)
        room, user = hosted.room, request.user
        async with hosted.lock:
            occupant = await self._remove_occupant(hosted, user)
        if occupant is not None:
            await self._publish_occupants(room)
            await self._broadcast(room.jid, room.presence_event(user, occupant.nick, "left"))
        return requests.Left(room=room.jid)

    async def _remove_occupant(self, hosted: HostedRoom, user: str) -> Occupant | None:
        """Take ``user`` out of the room (the caller holds the room's lock); an ad hoc room ends
        when its last occupant leaves."""
        room = hosted.room
        occupant = room.occupants.pop(user, None)
        if occupant is None:
            return None
        if self.config.policy.archive_joins_and_exits:
            await self.store.log_presence(user, room.nick_jid(occupant.nick), "L")
        if not room.occupants and not room.persistent:
            await self.store.destroy_room(room)
            self.rooms.pop(room.jid, None)
            if hosted.worker is not None:
                hosted.worker.cancel()
        elif not room.occupants:
            hosted.empty_since = time.monotonic()
        return occupant

    async def _op_resync(self, request: requests.Resync) -> requests.Resynced:
        """A router restates which of its users are in a room (after the room moved here), with the
        role each had there: their visit goes on, and so does the role (XEP-0045 §5.1)."""
        hosted = await self._room(request.room)
        room = hosted.room
        for jid, nick, *role in request.occupants:
            occupant = room.occupants.get(jid) or room.add_occupant(jid, nick, request.router)
            with contextlib.suppress(ValueError, IndexError):
                occupant.role = _restated_role(room, jid, Role(role[0]))
        await self._publish_occupants(hosted.room)
        return requests.Resynced(room=hosted.room.jid)

    async def _op_post(self, request: requests.Post) -> requests.Posted:
        hosted = await self._room(request.room)
        room, user = hosted.room, request.user
        self._vouched_occupant(room, request.user, request.joined, request.nick, request.router, request.role)
        if room.role(user) == Role.VISITOR:
            raise ChatError(
                ErrorCode.FORBIDDEN,
                f"Visitors may not send messages to everyone in {room.jid}; a moderator can give you voice.",
            )
        self._check_database()
        post = PendingPost(user, room.occupants[user].nick, request.body, request.cid)
        future = asyncio.get_running_loop().create_future()
        hosted.queue.put_nowait((post, future))
        if hosted.worker is None or hosted.worker.done():
            hosted.worker = asyncio.create_task(self._store_posts(hosted), name=f"tc-posts-{room.jid}")
        message, new = await future
        return requests.Posted(
            room=room.jid, msg_id=message.msg_id, cid=message.cid, message=message.as_event(), new=new
        )

    def _vouched_occupant(self, room: Room, user: str, joined: bool, nick: str, router: str, role: str = "") -> None:
        """Refuse a user not in the room, unless the user's router vouches for them (the room
        moved here and the occupant list is being rebuilt): then they are in, with the role of
        their visit as their router heard it last (as its restatement would say), so a request
        that arrives before the restatement is judged as the one after it."""
        if user in room.occupants:
            return
        if not joined:
            raise ChatError(ErrorCode.NOT_IN_ROOM, f"Join {room.jid} before posting to it.")
        room.check_join(user, self.config.policy)
        occupant = room.add_occupant(user, nick or nick_for(user), router)
        if role:
            with contextlib.suppress(ValueError):
                occupant.role = _restated_role(room, user, Role(role))

    async def _op_history(self, request: requests.History) -> requests.HistoryPage:
        hosted = await self._room(request.room)
        room = hosted.room
        if room.config.members_only and not room.is_member(request.user):
            raise ChatError(ErrorCode.MEMBERS_ONLY, f"The history of {room.jid} is for its members only.")
        limit = self.config.policy.page_size(request.limit)
        messages = await self._history(room, request.before, request.after, limit)
        return requests.HistoryPage(room=room.jid, messages=tuple(message.as_event() for message in messages))

    async def _op_info(self, request: requests.Info) -> requests.RoomInfo:
        """What XEP-0030 disco#info says of a room."""
        hosted = await self._room(request.room)
        room = hosted.room
        return requests.RoomInfo(
            room=room.jid,
            name=room.config.name,
            description=room.config.description,
            subject=room.subject,
            persistent=room.persistent,
            members_only=room.config.members_only,
            public=room.config.public,
            max_occupants=min(room.config.max_occupants, self.config.policy.max_users_per_room),
            occupants=len(room.occupants),
            affiliation=str(room.affiliation(request.user)),
            reserved_nick=room.reserved_nick(request.user),
            moderated=room.config.moderated,
            password_protected=room.config.password_protected,
        )

    async def _op_archive(self, request: requests.Archive) -> requests.ArchivePage:
        """An archive query (XEP-0313); ``complete`` says whether the page reaches the end."""
        hosted = await self._room(request.room)
        room = hosted.room
        if room.config.members_only and not room.is_member(request.user):
            raise ChatError(ErrorCode.MEMBERS_ONLY, f"The archive of {room.jid} is for its members only.")
        self._check_database()
        bounds = {}
        for name, stanza_id in (("after", request.after_id), ("before", request.before_id)):
            if stanza_id is None:
                continue
            held = room.history.find(stanza_id)
            msg_id = held.msg_id if held is not None else await self.store.locate(room.jid, stanza_id)
            if msg_id is None:
                raise ChatError(ErrorCode.MESSAGE_NOT_FOUND, f"{room.jid} has no message with the id {stanza_id}.")
            bounds[name] = msg_id
        query = ArchiveQuery(
            after=bounds.get("after"),
            before=bounds.get("before"),
            start=_utc(request.start),
            end=_utc(request.end),
            last=request.last,
        )
        limit = self.config.policy.page_size(request.limit)
        messages = await self.store.archive(room.jid, query, limit + 1)
        complete = len(messages) <= limit
        if not complete:
            messages = messages[1:] if query.last else messages[:limit]
        return requests.ArchivePage(room=room.jid, messages=tuple(m.as_event() for m in messages), complete=complete)

    async def _op_presence(self, request: requests.Presence) -> requests.Occupants:
        hosted = await self._room(request.room)
        occupants = hosted.room.occupants.values()
        return requests.Occupants(
            room=hosted.room.jid, occupants=tuple({"user": o.jid, "nick": o.nick} for o in occupants)
        )

    async def _op_rooms(self, request: requests.ListRooms) -> requests.RoomList:
        self._check_database()
        aliases = self.directory.snapshot.aliases_of(request.home or self.node.name)
        return requests.RoomList(rooms=tuple(await self.store.list_rooms(aliases, ROOM_LIST_LIMIT)))

    # --- rooms ---------------------------------------------------------------------------------

    def _check_hosted(self, jid: str) -> None:
        host = self.directory.snapshot.host_of_room(jid)
        if self.directory.snapshot.home_of_room(jid) is None:
            raise ChatError(ErrorCode.ROOM_NOT_FOUND, f"No node answers to the alias of {jid}.")
        if host is None or host.name != self.node.name:
            raise ChatError(ErrorCode.ROOM_UNAVAILABLE, f"{self.node} does not host {jid} now; try again.")

    def _check_database(self) -> None:
        if not self.database_ok:
            raise DatabaseUnavailable(self.last_database_error or "connection lost")

    async def _room(self, jid: str) -> HostedRoom:
        jid = bare_room_jid(jid, "invalid")
        hosted = self.rooms.get(jid)
        if hosted is not None:
            return hosted
        self._check_hosted(jid)
        self._check_database()
        return await self.hosting.get(jid)

    async def _history(self, room: Room, before: int | None, after: int | None, limit: int) -> list[ChatMessage]:
        """Up to ``limit`` messages, oldest first: from memory when it holds them all."""
        if limit <= 0:
            return []
        held = room.history.after(after, limit) if after is not None else room.history.last(limit, before)
        if held is not None:
            return held
        return await self.store.history(room.jid, before, after, limit)

    async def _store_posts(self, hosted: HostedRoom) -> None:
        """Store queued posts in batches; answer each post after its batch is committed."""
        room = hosted.room
        while not hosted.queue.empty():
            batch = [hosted.queue.get_nowait()]
            while len(batch) < MAX_BATCH and not hosted.queue.empty():
                batch.append(hosted.queue.get_nowait())
            try:
                self._check_database()
                self._check_serving()
                started = time.perf_counter()
                results = await self.store.store_posts(
                    room,
                    [post for post, _ in batch],
                    self.config.policy.archive_room_messages,
                    self.hosting.fence_for(room.jid),
                )
                COMMIT_SECONDS.labels(self.node.name).observe(time.perf_counter() - started)
                MESSAGES_COMMITTED.labels(self.node.name).inc(sum(1 for _, new in results if new))
            except asyncio.CancelledError:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(
                            ChatError(ErrorCode.ROOM_UNAVAILABLE, f"{room.jid} moved; nothing was stored; try again.")
                        )
                raise
            except Exception as exc:
                if isinstance(exc, Fenced):
                    self._lost_to(exc)
                if isinstance(exc, DATABASE_ERRORS):
                    self._database_lost(exc)
                    exc = DatabaseUnavailable(_first_line(exc))
                elif not isinstance(exc, ChatError):
                    logger.exception("Storing posts to %s failed", room.jid)
                    exc = ChatError(ErrorCode.INTERNAL, "The message could not be stored; try again.")
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            await self._broadcast(room.jid, *({"event": "message", **m.as_event()} for m, new in results if new))
            for (message, new), (_, future) in zip(results, batch, strict=True):
                if not future.done():
                    future.set_result((message, new))

    async def _publish_occupants(self, room: Room) -> None:
        if self.bus is None:
            return
        try:
            await self.bus.set_occupants(room.jid, len(room.occupants))
        except Exception as exc:
            logger.warning("Could not publish the occupants of %s: %s", room.jid, exc)

    async def _broadcast(self, jid: str, *events: dict) -> None:
        """Publish a room's events, in order, in one round trip to the bus (a batch of posts is
        one publish however many it holds)."""
        if self.bus is None or not events:
            return
        channel = chat_bus.room_channel(self.bus.prefix, jid)
        try:
            async with asyncio.timeout(BROADCAST_TIMEOUT):
                if len(events) == 1:
                    await self.bus.publish(channel, events[0])
                else:
                    await self.bus.publish_many([(channel, event) for event in events])
        except Exception as exc:  # stored already; readers catch up from the history
            logger.warning("Could not broadcast to %s: %s", jid, exc)

    # --- fenced writes ----------------------------------------------------------------------

    async def _fenced(self, write):
        """Await a write made under the room's hosting epoch; when another node took the rooms
        meanwhile (``Fenced``, nothing stored), drop them, as a refused commit of posts does."""
        try:
            return await write
        except Fenced as exc:
            self._lost_to(exc)
            raise

    def _lost_to(self, exc: Fenced) -> None:
        # Dropping the rooms cancels the room's workers: do it from a task of its own.
        lost = self.hosting.lost(exc.fence.home, exc.message)
        self._background = asyncio.create_task(lost, name=f"tc-lost-{exc.fence.home}")

    # --- database health -------------------------------------------------------------------

    def _database_lost(self, exc: Exception) -> None:
        if self.database_ok:
            logger.error("Persistent chat database lost on %s: %s", self.node, _first_line(exc))
        self.database_ok = False
        self.last_database_error = _first_line(exc)
        self._database_lost_event.set()

    async def _heartbeat(self) -> None:
        """Exercise the connections every database connection heartbeat interval (the
        product's setting); while the database is lost, every ``DATABASE_PROBE_SECONDS``."""
        interval = self.config.policy.db_heartbeat_interval
        while True:
            if self.database_ok:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._database_lost_event.wait(), interval)
            else:
                await asyncio.sleep(DATABASE_PROBE_SECONDS)
            self._database_lost_event.clear()
            try:
                await self.store.heartbeat()
            except Exception as exc:
                self._database_lost(exc)
                continue
            if not self.database_ok:
                logger.warning("Persistent chat database back on %s", self.node)
            self.database_ok = True


def _restated_role(room: Room, jid: str, role: Role) -> Role:
    """A role a router restates, as this host lets it stand: owners and admins always moderate,
    and ``none`` is no role for someone in the room."""
    if role == Role.NONE or room.affiliation(jid) in MODERATOR_AFFILIATIONS:
        return room.default_role(jid)
    return role


def _utc(value: str | None) -> datetime | None:
    """An ISO 8601 time as the naive UTC the tc_* TIMESTAMP columns hold."""
    if not value:
        return None
    try:
        stamp = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ChatError(ErrorCode.BAD_REQUEST, f"{value!r} is not an ISO 8601 time.") from None
    return stamp.astimezone(UTC).replace(tzinfo=None) if stamp.tzinfo else stamp


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else exc.__class__.__name__


__all__ = ["TextConferenceManager", "bare_room_jid"]
