# ruff: noqa: S608 -- SQL is assembled from the schema module's constant names; values are bind parameters.
"""SQL of the merge, built once for every database type.

Table and column names come from ``messaging.tc.schema`` (constants, never input); values
(room names, id ranges, shifts) are always bind parameters. Placeholders follow the dialect:
``%(name)s`` for psycopg (bound client side inside ``COPY``), ``:name`` for python-oracledb.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from messaging.tc.schema import TABLES_BY_NAME, Dialect, Kind, Table

TC_ROOMS = TABLES_BY_NAME["tc_rooms"]
TC_USERS = TABLES_BY_NAME["tc_users"]
TC_MESSAGES = TABLES_BY_NAME["tc_messages"]
TC_TIMELOG = TABLES_BY_NAME["tc_timelog"]
TC_MSGARCHIVE = TABLES_BY_NAME["tc_msgarchive"]
XCP_SEQUENCE = TABLES_BY_NAME["xcp_sequence"]

MERGE_RECORD_TABLE = "imp_merge_record"

# Staging tables in the destination, dropped (PostgreSQL) or emptied (Oracle) at commit.
STAGE_ROOMS = "imp_stage_rooms"
STAGE_USERS = "imp_stage_users"
STAGE_SEQUENCE = "imp_stage_sequence"
STAGE_ROOM_STATS = "imp_stage_room_stats"
STAGE_SHARED = "imp_stage_shared"
STAGE_IDS = "imp_stage_ids"
STAGE_MESSAGES = "imp_stage_messages"
STAGE_ARCHIVE = "imp_stage_archive"
# The staged messages identical to one in the destination, by key: (room_jid, msg_id).
STAGE_DUPS = "imp_stage_dups"

# Oracle offers no arrays in plain SQL: ranges and shifts go in as a UNION ALL of binds.
ORACLE_MAX_BINDS = 60000


@dataclass(frozen=True)
class Statement:
    """SQL text and its parameters."""

    text: str
    params: dict = field(default_factory=dict)


def ph(dialect: Dialect, name: str) -> str:
    return f":{name}" if dialect is Dialect.ORACLE else f"%({name})s"


@dataclass(frozen=True)
class StagedColumns:
    """Columns of a transfer's destination table, with their type in the destination."""

    table: str
    columns: tuple[tuple[str, str], ...]

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self.columns]


def table_columns(table: Table, dialect: Dialect, into: str | None = None) -> StagedColumns:
    return StagedColumns(into or table.name, tuple((c.name, c.type_sql(dialect)) for c in table.columns))


def room_stats_columns(dialect: Dialect) -> StagedColumns:
    big = "BIGINT" if dialect is Dialect.POSTGRES else "NUMBER(19)"
    jid = "VARCHAR(3071)" if dialect is Dialect.POSTGRES else "VARCHAR2(3071)"
    return StagedColumns(
        STAGE_ROOM_STATS, (("room_jid", jid), ("n", big), ("lo", big), ("hi", big), ("last_stamp", "TIMESTAMP"))
    )


def ids_columns(dialect: Dialect) -> StagedColumns:
    return StagedColumns(STAGE_IDS, (("msg_id", "BIGINT" if dialect is Dialect.POSTGRES else "NUMBER(19)"),))


def _column(dialect: Dialect, alias: str, name: str, kind: Kind) -> str:
    """A source column, cast where two valid schemas may differ (binary COPY needs exact types)."""
    if dialect is not Dialect.POSTGRES:
        return f"{alias}.{name}"
    cast = {Kind.BIGINT: "BIGINT", Kind.INT: "INTEGER", Kind.TIMESTAMP: "TIMESTAMP"}.get(kind)
    return f"CAST({alias}.{name} AS {cast})" if cast else f"{alias}.{name}"


def plain_select(table: Table, dialect: Dialect) -> Statement:
    """Every row of a source table, as it is."""
    columns = ", ".join(_column(dialect, "s", c.name, c.kind) for c in table.columns)
    return Statement(f"SELECT {columns} FROM {table.name} s")


