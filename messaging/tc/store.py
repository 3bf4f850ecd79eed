"""Where a Text Conference Manager keeps rooms: the ``tc_*`` tables of the external database
(``PostgresStore``), or memory when persistent chat is off and no database is assigned
(``MemoryStore``: ad hoc rooms only, gone when the service stops, as in the product).

Every write that backs an acknowledgement is committed before the method returns.
"""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass
from datetime import UTC, datetime

import psycopg
from psycopg_pool import AsyncConnectionPool

from messaging.chat.errors import ChatError, ErrorCode
from messaging.tc import schema
from messaging.tc.rooms import (
    RECENT_POSTS_KEPT,
    Affiliation,
    Policy,
    RecentHistory,
    Role,
    Room,
    RoomType,
    nick_for,
)
from messaging.tc.stanzas import (
    STANZA_CID_PATTERN,
    STANZA_SENDER_PATTERN,
    ChatMessage,
    RoomConfig,
    stamp_of_stanza_id,
    stanza_id_for,
    subject_nick,
    subject_stanza,
    unescape_attribute,
)

logger = logging.getLogger(__name__)

ARCHIVE_ID_BLOCK = 100  # ids reserved from xcp_sequence at a time (the product's own step)
VARCHAR_LIMIT = 4000
KNOWN_AFFILIATIONS = {str(value) for value in Affiliation}
GETCONN_TIMEOUT = 5.0
FENCING_SCHEMA_LOCK = 0x74635F66656E6365  # "tc_fence": pg_advisory_xact_lock key of ensure_fencing
# A commit's transaction holds the hosting epoch's share lock, which the next host's claim
# waits for: if the committing node is cut off mid-transaction, the database must end its
# session within seconds, not when TCP notices (hours), so the take-over goes on. Idle in
# the transaction: the timeout; waiting for the rest of a pipeline: the server's keepalives
# (a probe after 2 s of silence, then every second, dead after 3 unanswered).
SESSION_OPTIONS = (
    "-c idle_in_transaction_session_timeout=2000 -c tcp_keepalives_idle=2 "
    "-c tcp_keepalives_interval=1 -c tcp_keepalives_count=3 -c tcp_user_timeout=5000"
)

# Loading rooms in bulk: the rooms, their members, and the last N messages of each (one index
# range scan per room, newest first: the key of tc_messages is room_jid, msg_id). Each query
# selects its rooms by the same condition on tc_rooms r, so the three go to the database in
# one round trip. The condition comes from ROOM_SELECTIONS, never from input.
LOAD_ROOMS_SQL = (
    "SELECT r.room_jid, r.creator_jid, r.type, r.config, r.next_msg_id, r.subject, r.spacket FROM tc_rooms r WHERE {}"
)
LOAD_MEMBERS_SQL = (
    "SELECT u.room_jid, u.real_jid, u.affiliation, u.nick_jid FROM tc_rooms r "
    "JOIN tc_users u ON u.room_jid = r.room_jid WHERE {}"
)
LOAD_MESSAGES_SQL = (
    "SELECT r.room_jid, m.msg_id, m.stamp, m.msg FROM tc_rooms r CROSS JOIN LATERAL "
    "(SELECT msg_id, stamp, msg FROM tc_messages WHERE tc_messages.room_jid = r.room_jid "
    "ORDER BY msg_id DESC LIMIT %s) AS m WHERE {}"
)
_ARCHIVE_SQL = (
    "SELECT msg_id, stamp, msg FROM tc_messages WHERE room_jid = %(room)s "
    "AND (%(after)s::bigint IS NULL OR msg_id > %(after)s) AND (%(before)s::bigint IS NULL OR msg_id < %(before)s) "
    "AND (%(start)s::timestamp IS NULL OR stamp >= %(start)s) AND (%(end)s::timestamp IS NULL OR stamp <= %(end)s) "
)
ARCHIVE_SQL_FIRST = _ARCHIVE_SQL + "ORDER BY msg_id LIMIT %(limit)s"
ARCHIVE_SQL_LAST = _ARCHIVE_SQL + "ORDER BY msg_id DESC LIMIT %(limit)s"
ROOM_SELECTIONS = {
    "aliases": "lower(split_part(r.room_jid, '@', 2)) = ANY(%s)",
    "jids": "r.room_jid = ANY(%s)",
}


def utcnow() -> datetime:
    """tc_* TIMESTAMP columns hold UTC without a zone."""
    return datetime.now(UTC).replace(tzinfo=None)


