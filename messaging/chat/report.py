"""The persistent chat room report (reference 4.3, Room Report): rooms read from an external
database, a page at a time, with their hosting node, occupants now, members, message count
and last message date. Every query is bounded by the page size and uses the tables' keys.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

import psycopg
from django.conf import settings
from psycopg import sql

from messaging import pools
from messaging.chat.directory import read_snapshot
from messaging.models import ExternalDatabase
from messaging.tc.rooms import MEMBER_AFFILIATIONS, RoomType
from messaging.tc.stanzas import ChatMessage

PAGE_SIZE = 50
RECENT_MESSAGES = 50
MEMBERS = [str(value) for value in MEMBER_AFFILIATIONS]


class ReportError(Exception):
    """The database could not be read; the message says why."""


@dataclass
class RoomRow:
    room_jid: str
    room_type: str
    subject: str
    creator: str
    hosting_node: str
    occupants: int | None
    members: int
    message_count: int
    last_message: datetime | None


@contextmanager
def _connect(database: ExternalDatabase):
    """A connection to ``database`` from this process's pool (see messaging.pools)."""
    timeout = settings.EXTERNAL_DB_CHECK_TIMEOUT
    try:
        with pools.postgres(database.postgres_conninfo(timeout), timeout) as conn:
            yield conn
    except psycopg.OperationalError as exc:
        raise ReportError(f"{database} cannot be read now: {str(exc).strip().splitlines()[-1]}") from exc


def occupants_now(room_jids: list[str]) -> dict[str, int]:
    """Occupant counts the hosting Text Conference Managers publish (see tc.py)."""
    from messaging.chat.bus import bus_prefix

    if not room_jids:
        return {}
    try:
        values = pools.redis_client(settings.REDIS_URL).hmget(f"{bus_prefix()}:occupants", room_jids)
    except Exception:
        return {}
    return {jid: int(value) for jid, value in zip(room_jids, values, strict=True) if value is not None}


def room_page(
    database: ExternalDatabase, search: str = "", room_type: str = "", page: int = 1
) -> tuple[list[RoomRow], bool]:
    """One page of rooms ordered by JID; returns (rows, whether a next page exists)."""
    where, params = [sql.SQL("TRUE")], []
    if search:
        where.append(sql.SQL("r.room_jid ILIKE %s"))
        params.append(f"%{search}%")
    if room_type in {str(t) for t in RoomType}:
        where.append(sql.SQL("r.type = %s"))
        params.append(room_type)
    offset = (max(page, 1) - 1) * PAGE_SIZE
    query = sql.SQL(
        "SELECT r.room_jid, r.type, r.subject, r.creator_jid, r.next_msg_id - r.start_msg_id, m.stamp "
        "FROM tc_rooms r LEFT JOIN tc_messages m ON m.room_jid = r.room_jid AND m.msg_id = r.next_msg_id - 1 "
        "WHERE {} ORDER BY r.room_jid LIMIT %s OFFSET %s"
    ).format(sql.SQL(" AND ").join(where))
    with _connect(database) as conn:
        found = conn.execute(query, [*params, PAGE_SIZE + 1, offset]).fetchall()
        more = len(found) > PAGE_SIZE
        found = found[:PAGE_SIZE]
        jids = [row[0] for row in found]
        members = dict(
            conn.execute(
                "SELECT room_jid, count(*) FROM tc_users WHERE room_jid = ANY(%s) AND affiliation = ANY(%s) "
                "GROUP BY room_jid",
                (jids, MEMBERS),
            ).fetchall()
        )
    snapshot = read_snapshot()
    occupants = occupants_now(jids)
    rows = []
    for jid, kind, subject, creator, count, last in found:
        host = snapshot.host_of_room(jid)
        hosting = host.name if host else ""
        rows.append(
            RoomRow(jid, kind, subject, creator, hosting, occupants.get(jid), members.get(jid, 0), max(count, 0), last)
        )
    return rows, more


def room_detail(database: ExternalDatabase, room_jid: str) -> dict | None:
    """A room's fields, its members and its most recent messages, or None."""
    with _connect(database) as conn:
        room = conn.execute(
            "SELECT room_jid, type, subject, creator_jid, next_msg_id - start_msg_id FROM tc_rooms WHERE room_jid = %s",
            (room_jid,),
        ).fetchone()
        if room is None:
            return None
        members = conn.execute(
            "SELECT real_jid, affiliation, role FROM tc_users WHERE room_jid = %s ORDER BY real_jid LIMIT 1000",
            (room_jid,),
        ).fetchall()
        messages = conn.execute(
            "SELECT msg_id, stamp, msg FROM tc_messages WHERE room_jid = %s ORDER BY msg_id DESC LIMIT %s",
            (room_jid, RECENT_MESSAGES),
        ).fetchall()
    host = read_snapshot().host_of_room(room_jid)
    return {
        "room_jid": room[0],
        "room_type": room[1],
        "subject": room[2],
        "creator": room[3],
        "message_count": room[4],
        "hosting_node": host.name if host else "",
        "occupants": occupants_now([room_jid]).get(room_jid),
        "members": [{"jid": jid, "affiliation": aff, "role": role} for jid, aff, role in members],
        "messages": [ChatMessage.from_row(room_jid, *row) for row in reversed(messages)],
    }