def room_stats_select(dialect: Dialect) -> Statement:
    """Per room of a source: message count, lowest and highest msg_id, latest stamp."""
    return Statement(
        "SELECT s.room_jid, COUNT(*), MIN(s.msg_id), MAX(s.msg_id), "
        + ("CAST(MAX(s.stamp) AS TIMESTAMP)" if dialect is Dialect.POSTGRES else "MAX(s.stamp)")
        + " FROM tc_messages s GROUP BY s.room_jid"
    )


def ids_select(dialect: Dialect) -> Statement:
    return Statement(f"SELECT {_column(dialect, 's', 'msg_id', Kind.BIGINT)} FROM tc_msgarchive s")


def source_counts_select() -> Statement:
    """Rows of every table of a source, plus the range of its archive ids, in one query."""
    parts = [f"(SELECT COUNT(*) FROM {name})" for name in ("tc_rooms", "tc_users", "tc_messages")]
    parts += ["(SELECT COUNT(*) FROM tc_msgarchive)", "(SELECT COUNT(*) FROM tc_timelog)"]
    parts += ["(SELECT COUNT(*) FROM xcp_sequence)"]
    parts += ["(SELECT MIN(msg_id) FROM tc_msgarchive)", "(SELECT MAX(msg_id) FROM tc_msgarchive)"]
    return Statement("SELECT " + ", ".join(parts) + " FROM (SELECT 1 AS one) dual_row")


SOURCE_COUNT_TABLES = ("tc_rooms", "tc_users", "tc_messages", "tc_msgarchive", "tc_timelog", "xcp_sequence")


def _oracle_rows(prefix: str, rows: list[tuple], names: tuple[str, ...]) -> tuple[str, dict]:
    if len(rows) * len(names) > ORACLE_MAX_BINDS:
        raise ValueError(f"{len(rows)} {prefix} entries exceed what one Oracle statement can bind.")
    selects, params = [], {}
    for index, row in enumerate(rows):
        cols = []
        for name, value in zip(names, row, strict=True):
            key = f"{prefix}_{name}_{index}"
            params[key] = value
            cols.append(f":{key} AS {name}")
        selects.append("SELECT " + ", ".join(cols) + " FROM dual")
    return " UNION ALL ".join(selects), params


def messages_select(dialect: Dialect, rooms: list[str], staged: bool) -> Statement:
    """A source's tc_messages of the rooms that hold messages on both sides (``staged``: they
    go to the staging table, where duplicates are found and ids renumbered) or of every other
    room (streamed straight into place, ids as they are)."""
    if not rooms:
        return plain_select(TC_MESSAGES, dialect)
    columns = ", ".join(_column(dialect, "s", c.name, c.kind) for c in TC_MESSAGES.columns)
    if dialect is Dialect.POSTGRES:
        join = "JOIN unnest(%(rooms)s::text[]) AS o(room_jid) ON o.room_jid = s.room_jid"
        params: dict = {"rooms": rooms}
    else:
        rows_sql, params = _oracle_rows("room", [(room,) for room in rooms], ("room_jid",))
        join = f"JOIN ({rows_sql}) o ON o.room_jid = s.room_jid"
    if staged:
        return Statement(f"SELECT {columns} FROM tc_messages s {join}", params)
    return Statement(f"SELECT {columns} FROM tc_messages s LEFT {join} WHERE o.room_jid IS NULL", params)


def _postgres_runs(runs: list[tuple[int, int, int]]) -> tuple[str, str, dict]:
    """The run of each source row: a CROSS JOIN of the runs as arrays and the position of the
    row's id among their sorted lower bounds (width_bucket: a binary search), and the test
    that the id falls inside that run."""
    joins = (
        "CROSS JOIN (SELECT %(lo)s::bigint[] AS lo, %(hi)s::bigint[] AS hi, %(shift)s::bigint[] AS shift) r "
        "CROSS JOIN LATERAL (SELECT width_bucket(s.msg_id, r.lo) AS b) w"
    )
    params = {"lo": [run[0] for run in runs], "hi": [run[1] for run in runs], "shift": [run[2] for run in runs]}
    return joins, "w.b > 0 AND s.msg_id <= r.hi[w.b]", params