@dataclass(frozen=True)
class ArchiveQuery:
    """What an archive query (XEP-0313) selects: msg_ids after/before, stamps from/to (UTC),
    and whether the page is read from the end (RSM ``<before/>``)."""

    after: int | None = None
    before: int | None = None
    start: datetime | None = None
    end: datetime | None = None
    last: bool = False

    def matches(self, message: ChatMessage) -> bool:
        return (
            (self.after is None or message.msg_id > self.after)
            and (self.before is None or message.msg_id < self.before)
            and (self.start is None or message.stamp >= self.start)
            and (self.end is None or message.stamp <= self.end)
        )


@dataclass(frozen=True)
class PendingPost:
    """A post waiting to be stored."""

    sender: str
    nick: str
    body: str
    cid: str


@dataclass(frozen=True)
class AffiliationChange:
    """One user's new affiliation with a room, and why (``tc_users.reason``)."""

    user: str
    affiliation: Affiliation
    reason: str = ""
    nick: str | None = None  # the reserved nickname an admin gave (tc_users.nick_jid); None keeps it


@dataclass(frozen=True)
class Fence:
    """The hosting epoch a commit must still find for its room's home node."""

    home: str
    epoch: int
    node: str


class Fenced(ChatError):
    """A commit found a newer hosting epoch: another node took the rooms; nothing was stored."""

    def __init__(self, fence: Fence, current: int | None, holder: str | None) -> None:
        super().__init__(
            ErrorCode.ROOM_UNAVAILABLE,
            f"{fence.node} no longer hosts the rooms of {fence.home} ({holder or 'nobody'} took them, epoch "
            f"{current} after {fence.epoch}); nothing was stored; try again.",
        )
        self.fence = fence


class DatabaseUnavailable(ChatError):
    def __init__(self, detail: str) -> None:
        super().__init__(
            ErrorCode.DATABASE_UNAVAILABLE,
            f"The persistent chat database is unavailable, so nothing was stored; try again shortly. ({detail})",
        )


