# ruff: noqa: S608 -- SQL is assembled from the schema module's constant names; values are bind parameters.
"""The merge engine for Oracle: python-oracledb array fetch from each source and array insert
(executemany) into the destination, in batches, following the same plan and SQL as PostgreSQL.

No Oracle server runs in this project's test environment: the tests check this module at the
driver boundary (what it asks of the python-oracledb connection and cursors).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from dbmerge.engines import plan
from dbmerge.engines import sqlbuild as q
from dbmerge.engines.base import CANCELLED_REASON, MergeCancelled, MergeError, MergeHooks, MergeReport
from messaging.tc.schema import Dialect, install_statements, verify

logger = logging.getLogger("dbmerge.engine")

BATCH_ROWS = 10_000
FINGERPRINT_SQL = (
    "SELECT sys_context('USERENV', 'DB_UNIQUE_NAME') || ':' || sys_context('USERENV', 'CURRENT_SCHEMA') FROM dual"
)
STAGING_DDL = {
    q.STAGE_ROOMS: "CREATE GLOBAL TEMPORARY TABLE {name} ON COMMIT DELETE ROWS AS SELECT * FROM tc_rooms WHERE 1 = 0",
    q.STAGE_USERS: "CREATE GLOBAL TEMPORARY TABLE {name} ON COMMIT DELETE ROWS AS SELECT * FROM tc_users WHERE 1 = 0",
    q.STAGE_SEQUENCE: (
        "CREATE GLOBAL TEMPORARY TABLE {name} ON COMMIT DELETE ROWS AS SELECT * FROM xcp_sequence WHERE 1 = 0"
    ),
    q.STAGE_ROOM_STATS: (
        "CREATE GLOBAL TEMPORARY TABLE {name} (room_jid VARCHAR2(3071), n NUMBER(19), lo NUMBER(19), "
        "hi NUMBER(19), last_stamp TIMESTAMP) ON COMMIT DELETE ROWS"
    ),
    q.STAGE_SHARED: (
        "CREATE GLOBAL TEMPORARY TABLE {name} (room_jid VARCHAR2(3071) PRIMARY KEY, t_n NUMBER(19), "
        "t_lo NUMBER(19), t_hi NUMBER(19), t_last TIMESTAMP, s_n NUMBER(19), s_lo NUMBER(19), s_hi NUMBER(19), "
        "s_last TIMESTAMP, dups NUMBER(19), renumber CHAR(1), latest CHAR(1), shift NUMBER(19)) ON COMMIT DELETE ROWS"
    ),
    q.STAGE_MESSAGES: (
        "CREATE GLOBAL TEMPORARY TABLE {name} ON COMMIT DELETE ROWS AS SELECT * FROM tc_messages WHERE 1 = 0"
    ),
    q.STAGE_DUPS: (
        "CREATE GLOBAL TEMPORARY TABLE {name} (room_jid VARCHAR2(3071), msg_id NUMBER(19)) ON COMMIT DELETE ROWS"
    ),
    q.STAGE_IDS: "CREATE GLOBAL TEMPORARY TABLE {name} (msg_id NUMBER(19)) ON COMMIT DELETE ROWS",
}


@dataclass(frozen=True)
class OracleDatabase:
    label: str
    params: dict = field(repr=False)


def database_settings(database) -> OracleDatabase:
    """Connection settings of an External Database entry (type Oracle)."""
    return OracleDatabase(
        str(database),
        {
            "user": database.username,
            "password": database.get_password(),
            "host": database.hostname,
            "port": database.port,
            "service_name": database.database_name,
        },
    )


def connect(database: OracleDatabase, connector=None):
    import oracledb

    connector = connector or oracledb.connect
    try:
        return connector(**database.params)
    except oracledb.Error as exc:
        raise MergeError(f"Cannot connect to {database.label}: {str(exc).splitlines()[0]}") from exc


class OracleSource(plan.SourceSide):
    def __init__(self, database: OracleDatabase, conn) -> None:
        self.label = database.label
        self.conn = conn
        # One read-only transaction: every table read from the same snapshot.
        self.conn.cursor().execute("SET TRANSACTION READ ONLY")
        self.fingerprint = self._one(FINGERPRINT_SQL)

    def _one(self, text: str):
        cur = self.conn.cursor()
        cur.execute(text)
        return cur.fetchone()[0]

    def query(self, statement: q.Statement) -> list[tuple]:
        cur = self.conn.cursor()
        text = statement.text.replace(" FROM (SELECT 1 AS one) dual_row", " FROM dual")
        cur.execute(text, statement.params)
        return cur.fetchall()


class OracleDestination(plan.DestinationSide):
    dialect = Dialect.ORACLE

    def __init__(self, database: OracleDatabase, conn) -> None:
        self.label = database.label
        self.conn = conn
        cur = conn.cursor()
        cur.execute(FINGERPRINT_SQL)
        self.fingerprint = cur.fetchone()[0]

    def execute(self, text: str, params: dict | None = None) -> int:
        cur = self.conn.cursor()
        cur.execute(text, params or {})
        return cur.rowcount

    def query(self, text: str, params: dict | None = None) -> list[tuple]:
        cur = self.conn.cursor()
        cur.execute(text, params or {})
        return cur.fetchall()

    def prepare(self) -> list[str]:
        """DDL first (Oracle commits DDL): schema, merge record and staging tables, before any row changes."""
        notes = []
        existing = {row[0].lower() for row in self.query("SELECT table_name FROM user_tables")}
        if "tc_rooms" not in existing:
            for statement in install_statements(Dialect.ORACLE):
                self.execute(statement)
            notes.append(f"{self.label} held no TC tables; the TC schema was installed in it.")
        if q.MERGE_RECORD_TABLE not in existing:
            self.execute(q.merge_record_create(Dialect.ORACLE))
        for name, ddl in STAGING_DDL.items():
            if name not in existing:
                self.execute(ddl.format(name=name))
        self.execute(
            "LOCK TABLE tc_rooms, tc_users, tc_messages, tc_msgarchive, tc_timelog, xcp_sequence, "
            f"{q.MERGE_RECORD_TABLE} IN SHARE ROW EXCLUSIVE MODE WAIT 10"
        )
        return notes

    def clear_staging(self) -> None:
        for name in STAGING_DDL:
            self.execute(f"DELETE FROM {name}")


class ArrayTransport(plan.Transport):
    """Array fetch from the source (``arraysize`` rows a round trip) and ``executemany`` of each
    batch into the destination: the worker holds one batch at a time."""

    name = "array"

    def __init__(self, destination: OracleDestination, batch_rows: int = BATCH_ROWS) -> None:
        self.destination = destination
        self.batch_rows = batch_rows

    def transfer(self, source, statement, into, on_rows=lambda rows: None) -> int:
        read = source.conn.cursor()
        read.arraysize = self.batch_rows
        read.prefetchrows = self.batch_rows + 1
        read.execute(statement.text, statement.params)
        write = self.destination.conn.cursor()
        insert = (
            f"INSERT INTO {into.table} ({', '.join(into.names)}) "
            f"VALUES ({', '.join(f':{i}' for i in range(1, len(into.names) + 1))})"
        )
        rows = 0
        while batch := read.fetchmany(self.batch_rows):
            write.executemany(insert, batch)
            rows += len(batch)
            on_rows(rows)
        return rows


def merge(
    destination: OracleDatabase,
    sources: list[OracleDatabase],
    hooks: MergeHooks | None = None,
    job_id: int = 0,
    connector=None,
) -> MergeReport:
    """Merge two Oracle sources into ``destination``; committed only on success.

    A Cancel interrupts the call each connection is running (``Connection.cancel()``, as
    ``postgres.merge`` does with ``cancel_safe``) and ends the merge with MergeCancelled.
    """
    hooks = hooks or MergeHooks()
    opened = []
    forget = []
    try:
        source_sides = []
        for database in sources:
            conn = connect(database, connector)
            opened.append(conn)
            forget.append(hooks.on_interrupt(conn.cancel))
            source_sides.append(OracleSource(database, conn))
        conn = connect(destination, connector)
        opened.append(conn)
        forget.append(hooks.on_interrupt(conn.cancel))
        target = OracleDestination(destination, conn)
        report = plan.merge(target, source_sides, ArrayTransport(target), hooks, job_id)
        hooks.raise_if_cancelled()
        hooks.confirm_commit()
        conn.commit()
        return report
    except Exception as exc:
        for conn in opened[len(sources) :]:
            conn.rollback()
        if hooks.cancelled and not isinstance(exc, MergeCancelled):
            raise MergeCancelled(CANCELLED_REASON) from exc
        raise
    finally:
        for unregister in forget:
            unregister()
        for conn in opened:
            conn.close()


def inspect(database, role: str, tablespace: str = ""):
    """Facts for validation (see ``postgres.inspect``), read through python-oracledb."""
    from dbmerge.engines.postgres import DatabaseFacts
    from messaging.dbcheck import oracle as checks

    facts = DatabaseFacts()
    conn = connect(database_settings(database))
    try:
        cur = conn.cursor()
        cur.execute(FINGERPRINT_SQL)
        facts.fingerprint = cur.fetchone()[0]
        actual = checks.columns(conn)
        facts.tc_tables = bool(actual)
        facts.schema_problems = verify(Dialect.ORACLE, actual) if actual else []
        facts.missing_privileges = checks.missing_privileges(conn)
        cur.execute(
            "SELECT COALESCE(SUM(bytes), 0) FROM user_segments WHERE segment_name IN "
            "('TC_ROOMS', 'TC_USERS', 'TC_MESSAGES', 'TC_MSGARCHIVE', 'TC_TIMELOG')"
        )
        facts.tc_bytes = cur.fetchone()[0]
        if role == "destination":
            cur.execute("SELECT COALESCE(SUM(bytes), 0) FROM user_free_space WHERE tablespace_name = :1", [tablespace])
            facts.free_bytes = cur.fetchone()[0]
    finally:
        conn.close()
    return facts