def archive_select(dialect: Dialect, runs: list[tuple[int, int, int]], part: str = "all") -> Statement:
    """A source's tc_msgarchive with the ids that collide with the destination's moved past the
    largest id in use. ``runs`` are (lowest id, highest id, shift) of each run of colliding ids,
    sorted; every other id is kept.

    ``part`` (PostgreSQL): "colliding" selects only the rows whose id collides, ids unchanged
    (they are staged and moved in the destination, see ``insert_staged_archive``); "others"
    only the rows whose id does not."""
    if not runs:
        return plain_select(TC_MSGARCHIVE, dialect)
    others = ", ".join(_column(dialect, "s", c.name, c.kind) for c in TC_MSGARCHIVE.columns if c.name != "msg_id")
    if dialect is Dialect.POSTGRES:
        joins, inside, params = _postgres_runs(runs)
        if part == "colliding":
            return Statement(f"{plain_select(TC_MSGARCHIVE, dialect).text} {joins} WHERE {inside}", params)
        if part == "others":
            return Statement(f"{plain_select(TC_MSGARCHIVE, dialect).text} {joins} WHERE NOT ({inside})", params)
        return Statement(
            f"SELECT CAST(CASE WHEN {inside} THEN s.msg_id + r.shift[w.b] ELSE s.msg_id END AS BIGINT), {others} "
            f"FROM tc_msgarchive s {joins}",
            params,
        )
    if part != "all":
        raise ValueError("Only the PostgreSQL engine stages colliding archive rows.")
    rows_sql, params = _oracle_rows("run", runs, ("lo", "hi", "shift"))
    return Statement(
        f"SELECT s.msg_id + COALESCE(r.shift, 0), {others} FROM tc_msgarchive s "
        f"LEFT JOIN ({rows_sql}) r ON s.msg_id BETWEEN r.lo AND r.hi",
        params,
    )


def archive_rows_select(dialect: Dialect) -> Statement:
    """Archive rows of the given ids (``%(ids)s``, PostgreSQL), columns as ``plain_select``
    gives them: what a sample of colliding rows is compared with on either side."""
    return Statement(f"{plain_select(TC_MSGARCHIVE, dialect).text} WHERE s.msg_id = ANY(%(ids)s)")


def sample_colliding_ids(step: int, within: tuple[int, int] | None = None) -> Statement:
    """PostgreSQL: about one in ``step`` of the incoming ids that collide, picked by a hash of
    the id (so neither a pattern in the ids nor their order biases the pick): the staged ids
    held by the destination too, or, ``within`` (low, high) of a source that holds every id of
    that range, the destination's ids in it (see ``archive_ids_held``)."""
    pick = "(hashint8(t.msg_id) & 2147483647) %% %(step)s = 0"
    if within:
        return Statement(
            f"SELECT t.msg_id FROM tc_msgarchive t WHERE t.msg_id BETWEEN %(low)s AND %(high)s AND {pick}",
            {"step": step, "low": within[0], "high": within[1]},
        )
    return Statement(
        f"SELECT i.msg_id FROM {STAGE_IDS} i JOIN tc_msgarchive t ON t.msg_id = i.msg_id WHERE {pick}",
        {"step": step},
    )