class PostgresStore:
    """The ``tc_*`` tables through an async connection pool of ``size`` connections."""

    def __init__(self, conninfo: dict, size: int) -> None:
        self.conninfo = dict(conninfo)
        self.conninfo.pop("connect_timeout", None)
        self.size = size
        self.pool: AsyncConnectionPool | None = None
        self._archive_ids: list[int] = []

    async def open(self) -> None:
        """Open the pool and wait for a first connection; raise psycopg.Error if none comes."""
        self.pool = AsyncConnectionPool(
            kwargs={**self.conninfo, "autocommit": True, "connect_timeout": 5, "options": SESSION_OPTIONS},
            min_size=self.size,
            max_size=self.size,
            open=False,
            timeout=GETCONN_TIMEOUT,
            reconnect_timeout=0,  # keep trying for ever; the heartbeat reports the outage
            check=AsyncConnectionPool.check_connection,
            name="tc",
        )
        await self.pool.open(wait=False)
        # One direct connection proves the database answers with the stored credentials.
        async with await psycopg.AsyncConnection.connect(**self.conninfo, connect_timeout=5) as conn:
            await conn.execute("SELECT 1")

    async def close(self) -> None:
        if self.pool is not None:
            await self.pool.close()
            self.pool = None

    def _connection(self):
        if self.pool is None:
            raise DatabaseUnavailable("the connection pool is closed")
        return self.pool.connection()

    async def verify_schema(self) -> list[str]:
        async with self._connection() as conn:
            cursor = await conn.execute(schema.POSTGRES_COLUMNS_SQL, ([table.name for table in schema.TABLES],))
            actual: dict[str, dict[str, schema.ActualColumn]] = {}
            for table_name, column_name, data_type, length, nullable in await cursor.fetchall():
                actual.setdefault(table_name, {})[column_name] = schema.ActualColumn(data_type, length, nullable)
            problems = schema.verify(schema.Dialect.POSTGRES, actual)
            if not problems:
                cursor = await conn.execute(
                    "SELECT count(*) FROM xcp_sequence WHERE name_id = %s", (schema.MESSAGE_ID_SEQUENCE,)
                )
                if (await cursor.fetchone())[0] != 1:
                    problems.append(f"Table xcp_sequence has no row {schema.MESSAGE_ID_SEQUENCE}.")
            return problems

    async def ensure_fencing(self) -> None:
        """Create the fencing tables the first time a TC starts on this database.

        Both nodes of a group may start together on a new database; ``IF NOT EXISTS`` does not
        make two concurrent ``CREATE TABLE`` safe in PostgreSQL (the second fails on the table's
        row type), so the creators take turns under a transaction-scoped advisory lock."""
        async with self._connection() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(%s)", (FENCING_SCHEMA_LOCK,))
            for table in schema.FENCING_TABLES:
                cursor = await conn.execute("SELECT to_regclass(%s)", (table.name,))
                if (await cursor.fetchone())[0] is None:
                    await conn.execute(
                        schema.create_table_sql(table, schema.Dialect.POSTGRES).replace(
                            "CREATE TABLE", "CREATE TABLE IF NOT EXISTS", 1
                        )
                    )

    async def claim(self, home: str, node: str) -> int:
        """Bump the hosting epoch of ``home``'s rooms for ``node``; commits under an older one fail."""
        async with self._connection() as conn:
            cursor = await conn.execute(
                "INSERT INTO tc_hosting_epochs (home_node, epoch, holder, claimed_at) VALUES (%s, 1, %s, %s) "
                "ON CONFLICT (home_node) DO UPDATE SET epoch = tc_hosting_epochs.epoch + 1, "
                "holder = EXCLUDED.holder, claimed_at = EXCLUDED.claimed_at RETURNING epoch",
                (home, node, utcnow()),
            )
            return (await cursor.fetchone())[0]

    async def heartbeat(self) -> None:
        """Exercise the connections (the product's database connection heartbeat)."""
        if self.pool is None:
            raise DatabaseUnavailable("the connection pool is closed")
        await self.pool.check()
        async with self._connection() as conn:
            await conn.execute("SELECT 1")

    # --- rooms -------------------------------------------------------------------------------

    async def load_rooms(
        self, *, aliases: list[str] | None = None, jids: list[str] | None = None, policy: Policy, keep: int
    ) -> list[Room]:
        """Load rooms in bulk: those under ``aliases`` (a home node's rooms) or those named.

        Three queries whatever the number of rooms, sent together and read in one snapshot:
        the rooms, their members, and the last ``keep`` messages of each room (kept unparsed
        in its RecentHistory). Recent posts for recognising retries are read when a room gets
        its first post, not here.
        """
        if aliases is not None:
            where, value = ROOM_SELECTIONS["aliases"], [alias.lower() for alias in aliases]
        else:
            where, value = ROOM_SELECTIONS["jids"], list(jids or ())
        if not value:
            return []
        async with self._connection() as conn, conn.pipeline(), conn.transaction():
            await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            room_rows = await conn.execute(LOAD_ROOMS_SQL.format(where), (value,))
            member_rows = await conn.execute(LOAD_MEMBERS_SQL.format(where), (value,))
            message_rows = await conn.execute(LOAD_MESSAGES_SQL.format(where), (keep, value)) if keep > 0 else None
            room_rows = await room_rows.fetchall()
            member_rows = await member_rows.fetchall()
            message_rows = await message_rows.fetchall() if message_rows is not None else []
        rooms: dict[str, Room] = {}
        for jid, creator, room_type, config, next_msg_id, subject, spacket in room_rows:
            defaults = policy.default_config(jid.split("@")[0], room_type == RoomType.PERSISTENT)
            rooms[jid] = Room(
                jid=jid,
                room_type=RoomType(room_type),
                creator=creator,
                config=RoomConfig.from_xml(config, defaults),
                subject=subject or "",
                subject_nick=subject_nick(spacket or ""),
                known_next_msg_id=next_msg_id,
                dedup_from=next_msg_id,
            )
        for jid, real_jid, affiliation, nick_jid in member_rows:
            rooms[jid].members[real_jid] = (
                Affiliation(affiliation) if affiliation in KNOWN_AFFILIATIONS else Affiliation.NONE
            )
            nick = (nick_jid or "").partition("/")[2]
            if nick and nick != nick_for(real_jid):
                rooms[jid].nicks[real_jid] = nick
        recent: dict[str, list] = {jid: [] for jid in rooms}
        for jid, msg_id, stamp, msg in message_rows:
            recent[jid].append((msg_id, stamp, msg))
        for jid, room in rooms.items():
            room.history = RecentHistory.from_rows(jid, keep, recent[jid], room.known_next_msg_id)
        return list(rooms.values())

    async def count_rooms(self, aliases: list[str]) -> tuple[int, int]:
        """(rooms, persistent rooms) whose JID is under one of ``aliases``."""
        async with self._connection() as conn:
            cursor = await conn.execute(
                "SELECT count(*), count(*) FILTER (WHERE type = 'persistent') FROM tc_rooms "
                "WHERE lower(split_part(room_jid, '@', 2)) = ANY(%s)",
                (aliases,),
            )
            total, persistent = await cursor.fetchone()
            return total, persistent

    async def create_room(self, room: Room) -> None:
        async with self._connection() as conn, conn.transaction():
            cursor = await conn.execute(
                "INSERT INTO tc_rooms (room_jid, creator_jid, subject, type, config, spacket, start_msg_id, "
                "next_msg_id) VALUES (%s, %s, %s, %s, %s, %s, 1, 1) ON CONFLICT (room_jid) DO NOTHING",
                (
                    room.jid,
                    room.creator,
                    room.subject,
                    str(room.room_type),
                    room.config.to_xml(),
                    subject_stanza(room.jid, room.subject_nick, room.subject) if room.subject else "",
                ),
            )
            if cursor.rowcount == 0:
                raise ChatError(ErrorCode.ROOM_EXISTS, f"{room.jid} already exists; join it or choose another name.")
            async with conn.cursor() as cur:
                await cur.executemany(
                    "INSERT INTO tc_users (room_jid, real_jid, role, affiliation, nick_jid, reason, initiator_jid) "
                    "VALUES (%s, %s, %s, %s, %s, '', %s)",
                    [
                        (room.jid, jid, str(Role.NONE), str(aff), room.nick_jid(jid.split("@")[0]), room.creator)
                        for jid, aff in room.members.items()
                    ],
                )

    async def add_member(self, room: Room, jid: str, nick: str) -> None:
        async with self._connection() as conn:
            await conn.execute(
                "INSERT INTO tc_users (room_jid, real_jid, role, affiliation, nick_jid, reason, initiator_jid) "
                "VALUES (%s, %s, %s, %s, %s, '', %s) ON CONFLICT (room_jid, real_jid) DO NOTHING",
                (room.jid, jid, str(Role.NONE), str(Affiliation.MEMBER), room.nick_jid(nick), jid),
            )

    async def save_nick(
        self, room: Room, jid: str, nick: str, affiliation: Affiliation, fence: Fence | None = None
    ) -> None:
        """Store the nickname a user registered with a room (``tc_users.nick_jid``, XEP-0045
        §7.10): a new member's row (reason "Registered", initiator the user), or a member's
        new nickname."""
        async with self._connection() as conn, conn.transaction():
            await _check_fence(conn, fence)
            await conn.execute(
                "INSERT INTO tc_users (room_jid, real_jid, role, affiliation, nick_jid, reason, initiator_jid) "
                "VALUES (%s, %s, %s, %s, %s, 'Registered', %s) ON CONFLICT (room_jid, real_jid) DO UPDATE SET "
                "nick_jid = EXCLUDED.nick_jid",
                (room.jid, jid, str(Role.NONE), str(affiliation), room.nick_jid(nick), jid),
            )

    async def save_config(self, room: Room, config: RoomConfig, fence: Fence | None = None) -> None:
        """Store a room's new configuration (the form in ``config``, the type in ``type``); like
        every change a room's host commits, under its hosting epoch (``fence``, see ``store_posts``)."""
        async with self._connection() as conn, conn.transaction():
            await _check_fence(conn, fence)
            cursor = await conn.execute(
                "UPDATE tc_rooms SET config = %s, type = %s WHERE room_jid = %s",
                (config.to_xml(), str(RoomType.PERSISTENT if config.persistent else RoomType.AD_HOC), room.jid),
            )
            if cursor.rowcount == 0:
                raise ChatError(ErrorCode.ROOM_NOT_FOUND, f"{room.jid} no longer exists.")

    async def save_subject(self, room: Room, subject: str, nick: str, fence: Fence | None = None) -> None:
        """Store a room's subject and the packet that set it (``tc_rooms.subject``, ``spacket``)."""
        async with self._connection() as conn, conn.transaction():
            await _check_fence(conn, fence)
            cursor = await conn.execute(
                "UPDATE tc_rooms SET subject = %s, spacket = %s WHERE room_jid = %s",
                (subject, subject_stanza(room.jid, nick, subject), room.jid),
            )
            if cursor.rowcount == 0:
                raise ChatError(ErrorCode.ROOM_NOT_FOUND, f"{room.jid} no longer exists.")

    async def save_affiliations(
        self, room: Room, changes: list[AffiliationChange], initiator: str, fence: Fence | None = None
    ) -> None:
        """Store changes to a room's member lists in ``tc_users``, together: affiliation ``none``
        removes the user's row, any other inserts or updates it with the reason and initiator."""
        async with self._connection() as conn, conn.transaction():
            await _check_fence(conn, fence)
            for change in changes:
                if change.affiliation == Affiliation.NONE:
                    await conn.execute(
                        "DELETE FROM tc_users WHERE room_jid = %s AND real_jid = %s", (room.jid, change.user)
                    )
                    continue
                await conn.execute(
                    "INSERT INTO tc_users (room_jid, real_jid, role, affiliation, nick_jid, reason, initiator_jid) "
                    "VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (room_jid, real_jid) DO UPDATE SET "
                    "affiliation = EXCLUDED.affiliation, reason = EXCLUDED.reason, "
                    "initiator_jid = EXCLUDED.initiator_jid, "
                    "nick_jid = CASE WHEN %s THEN EXCLUDED.nick_jid ELSE tc_users.nick_jid END",
                    (
                        room.jid,
                        change.user,
                        str(Role.NONE),
                        str(change.affiliation),
                        room.nick_jid(change.nick or nick_for(change.user)),
                        change.reason[:255],
                        initiator,
                        change.nick is not None,
                    ),
                )

    async def destroy_room(self, room: Room, fence: Fence | None = None) -> None:
        async with self._connection() as conn, conn.transaction():
            await _check_fence(conn, fence)
            for table in ("tc_messages", "tc_users", "tc_rooms"):
                await conn.execute(f"DELETE FROM {table} WHERE room_jid = %s", (room.jid,))  # noqa: S608 (constant)

    async def list_rooms(self, aliases: list[str], limit: int) -> list[dict]:
        async with self._connection() as conn:
            cursor = await conn.execute(
                "SELECT room_jid, type, subject, config FROM tc_rooms "
                "WHERE lower(split_part(room_jid, '@', 2)) = ANY(%s) ORDER BY room_jid LIMIT %s",
                (aliases, limit),
            )
            return [
                {"room": jid, "type": kind, "subject": subject, "public": _listed(config)}
                for jid, kind, subject, config in await cursor.fetchall()
            ]

    # --- messages ----------------------------------------------------------------------------

    async def _reserve_archive_ids(self, conn, count: int) -> list[int]:
        """Take ``count`` tc_msgarchive ids, reserving blocks from xcp_sequence as needed."""
        if len(self._archive_ids) < count:
            size = max(ARCHIVE_ID_BLOCK, count - len(self._archive_ids))
            async with conn.transaction():
                cursor = await conn.execute(
                    "UPDATE xcp_sequence SET new_id = new_id + %s WHERE name_id = %s RETURNING new_id",
                    (size, schema.MESSAGE_ID_SEQUENCE),
                )
                row = await cursor.fetchone()
            if row is None:
                raise ChatError(ErrorCode.INTERNAL, f"xcp_sequence has no row {schema.MESSAGE_ID_SEQUENCE}.")
            self._archive_ids.extend(range(row[0] - size, row[0]))
        taken, self._archive_ids = self._archive_ids[:count], self._archive_ids[count:]
        return taken

    async def store_posts(
        self, room: Room, posts: list[PendingPost], archive: bool, fence: Fence | None = None
    ) -> list[tuple[ChatMessage, bool]]:
        """Store posts in one transaction; return each one's message and whether it is new
        (False for a post already stored under the same sender and client id, which keeps its
        first id). Raises on failure, and then nothing of the batch is stored.

        With a ``fence``, the transaction first takes a share lock on the home node's hosting
        epoch and raises ``Fenced`` unless it is still ``fence.epoch``: a node that lost the
        rooms cannot commit, whatever its clock or lease says, and a claim waits for the
        commits under the old epoch to end. Each new message records the epoch it was
        committed under."""
        async with self._connection() as conn:
            archive_ids = await self._reserve_archive_ids(conn, len(posts)) if archive else []
            stamp = utcnow()
            async with conn.transaction():
                await _check_fence(conn, fence)
                cursor = await conn.execute(
                    "SELECT next_msg_id FROM tc_rooms WHERE room_jid = %s FOR UPDATE", (room.jid,)
                )
                row = await cursor.fetchone()
                if row is None:
                    raise ChatError(ErrorCode.ROOM_NOT_FOUND, f"{room.jid} no longer exists.")
                next_id = row[0]
                seen = dict(room.recent_posts)
                caught_up: list[ChatMessage] = []
                if next_id != room.known_next_msg_id:
                    # Another node wrote to the room since we last looked (a hand-over).
                    cursor = await conn.execute(
                        "SELECT msg_id, stamp, msg FROM tc_messages WHERE room_jid = %s AND msg_id >= %s "
                        "ORDER BY msg_id",
                        (room.jid, room.known_next_msg_id),
                    )
                    for msg_id, old_stamp, msg in await cursor.fetchall():
                        message = ChatMessage.from_row(room.jid, msg_id, old_stamp, msg)
                        seen[(message.sender, message.cid)] = msg_id
                        caught_up.append(message)
                # A room loaded from the database knows none of its earlier posts yet: read
                # the senders and client ids of the last RECENT_POSTS_KEPT, once.
                window = max(0, next_id - RECENT_POSTS_KEPT)
                older: list[tuple[str, str, int]] = []
                if room.dedup_from > window:
                    older = await _posts_between(conn, room.jid, window, min(room.dedup_from, room.known_next_msg_id))
                    for sender, cid, msg_id in older:
                        seen.setdefault((sender, cid), msg_id)
                results: list[tuple[ChatMessage, bool]] = []
                rows, archive_rows = [], []
                ids = itertools.count(next_id)
                for post in posts:
                    earlier = seen.get((post.sender, post.cid))
                    if earlier is not None:
                        old = room.history.get(earlier) or await _stored_message(conn, room.jid, earlier)
                        if old is None:  # not readable: the retry still is not stored twice
                            old = ChatMessage(room.jid, earlier, post.sender, post.nick, post.body, stamp, post.cid)
                        results.append((old, False))
                        continue
                    message = ChatMessage(room.jid, next(ids), post.sender, post.nick, post.body, stamp, post.cid)
                    seen[(post.sender, post.cid)] = message.msg_id
                    results.append((message, True))
                    stanza = message.to_stanza()
                    rows.append((message.msg_id, room.jid, stamp, stanza))
                    if archive:
                        archive_rows.append(_archive_row(archive_ids.pop(0), room, message, stanza))
                new_next = next(ids)
                if rows:
                    async with conn.cursor() as cur:
                        await cur.executemany(
                            "INSERT INTO tc_messages (msg_id, room_jid, stamp, msg) VALUES (%s, %s, %s, %s)", rows
                        )
                        if fence is not None:
                            await cur.executemany(
                                "INSERT INTO tc_message_epochs (room_jid, msg_id, epoch, node) VALUES (%s, %s, %s, %s)",
                                [(row[1], row[0], fence.epoch, fence.node) for row in rows],
                            )
                        if archive_rows:
                            await cur.executemany(
                                "INSERT INTO tc_msgarchive (msg_id, to_jid, from_jid, nick_jid, sent_date, msg_type, "
                                "body_len, message_len, body_string, message_string, body_text, message_text, subject) "
                                "VALUES (%s, %s, %s, %s, %s, 'g', %s, %s, %s, %s, %s, %s, NULL)",
                                archive_rows,
                            )
                    await conn.execute("UPDATE tc_rooms SET next_msg_id = %s WHERE room_jid = %s", (new_next, room.jid))
            # Committed: only now does the room remember these ids.
            if room.dedup_from > window:
                room.remember_older_posts(older, window)
            room.known_next_msg_id = new_next
            for message in caught_up:
                room.record(message)
            for message, new in results:
                if new:
                    room.record(message)
                else:
                    room.remember_post(message.sender, message.cid, message.msg_id)
            self._archive_ids = archive_ids + self._archive_ids
            return results

    async def history(self, jid: str, before: int | None, after: int | None, limit: int) -> list[ChatMessage]:
        """Up to ``limit`` messages, oldest first: the last ones, those before or after an id."""
        if limit <= 0:
            return []
        async with self._connection() as conn:
            if after is not None:
                cursor = await conn.execute(
                    "SELECT msg_id, stamp, msg FROM tc_messages WHERE room_jid = %s AND msg_id > %s "
                    "ORDER BY msg_id LIMIT %s",
                    (jid, after, limit),
                )
                rows = await cursor.fetchall()
            else:
                cursor = await conn.execute(
                    "SELECT msg_id, stamp, msg FROM tc_messages WHERE room_jid = %s AND msg_id < %s "
                    "ORDER BY msg_id DESC LIMIT %s",
                    (jid, before if before is not None else 2**62, limit),
                )
                rows = list(reversed(await cursor.fetchall()))
            return [ChatMessage.from_row(jid, msg_id, stamp, msg) for msg_id, stamp, msg in rows]

    async def locate(self, jid: str, stanza_id: str) -> int | None:
        """The msg_id of the room's message with this XEP-0359 stanza-id, or None."""
        stamp = stamp_of_stanza_id(stanza_id)
        if stamp is None:
            return None
        async with self._connection() as conn:
            cursor = await conn.execute(
                "SELECT msg_id, stamp, msg FROM tc_messages WHERE room_jid = %s AND stamp = %s", (jid, stamp)
            )
            for msg_id, row_stamp, msg in await cursor.fetchall():
                if stanza_id_for(jid, row_stamp, msg) == stanza_id:
                    return msg_id
        return None

    async def archive(self, jid: str, query: ArchiveQuery, limit: int) -> list[ChatMessage]:
        """Up to ``limit`` messages matching an archive query (XEP-0313), oldest first: the
        first ones, or the last ones when ``query.last`` (a page read backwards)."""
        async with self._connection() as conn:
            cursor = await conn.execute(
                ARCHIVE_SQL_LAST if query.last else ARCHIVE_SQL_FIRST,
                {
                    "room": jid,
                    "after": query.after,
                    "before": query.before,
                    "start": query.start,
                    "end": query.end,
                    "limit": limit,
                },
            )
            rows = await cursor.fetchall()
        if query.last:
            rows.reverse()
        return [ChatMessage.from_row(jid, msg_id, stamp, msg) for msg_id, stamp, msg in rows]

    async def log_presence(self, real_jid: str, nick_jid: str, direction: str) -> None:
        """A tc_timelog row: E when a user enters a room, L when the user leaves."""
        async with self._connection() as conn:
            await conn.execute(
                "INSERT INTO tc_timelog (real_jid, nick_jid, direction, stamp) VALUES (%s, %s, %s, %s)",
                (real_jid, nick_jid, direction, utcnow()),
            )


