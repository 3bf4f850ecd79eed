# ruff: noqa: S608 -- SQL is assembled from the schema module's constant names; values are bind parameters.
"""The merge engine for PostgreSQL: COPY (FORMAT BINARY) streamed through the worker, or
dblink pulled by the destination; plus the facts validation needs about each database.

Sources are opened read-only in one REPEATABLE READ snapshot; every write to the destination
happens in one transaction, committed only when the whole merge succeeded.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import psycopg
from psycopg import ClientCursor, sql
from psycopg.conninfo import make_conninfo

from dbmerge.engines import plan
from dbmerge.engines import sqlbuild as q
from dbmerge.engines.base import MergeError, MergeHooks, MergeReport
from messaging.tc.schema import TABLES, Dialect, install_statements, postgres_actual, verify

logger = logging.getLogger("dbmerge.engine")

TC_TABLE_NAMES = [table.name for table in TABLES]
FINGERPRINT_SQL = (
    "SELECT (SELECT system_identifier FROM pg_control_system())::text || ':' || "
    "(SELECT oid FROM pg_database WHERE datname = current_database())::text"
)
# Rows per progress report while streaming (a COPY sends one message per row).
PROGRESS_EVERY = 4096
# COPY messages (one a row) are passed on in blocks of about this many bytes: one write per
# row costs the worker a libpq call each, and it shares the cores with both servers.
COPY_BLOCK_BYTES = 128 * 1024
DESTINATION_LOCK_TIMEOUT = "10s"
DBLINK_FUNCTIONS = (
    "dblink_connect(text,text)",
    "dblink_exec(text,text)",
    "dblink(text,text)",
    "dblink_disconnect(text)",
)
# Memory of the destination session for the merge's joins, sorts and staging tables (temp
# buffers must be set before the session's first temporary table; the others are SET LOCAL).
DESTINATION_SESSION = ("SET temp_buffers = '256MB'",)
DESTINATION_TRANSACTION = ("SET LOCAL work_mem = '256MB'", "SET LOCAL maintenance_work_mem = '512MB'")


@dataclass(frozen=True)
class PostgresDatabase:
    """How to reach one database: a label for messages and ``psycopg.connect`` keywords."""

    label: str
    conninfo: dict = field(repr=False)


def connect(database: PostgresDatabase, **kwargs) -> psycopg.Connection:
    try:
        return psycopg.connect(**{**database.conninfo, **kwargs})
    except psycopg.OperationalError as exc:
        raise MergeError(f"Cannot connect to {database.label}: {_first_line(exc)}") from exc


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


class PostgresSource(plan.SourceSide):
    def __init__(self, database: PostgresDatabase) -> None:
        self.label = database.label
        self.database = database
        self.conn = connect(database)
        self.conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        self.conn.read_only = True
        self.conn.execute("SET statement_timeout = 0")
        self.fingerprint = self.conn.execute(FINGERPRINT_SQL).fetchone()[0]

    def query(self, statement: q.Statement) -> list[tuple]:
        return self.conn.execute(statement.text, statement.params or None).fetchall()


class PostgresDestination(plan.DestinationSide):
    dialect = Dialect.POSTGRES

    def __init__(self, database: PostgresDatabase) -> None:
        self.label = database.label
        self.conn = connect(database)
        self.conn.execute("SET statement_timeout = 0")
        for statement in DESTINATION_SESSION:
            self.conn.execute(statement)
        self.fingerprint = self.conn.execute(FINGERPRINT_SQL).fetchone()[0]

    def execute(self, text: str, params: dict | None = None) -> int:
        return self.conn.execute(text, params or None).rowcount

    def query(self, text: str, params: dict | None = None) -> list[tuple]:
        return self.conn.execute(text, params or None).fetchall()

    def analyze(self, table: str) -> None:
        self.conn.execute(f"ANALYZE {table}")

    def prepare(self) -> list[str]:
        notes = []
        for statement in DESTINATION_TRANSACTION:
            self.conn.execute(statement)
        with self.conn.cursor() as cur:
            actual = postgres_actual(cur)
        if not actual:
            for statement in install_statements(Dialect.POSTGRES):
                self.conn.execute(statement)
            notes.append(f"{self.label} held no TC tables; the TC schema was installed in it.")
        else:
            problems = verify(Dialect.POSTGRES, actual)
            if problems:
                raise MergeError(f"{self.label} does not hold a valid TC schema: " + " ".join(problems))
        self.conn.execute(q.merge_record_create(Dialect.POSTGRES))
        self.conn.execute(f"SET LOCAL lock_timeout = '{DESTINATION_LOCK_TIMEOUT}'")
        try:
            # Another merge into the same destination waits here and then finds our record.
            self.conn.execute(
                "LOCK TABLE tc_rooms, tc_users, tc_messages, tc_msgarchive, tc_timelog, xcp_sequence, "
                f"{q.MERGE_RECORD_TABLE} IN SHARE ROW EXCLUSIVE MODE"
            )
        except psycopg.errors.LockNotAvailable as exc:
            raise MergeError(f"{self.label} is in use (its TC tables stay locked by another session).") from exc
        self.conn.execute("SET LOCAL lock_timeout = 0")
        copies = (
            (q.STAGE_ROOMS, "tc_rooms"),
            (q.STAGE_USERS, "tc_users"),
            (q.STAGE_SEQUENCE, "xcp_sequence"),
        )
        for name, like in copies:
            self.conn.execute(f"CREATE TEMP TABLE {name} (LIKE {like}) ON COMMIT DROP")
        # dup: set on a staged message identical to one already in the destination.
        self.conn.execute(f"CREATE TEMP TABLE {q.STAGE_MESSAGES} (LIKE tc_messages, dup CHAR(1)) ON COMMIT DROP")
        for staged in (q.room_stats_columns(Dialect.POSTGRES), q.ids_columns(Dialect.POSTGRES)):
            columns = ", ".join(f"{n} {t}" for n, t in staged.columns)
            self.conn.execute(f"CREATE TEMP TABLE {staged.table} ({columns}) ON COMMIT DROP")
        self.conn.execute(
            f"CREATE TEMP TABLE {q.STAGE_SHARED} (room_jid VARCHAR(3071) PRIMARY KEY, t_n BIGINT, t_lo BIGINT, "
            "t_hi BIGINT, t_last TIMESTAMP, s_n BIGINT, s_lo BIGINT, s_hi BIGINT, s_last TIMESTAMP, dups BIGINT, "
            "renumber CHAR(1), latest CHAR(1), shift BIGINT) ON COMMIT DROP"
        )
        return notes

    def clear_staging(self) -> None:
        tables = (
            q.STAGE_ROOMS,
            q.STAGE_USERS,
            q.STAGE_SEQUENCE,
            q.STAGE_ROOM_STATS,
            q.STAGE_SHARED,
            q.STAGE_IDS,
            q.STAGE_MESSAGES,
        )
        self.conn.execute("TRUNCATE " + ", ".join(tables))


class CopyTransport(plan.Transport):
    """COPY ... TO STDOUT (FORMAT BINARY) from the source into COPY ... FROM STDIN on the
    destination, block by block: the worker never holds more than a block."""

    name = "copy"

    def __init__(self, destination: PostgresDestination) -> None:
        self.destination = destination

    def transfer(self, source, statement, into, on_rows=lambda rows: None) -> int:
        copy_out = f"COPY ({statement.text}) TO STDOUT (FORMAT BINARY)"
        copy_in = f"COPY {into.table} ({', '.join(into.names)}) FROM STDIN (FORMAT BINARY)"
        with source.conn.cursor() as out_cur, self.destination.conn.cursor() as in_cur:
            with out_cur.copy(copy_out, statement.params or None) as copy_from, in_cur.copy(copy_in) as copy_to:
                block = bytearray()
                for messages, data in enumerate(copy_from, start=1):
                    block += data
                    if len(block) >= COPY_BLOCK_BYTES:
                        copy_to.write(block)
                        block = bytearray()
                    if messages % PROGRESS_EVERY == 0:
                        on_rows(messages)
                if block:
                    copy_to.write(block)
            return in_cur.rowcount


class DblinkTransport(plan.Transport):
    """The destination pulls each source SELECT through dblink, inside its own transaction.

    One dblink connection per source holds a REPEATABLE READ READ ONLY transaction, so every
    table of a source is read from one snapshot, as with COPY.
    """

    name = "dblink"

    def __init__(self, destination: PostgresDestination, sources: list[PostgresSource]) -> None:
        self.destination = destination
        self.names: dict[str, str] = {}
        if not destination.conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'dblink'").fetchone():
            raise MergeError(
                f"The dblink extension is not installed in {destination.label}; "
                "its owner must run CREATE EXTENSION dblink (or choose the COPY method)."
            )
        for index, source in enumerate(sources, start=1):
            name = f"imp_merge_source_{index}"
            info = {k: v for k, v in source.database.conninfo.items() if v not in (None, "")}
            try:
                self.destination.conn.execute("SELECT dblink_connect(%s, %s)", (name, make_conninfo(**info)))
            except psycopg.Error as exc:
                raise MergeError(
                    f"{destination.label} cannot reach {source.label} through dblink: {_first_line(exc)}"
                ) from exc
            self.destination.conn.execute(
                "SELECT dblink_exec(%s, 'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY')", (name,)
            )
            self.names[source.fingerprint] = name

    def transfer(self, source, statement, into, on_rows=lambda rows: None) -> int:
        remote = ClientCursor(self.destination.conn).mogrify(statement.text, statement.params or None)
        names = ", ".join(into.names)
        definitions = ", ".join(f"{n} {t}" for n, t in into.columns)
        rows = self.destination.conn.execute(
            f"INSERT INTO {into.table} ({names}) SELECT {names} FROM dblink(%s, %s) AS r({definitions})",
            (self.names[source.fingerprint], remote),
        ).rowcount
        on_rows(rows)
        return rows

    def close(self) -> None:
        for name in self.names.values():
            try:
                self.destination.conn.execute("SELECT dblink_disconnect(%s)", (name,))
            except psycopg.Error:
                logger.debug("dblink connection %s already gone", name)


def merge(
    destination: PostgresDatabase,
    sources: list[PostgresDatabase],
    method: str = "copy",
    hooks: MergeHooks | None = None,
    job_id: int = 0,
) -> MergeReport:
    """Merge two PostgreSQL sources into ``destination`` (committed only on success)."""
    hooks = hooks or MergeHooks()
    opened: list[psycopg.Connection] = []
    try:
        source_sides = []
        for database in sources:
            side = PostgresSource(database)
            opened.append(side.conn)
            source_sides.append(side)
        target = PostgresDestination(destination)
        opened.append(target.conn)
        transport: plan.Transport
        if method == "dblink":
            transport = DblinkTransport(target, source_sides)
        elif method == "copy":
            transport = CopyTransport(target)
        else:
            raise MergeError(f"Unknown transfer method {method!r}; use copy or dblink.")
        try:
            report = plan.merge(target, source_sides, transport, hooks, job_id)
        except psycopg.Error as exc:
            raise MergeError(f"The merge stopped on a database error: {_first_line(exc)}") from exc
        if isinstance(transport, DblinkTransport):
            transport.close()
        hooks.confirm_commit()
        target.conn.commit()
        logger.info("Committed the merge into %s.", destination.label)
        return report
    finally:
        for conn in opened:
            conn.close()


# --- Facts for validation ----------------------------------------------------------------


@dataclass
class DatabaseFacts:
    """What one connection found out about a database, for the validation checks."""

    fingerprint: str = ""
    server: str = ""
    tc_tables: bool = False
    schema_problems: list[str] = field(default_factory=list)
    rooms: int = 0
    persistent_rooms: int = 0
    tc_bytes: int = 0
    missing_privileges: list[str] = field(default_factory=list)
    merged_pairs: dict[str, int] = field(default_factory=dict)


def inspect(database: PostgresDatabase, role: str, method: str = "copy", timeout: int = 5) -> DatabaseFacts:
    """Connect (raises MergeError when unreachable or login fails) and gather the facts.

    ``role`` is "source" or "destination": what privileges are checked depends on it.
    """
    facts = DatabaseFacts()
    with connect(database, connect_timeout=timeout, autocommit=True) as conn, conn.cursor() as cur:
        facts.fingerprint = cur.execute(FINGERPRINT_SQL).fetchone()[0]
        facts.server = cur.execute("SHOW server_version").fetchone()[0]
        actual = postgres_actual(cur)
        facts.tc_tables = bool(actual)
        facts.schema_problems = verify(Dialect.POSTGRES, actual) if actual else []
        present = [name for name in TC_TABLE_NAMES if name in actual]
        readable = (
            "tc_rooms" in actual and cur.execute("SELECT has_table_privilege('tc_rooms', 'SELECT')").fetchone()[0]
        )
        if readable and not facts.schema_problems:
            facts.rooms, facts.persistent_rooms = cur.execute(
                "SELECT COUNT(*), COUNT(*) FILTER (WHERE type = 'persistent') FROM tc_rooms"
            ).fetchone()
        if present:
            facts.tc_bytes = cur.execute(
                "SELECT COALESCE(SUM(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
                "WHERE c.relnamespace = current_schema()::regnamespace AND c.relname = ANY(%s) AND c.relkind = 'r'",
                (present,),
            ).fetchone()[0]
        needed = ("SELECT",) if role == "source" else ("SELECT", "INSERT", "UPDATE")
        for name in present:
            for privilege in needed:
                if not cur.execute("SELECT has_table_privilege(%s, %s)", (name, privilege)).fetchone()[0]:
                    facts.missing_privileges.append(f"{privilege} on {name}")
        if role == "destination":
            if not cur.execute("SELECT has_database_privilege(current_database(), 'TEMP')").fetchone()[0]:
                facts.missing_privileges.append("TEMPORARY on the database (for the staging tables)")
            record = cur.execute("SELECT to_regclass(%s) IS NOT NULL", (q.MERGE_RECORD_TABLE,)).fetchone()[0]
            if (not record or not present) and not cur.execute(
                "SELECT has_schema_privilege(current_schema(), 'CREATE')"
            ).fetchone()[0]:
                facts.missing_privileges.append("CREATE TABLE in the schema (for the merge record and TC tables)")
            if record:
                facts.merged_pairs = dict(
                    cur.execute(
                        sql.SQL("SELECT source_pair, max(job_id) FROM {} GROUP BY source_pair").format(
                            sql.Identifier(q.MERGE_RECORD_TABLE)
                        )
                    ).fetchall()
                )
            if method == "dblink":
                if not cur.execute("SELECT 1 FROM pg_extension WHERE extname = 'dblink'").fetchone():
                    facts.missing_privileges.append("the dblink extension (CREATE EXTENSION dblink, by the DB owner)")
                else:
                    # Every dblink function the transfer calls (DblinkTransport).
                    for signature in DBLINK_FUNCTIONS:
                        if not cur.execute("SELECT has_function_privilege(%s, 'EXECUTE')", (signature,)).fetchone()[0]:
                            facts.missing_privileges.append(f"EXECUTE on {signature}")
    return facts