def same_row(dialect: Dialect, table: Table, left: str, right: str, skip: tuple[str, ...] = ()) -> str:
    """True when two rows of ``table`` are equal in every column (but ``skip``), NULLs equal.

    Oracle compares CLOBs with DBMS_LOB.COMPARE (``=`` is not allowed on them) and has no
    IS NOT DISTINCT FROM; PostgreSQL uses plain ``=`` on NOT NULL columns so that keys can
    use their index.
    """
    terms = []
    for column in table.columns:
        if column.name in skip:
            continue
        a, b = f"{left}.{column.name}", f"{right}.{column.name}"
        if dialect is Dialect.POSTGRES:
            terms.append(f"{a} IS NOT DISTINCT FROM {b}" if column.nullable else f"{a} = {b}")
            continue
        equal = f"DBMS_LOB.COMPARE({a}, {b}) = 0" if column.kind is Kind.TEXT else f"{a} = {b}"
        terms.append(f"({equal} OR ({a} IS NULL AND {b} IS NULL))" if column.nullable else equal)
    return " AND ".join(terms)


# --- Statements run in the destination --------------------------------------------------


def shared_rooms_insert() -> str:
    """Rooms present (in tc_rooms or by their messages) on both sides of a merge step."""
    return f"""
        INSERT INTO {STAGE_SHARED} (room_jid, t_n, t_lo, t_hi, t_last, s_n, s_lo, s_hi, s_last)
        SELECT k.room_jid, COALESCE(tm.n, 0), tm.lo, tm.hi, tm.last_stamp,
               COALESCE(ss.n, 0), ss.lo, ss.hi, ss.last_stamp
        FROM (SELECT room_jid FROM {STAGE_ROOMS} UNION SELECT room_jid FROM {STAGE_ROOM_STATS}) k
        LEFT JOIN (
            SELECT room_jid, COUNT(*) AS n, MIN(msg_id) AS lo, MAX(msg_id) AS hi, MAX(stamp) AS last_stamp
            FROM tc_messages
            WHERE room_jid IN (SELECT room_jid FROM {STAGE_ROOMS} UNION SELECT room_jid FROM {STAGE_ROOM_STATS})
            GROUP BY room_jid
        ) tm ON tm.room_jid = k.room_jid
        LEFT JOIN {STAGE_ROOM_STATS} ss ON ss.room_jid = k.room_jid
        WHERE EXISTS (SELECT 1 FROM tc_rooms t WHERE t.room_jid = k.room_jid) OR tm.room_jid IS NOT NULL
    """


def mark_duplicate_messages(dialect: Dialect) -> tuple[str, ...]:
    """Move the keys of the staged messages identical to one in the destination (kept there,
    not added) out of the staged messages into their own narrow table; the first statement's
    row count is their number. Marking them in the staged rows instead rewrote each."""
    same = same_row(dialect, TC_MESSAGES, "t", "s")
    identical = f"EXISTS (SELECT 1 FROM tc_messages t WHERE {same})"
    if dialect is Dialect.POSTGRES:
        return (
            f"WITH d AS (DELETE FROM {STAGE_MESSAGES} s WHERE {identical} RETURNING s.room_jid, s.msg_id) "
            f"INSERT INTO {STAGE_DUPS} (room_jid, msg_id) SELECT room_jid, msg_id FROM d",
        )
    return (
        f"INSERT INTO {STAGE_DUPS} (room_jid, msg_id) SELECT s.room_jid, s.msg_id FROM {STAGE_MESSAGES} s "
        f"WHERE {identical}",
        f"DELETE FROM {STAGE_MESSAGES} s WHERE EXISTS "
        f"(SELECT 1 FROM {STAGE_DUPS} d WHERE d.room_jid = s.room_jid AND d.msg_id = s.msg_id)",
    )