async def _check_fence(conn, fence: Fence | None) -> None:
    """Inside a transaction: share-lock the home node's hosting epoch, and raise ``Fenced``
    unless it is still ``fence.epoch`` (another node took the rooms: nothing may be stored)."""
    if fence is None:
        return
    cursor = await conn.execute(
        "SELECT epoch, holder FROM tc_hosting_epochs WHERE home_node = %s FOR SHARE", (fence.home,)
    )
    current = await cursor.fetchone()
    if current is None or current[0] != fence.epoch:
        raise Fenced(fence, *(current or (None, None)))


async def _stored_message(conn, jid: str, msg_id: int) -> ChatMessage | None:
    """A stored message of the room (the first copy of a retried post), as stored."""
    cursor = await conn.execute(
        "SELECT msg_id, stamp, msg FROM tc_messages WHERE room_jid = %s AND msg_id = %s", (jid, msg_id)
    )
    row = await cursor.fetchone()
    return ChatMessage.from_row(jid, *row) if row else None


async def _posts_between(conn, jid: str, low: int, high: int) -> list[tuple[str, str, int]]:
    """(sender, cid, msg_id) of the room's stored posts with low <= msg_id < high, oldest first.

    The database reads sender and client id out of the stanzas it holds, so a room's first
    post after a load costs one indexed query and no parsing here; rows the patterns do not
    match (written by other software) come back whole and are parsed.
    """
    if high <= low:
        return []
    cursor = await conn.execute(
        "SELECT msg_id, sender, cid, CASE WHEN sender IS NULL OR cid IS NULL THEN msg END FROM ("
        "SELECT msg_id, msg, substring(msg from %s) AS sender, substring(msg from %s) AS cid FROM tc_messages "
        "WHERE room_jid = %s AND msg_id >= %s AND msg_id < %s) AS recent ORDER BY msg_id",
        (STANZA_SENDER_PATTERN, STANZA_CID_PATTERN, jid, low, high),
    )
    posts = []
    for msg_id, sender, cid, stanza in await cursor.fetchall():
        if stanza is not None:
            message = ChatMessage.from_row(jid, msg_id, datetime.min, stanza)
            sender, cid = message.sender, message.cid
        else:
            sender, cid = unescape_attribute(sender), unescape_attribute(cid)
        if sender and cid:
            posts.append((sender, cid, msg_id))
    return posts