# Once duplicates are set apart, each side of a room that has any counts only its own messages
# (a duplicate keeps its id on the destination's side): how many, and the lowest id. A room
# without duplicates keeps the figures of the per-room statistics.
SHARED_OWN_INCOMING = f"""
    MERGE INTO {STAGE_SHARED} x USING (
        SELECT r.room_jid, COALESCE(m.n, 0) AS n, m.lo, r.d
        FROM (SELECT room_jid, COUNT(*) AS d FROM {STAGE_DUPS} GROUP BY room_jid) r
        LEFT JOIN (SELECT room_jid, COUNT(*) AS n, MIN(msg_id) AS lo FROM {STAGE_MESSAGES} GROUP BY room_jid) m
        ON m.room_jid = r.room_jid
    ) s ON (x.room_jid = s.room_jid)
    WHEN MATCHED THEN UPDATE SET s_n = s.n, s_lo = s.lo, dups = s.d, t_n = x.t_n - s.d
"""
_NOT_DUPLICATED = (
    f"NOT EXISTS (SELECT 1 FROM {STAGE_DUPS} d "
    "WHERE d.room_jid = tc_messages.room_jid AND d.msg_id = tc_messages.msg_id)"
)
SHARED_OWN_DESTINATION = f"""
    MERGE INTO {STAGE_SHARED} x USING (
        SELECT room_jid, MIN(msg_id) AS lo FROM tc_messages
        WHERE room_jid IN (SELECT room_jid FROM {STAGE_SHARED} WHERE dups > 0) AND {_NOT_DUPLICATED}
        GROUP BY room_jid
    ) s ON (x.room_jid = s.room_jid)
    WHEN MATCHED THEN UPDATE SET t_lo = s.lo
"""
# The side with fewer messages of its own is renumbered after the other's (the incoming side
# on a tie); the room's other fields come from the side whose room saw the latest message.
SHARED_DECIDE = f"""
    UPDATE {STAGE_SHARED} SET
        renumber = CASE WHEN s_n = 0 OR t_n = 0 THEN 'N' WHEN s_n <= t_n THEN 'S' ELSE 'T' END,
        latest = CASE WHEN s_last IS NOT NULL AND (t_last IS NULL OR s_last > t_last) THEN 'S' ELSE 'T' END
"""
SHARED_SHIFT = f"""
    UPDATE {STAGE_SHARED} SET shift = CASE renumber
        WHEN 'S' THEN t_hi + 1 - s_lo WHEN 'T' THEN s_hi + 1 - t_lo ELSE 0 END
"""
# Two steps, so that no intermediate id collides with one not yet moved. Duplicates stay.
RENUMBER_DESTINATION_ROOMS = (
    f"UPDATE tc_messages SET msg_id = -msg_id - 1 "
    f"WHERE room_jid IN (SELECT room_jid FROM {STAGE_SHARED} WHERE renumber = 'T') AND {_NOT_DUPLICATED}",
    f"UPDATE tc_messages SET msg_id = (-msg_id - 1) + "
    f"(SELECT x.shift FROM {STAGE_SHARED} x WHERE x.room_jid = tc_messages.room_jid) "
    f"WHERE msg_id < 0 AND room_jid IN (SELECT room_jid FROM {STAGE_SHARED} WHERE renumber = 'T')",
)


def insert_staged_messages() -> str:
    """The staged messages (duplicates were set apart), renumbered where their side is."""
    others = ", ".join(f"s.{c}" for c in TC_MESSAGES.column_names if c != "msg_id")
    return (
        f"INSERT INTO tc_messages ({', '.join(TC_MESSAGES.column_names)}) "
        f"SELECT s.msg_id + CASE WHEN x.renumber = 'S' THEN x.shift ELSE 0 END, {others} "
        f"FROM {STAGE_MESSAGES} s JOIN {STAGE_SHARED} x ON x.room_jid = s.room_jid"
    )


# Runs of consecutive (in id order) incoming ids that collide with the destination's: a run
# is numbered by how many incoming ids before it do not collide (one sort, one window).
COLLIDING_RUNS = f"""
    SELECT MIN(msg_id), MAX(msg_id), COUNT(*) FROM (
        SELECT i.msg_id, t.msg_id AS hit,
               SUM(CASE WHEN t.msg_id IS NULL THEN 1 ELSE 0 END) OVER (ORDER BY i.msg_id ROWS UNBOUNDED PRECEDING)
               AS grp
        FROM {STAGE_IDS} i LEFT JOIN tc_msgarchive t ON t.msg_id = i.msg_id
    ) x WHERE hit IS NOT NULL GROUP BY grp ORDER BY 1
"""


def archive_ids_held(dialect: Dialect) -> str:
    """How many destination archive ids lie between ``low`` and ``high``."""
    return f"SELECT COUNT(*) FROM tc_msgarchive WHERE msg_id BETWEEN {ph(dialect, 'low')} AND {ph(dialect, 'high')}"


def archive_id_runs(dialect: Dialect) -> str:
    """(lowest, highest, count) of each run of consecutive destination archive ids between
    ``low`` and ``high``, in order: along a run, an id minus its rank is the same."""
    return (
        "SELECT MIN(msg_id), MAX(msg_id), COUNT(*) FROM ("
        "SELECT msg_id, msg_id - ROW_NUMBER() OVER (ORDER BY msg_id) AS grp FROM tc_msgarchive "
        f"WHERE msg_id BETWEEN {ph(dialect, 'low')} AND {ph(dialect, 'high')}"
        ") x GROUP BY grp ORDER BY 1"
    )


def delete_moved_duplicates(dialect: Dialect, runs: list[tuple[int, int, int]]) -> Statement:
    """Delete the incoming archive rows just moved by ``runs`` (lowest id, highest id, shift)
    that are identical, but for the id, to the destination's row at their original id: exact
    duplicates, kept once under the id they had. (PostgreSQL finds them first with
    ``moved_duplicates_select``.)"""
    if dialect is Dialect.POSTGRES:
        raise ValueError("PostgreSQL finds moved duplicates with moved_duplicates_select.")
    same = same_row(dialect, TC_MSGARCHIVE, "o", "n", skip=("msg_id",))
    rows_sql, params = _oracle_rows("run", runs, ("lo", "hi", "shift"))
    return Statement(
        f"DELETE FROM tc_msgarchive n WHERE EXISTS (SELECT 1 FROM ({rows_sql}) r "
        "JOIN tc_msgarchive o ON o.msg_id = n.msg_id - r.shift "
        f"WHERE n.msg_id BETWEEN r.lo + r.shift AND r.hi + r.shift AND {same})",
        params,
    )


def moved_duplicates_select(runs: list[tuple[int, int, int]]) -> Statement:
    """PostgreSQL: the ids of the incoming archive rows just moved by ``runs`` (lowest id,
    highest id, shift) that are identical, but for the id, to the destination's row at their
    original id. A SELECT, unlike a DELETE, can run in parallel workers: each reads a share of
    the moved rows and looks up the row at its original id by key."""
    params = {
        "to_lo": [run[0] + run[2] for run in runs],
        "to_hi": [run[1] + run[2] for run in runs],
        "shift": [run[2] for run in runs],
        "first": runs[0][0],
        "last": runs[-1][1],
        "to_first": runs[0][0] + runs[0][2],
        "to_last": runs[-1][1] + runs[-1][2],
    }
    same = same_row(Dialect.POSTGRES, TC_MSGARCHIVE, "o", "n", skip=("msg_id",))
    # The moved ranges follow one another in the order of the runs, so the run of a moved row
    # is found by a binary search of its id among their lower bounds, as in ``_postgres_runs``.
    return Statement(
        "SELECT n.msg_id FROM tc_msgarchive n "
        "CROSS JOIN (SELECT %(to_lo)s::bigint[] AS to_lo, %(to_hi)s::bigint[] AS to_hi, "
        "%(shift)s::bigint[] AS shift) r "
        "CROSS JOIN LATERAL (SELECT width_bucket(n.msg_id, r.to_lo) AS b) w "
        "JOIN tc_msgarchive o ON o.msg_id = n.msg_id - r.shift[w.b] "
        f"WHERE n.msg_id BETWEEN %(to_first)s AND %(to_last)s AND w.b > 0 AND n.msg_id <= r.to_hi[w.b] AND {same} "
        "AND o.msg_id BETWEEN %(first)s AND %(last)s",
        params,
    )