def _listed(config: str) -> bool:
    """Whether a stored room configuration lists the room (``muc#roomconfig_publicroom``)."""
    defaults = RoomConfig(name="", persistent=True, members_only=False, max_occupants=1)
    return RoomConfig.from_xml(config or "", defaults).public


def _archive_row(archive_id: int, room: Room, message: ChatMessage, stanza: str) -> tuple:
    body, long_body = (message.body, None) if len(message.body) <= VARCHAR_LIMIT else (None, message.body)
    packet, long_packet = (stanza, None) if len(stanza) <= VARCHAR_LIMIT else (None, stanza)
    return (
        archive_id,
        room.jid,
        message.sender,
        room.nick_jid(message.nick),
        message.stamp,
        len(message.body),
        len(stanza),
        body,
        packet,
        long_body,
        long_packet,
    )


class MemoryStore:
    """Ad hoc rooms in memory, for a node with persistent chat off and no database."""

    def __init__(self) -> None:
        self.rooms: dict[str, Room] = {}
        self.messages: dict[str, list[ChatMessage]] = {}

    async def open(self) -> None:
        pass

    async def close(self) -> None:
        self.rooms.clear()
        self.messages.clear()

    async def verify_schema(self) -> list[str]:
        return []

    async def ensure_fencing(self) -> None:
        pass

    async def claim(self, home: str, node: str) -> None:
        """Nothing outlives the service in memory, so there is nothing to fence."""
        return None

    async def heartbeat(self) -> None:
        pass

    async def load_rooms(
        self, *, aliases: list[str] | None = None, jids: list[str] | None = None, policy: Policy, keep: int
    ) -> list[Room]:
        if aliases is not None:
            wanted = {alias.lower() for alias in aliases}
            return [room for jid, room in self.rooms.items() if jid.split("@")[1] in wanted]
        return [self.rooms[jid] for jid in jids or () if jid in self.rooms]

    async def count_rooms(self, aliases: list[str]) -> tuple[int, int]:
        total = sum(1 for jid in self.rooms if jid.split("@")[1] in aliases)
        return total, 0

    async def create_room(self, room: Room) -> None:
        if room.jid in self.rooms:
            raise ChatError(ErrorCode.ROOM_EXISTS, f"{room.jid} already exists; join it or choose another name.")
        self.rooms[room.jid] = room
        self.messages[room.jid] = []

    async def add_member(self, room: Room, jid: str, nick: str) -> None:
        pass

    async def save_nick(
        self, room: Room, jid: str, nick: str, affiliation: Affiliation, fence: Fence | None = None
    ) -> None:
        pass

    async def save_config(self, room: Room, config: RoomConfig, fence: Fence | None = None) -> None:
        pass

    async def save_subject(self, room: Room, subject: str, nick: str, fence: Fence | None = None) -> None:
        pass

    async def save_affiliations(
        self, room: Room, changes: list[AffiliationChange], initiator: str, fence: Fence | None = None
    ) -> None:
        pass

    async def destroy_room(self, room: Room, fence: Fence | None = None) -> None:
        self.rooms.pop(room.jid, None)
        self.messages.pop(room.jid, None)

    async def list_rooms(self, aliases: list[str], limit: int) -> list[dict]:
        jids = sorted(jid for jid in self.rooms if jid.split("@")[1] in aliases)[:limit]
        return [
            {
                "room": jid,
                "type": str(self.rooms[jid].room_type),
                "subject": self.rooms[jid].subject,
                "public": self.rooms[jid].config.public,
            }
            for jid in jids
        ]

    async def store_posts(
        self, room: Room, posts: list[PendingPost], archive: bool, fence: Fence | None = None
    ) -> list[tuple[ChatMessage, bool]]:
        stored = self.messages.setdefault(room.jid, [])
        results = []
        for post in posts:
            earlier = room.stored_post(post.sender, post.cid)
            first = next((m for m in stored if m.msg_id == earlier), None) if earlier is not None else None
            msg_id = earlier if earlier is not None else room.known_next_msg_id
            message = first or ChatMessage(room.jid, msg_id, post.sender, post.nick, post.body, utcnow(), post.cid)
            if earlier is None:
                stored.append(message)
                room.known_next_msg_id += 1
                room.record(message)
            results.append((message, earlier is None))
        return results

    async def history(self, jid: str, before: int | None, after: int | None, limit: int) -> list[ChatMessage]:
        messages = self.messages.get(jid, [])
        if limit <= 0:
            return []
        if after is not None:
            return [m for m in messages if m.msg_id > after][:limit]
        return [m for m in messages if before is None or m.msg_id < before][-limit:]

    async def locate(self, jid: str, stanza_id: str) -> int | None:
        return next((m.msg_id for m in self.messages.get(jid, []) if m.stanza_id == stanza_id), None)

    async def archive(self, jid: str, query: ArchiveQuery, limit: int) -> list[ChatMessage]:
        found = [m for m in self.messages.get(jid, []) if query.matches(m)]
        return found[-limit:] if query.last else found[:limit]

    async def log_presence(self, real_jid: str, nick_jid: str, direction: str) -> None:
        pass