def insert_staged_archive(runs: list[tuple[int, int, int]]) -> Statement:
    """PostgreSQL: the staged colliding archive rows that are not identical (but for the id) to
    the destination's row at their id, moved by their run's shift. Exact duplicates are
    never written."""
    joins, _, params = _postgres_runs(runs)
    names = TC_MSGARCHIVE.column_names
    others = ", ".join(f"s.{c}" for c in names if c != "msg_id")
    same = same_row(Dialect.POSTGRES, TC_MSGARCHIVE, "o", "s", skip=("msg_id",))
    return Statement(
        f"INSERT INTO tc_msgarchive ({', '.join(names)}) SELECT s.msg_id + r.shift[w.b], {others} "
        f"FROM {STAGE_ARCHIVE} s {joins} WHERE NOT EXISTS (SELECT 1 FROM tc_msgarchive o "
        f"WHERE o.msg_id = s.msg_id AND {same} AND o.msg_id BETWEEN %(first)s AND %(last)s)",
        {**params, "first": runs[0][0], "last": runs[-1][1]},
    )


def insert_new_rooms() -> str:
    cols = ", ".join(TC_ROOMS.column_names)
    return (
        f"INSERT INTO tc_rooms ({cols}) SELECT {cols} FROM {STAGE_ROOMS} s "
        "WHERE NOT EXISTS (SELECT 1 FROM tc_rooms t WHERE t.room_jid = s.room_jid)"
    )


def _merge_on(dialect: Dialect, condition: str) -> str:
    return f"ON ({condition})"


def update_rooms_from_latest(dialect: Dialect) -> str:
    fields = [c for c in TC_ROOMS.column_names if c not in ("room_jid", "next_msg_id")]
    sets = ", ".join(f"{c} = s.{c}" for c in fields)
    return (
        f"MERGE INTO tc_rooms t USING (SELECT s.* FROM {STAGE_ROOMS} s JOIN {STAGE_SHARED} x "
        f"ON x.room_jid = s.room_jid AND x.latest = 'S') s {_merge_on(dialect, 't.room_jid = s.room_jid')} "
        f"WHEN MATCHED THEN UPDATE SET {sets}"
    )


NEXT_MSG_ID_UPDATE = f"""
    UPDATE tc_rooms SET next_msg_id = GREATEST(
        next_msg_id,
        COALESCE((SELECT s.next_msg_id FROM {STAGE_ROOMS} s WHERE s.room_jid = tc_rooms.room_jid), 0),
        COALESCE((SELECT MAX(m.msg_id) FROM tc_messages m WHERE m.room_jid = tc_rooms.room_jid), 0) + 1)
    WHERE room_jid IN (SELECT room_jid FROM {STAGE_SHARED})
"""


def merge_users(dialect: Dialect) -> str:
    """Members are the union; a member of both keeps the row of the side whose room saw the
    latest message. DISTINCT: a source without keys may hold the same member row twice."""
    cols = TC_USERS.column_names
    fields = [c for c in cols if c not in TC_USERS.primary_key]
    sets = ", ".join(f"{c} = s.{c}" for c in fields)
    insert = f"INSERT ({', '.join(cols)}) VALUES ({', '.join('s.' + c for c in cols)})"
    source = (
        f"(SELECT DISTINCT u.*, COALESCE(x.latest, 'T') AS latest FROM {STAGE_USERS} u "
        f"LEFT JOIN {STAGE_SHARED} x ON x.room_jid = u.room_jid) s"
    )
    on = _merge_on(dialect, "t.room_jid = s.room_jid AND t.real_jid = s.real_jid")
    if dialect is Dialect.ORACLE:
        return (
            f"MERGE INTO tc_users t USING {source} {on} "
            f"WHEN MATCHED THEN UPDATE SET {sets} WHERE s.latest = 'S' WHEN NOT MATCHED THEN {insert}"
        )
    return (
        f"MERGE INTO tc_users t USING {source} {on} "
        f"WHEN MATCHED AND s.latest = 'S' THEN UPDATE SET {sets} WHEN NOT MATCHED THEN {insert}"
    )


def merge_sequence(dialect: Dialect) -> str:
    on = _merge_on(dialect, "t.name_id = s.name_id")
    insert = "INSERT (name_id, new_id) VALUES (s.name_id, s.new_id)"
    if dialect is Dialect.ORACLE:
        return (
            f"MERGE INTO xcp_sequence t USING {STAGE_SEQUENCE} s {on} "
            f"WHEN MATCHED THEN UPDATE SET new_id = s.new_id WHERE s.new_id > t.new_id WHEN NOT MATCHED THEN {insert}"
        )
    return (
        f"MERGE INTO xcp_sequence t USING {STAGE_SEQUENCE} s {on} "
        f"WHEN MATCHED AND s.new_id > t.new_id THEN UPDATE SET new_id = s.new_id WHEN NOT MATCHED THEN {insert}"
    )


def sequence_past_every_id(dialect: Dialect) -> Statement:
    """xcp_sequence.tc_message_id above every id in the archive and in room histories."""
    top = (
        "GREATEST(COALESCE((SELECT MAX(msg_id) FROM tc_msgarchive), 0), "
        "COALESCE((SELECT MAX(msg_id) FROM tc_messages), 0)) + 1"
    )
    name = ph(dialect, "name")
    return Statement(
        f"UPDATE xcp_sequence SET new_id = GREATEST(new_id, {top}) WHERE name_id = {name}",
        {"name": "tc_message_id"},
    )


def sequence_insert_if_missing(dialect: Dialect) -> Statement:
    top = (
        "GREATEST(COALESCE((SELECT MAX(msg_id) FROM tc_msgarchive), 0), "
        "COALESCE((SELECT MAX(msg_id) FROM tc_messages), 0)) + 1"
    )
    name = ph(dialect, "name")
    dual = " FROM dual" if dialect is Dialect.ORACLE else ""
    return Statement(
        f"INSERT INTO xcp_sequence (name_id, new_id) SELECT CAST({name} AS VARCHAR(64)), {top}{dual} "
        f"WHERE NOT EXISTS (SELECT 1 FROM xcp_sequence WHERE name_id = {name})",
        {"name": "tc_message_id"},
    )


def merge_record_lookup(dialect: Dialect) -> Statement:
    return Statement(
        f"SELECT job_id, merged_at FROM {MERGE_RECORD_TABLE} "
        f"WHERE source_pair = {ph(dialect, 'pair')} ORDER BY merged_at",
        {},
    )


def merge_record_insert(dialect: Dialect) -> Statement:
    cols = ("job_id", "source_pair", "source_1", "source_2", "merged_at")
    return Statement(
        f"INSERT INTO {MERGE_RECORD_TABLE} ({', '.join(cols)}) VALUES ({', '.join(ph(dialect, c) for c in cols)})",
        {},
    )


def merge_record_create(dialect: Dialect) -> str:
    text = "VARCHAR(512)" if dialect is Dialect.POSTGRES else "VARCHAR2(512)"
    big = "BIGINT" if dialect is Dialect.POSTGRES else "NUMBER(19)"
    when = "TIMESTAMP WITH TIME ZONE"
    exists = "IF NOT EXISTS " if dialect is Dialect.POSTGRES else ""
    return (
        f"CREATE TABLE {exists}{MERGE_RECORD_TABLE} (job_id {big} NOT NULL, source_pair {text} NOT NULL, "
        f"source_1 {text} NOT NULL, source_2 {text} NOT NULL, merged_at {when} NOT NULL)"
    )
