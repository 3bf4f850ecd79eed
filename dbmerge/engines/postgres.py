# ruff: noqa: S608 -- SQL is assembled from the schema module's constant names; values are bind parameters.
"""The merge engine for PostgreSQL: COPY (FORMAT BINARY) streamed through the worker, or
dblink pulled by the destination; plus the facts validation needs about each database.

Sources are opened read-only in one REPEATABLE READ snapshot; every write to the destination
happens in one transaction, committed only when the whole merge succeeded.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import psycopg
from psycopg import ClientCursor, sql
from psycopg.conninfo import make_conninfo

from dbmerge.engines import plan
from dbmerge.engines import sqlbuild as q
from dbmerge.engines.base import CANCELLED_REASON, MergeCancelled, MergeError, MergeHooks, MergeReport
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
# No JIT: the merge's large statements are bound by the rows they move, and compiling them
# costs about a second each (inlining and optimisation start at 500,000 in estimated cost).
DESTINATION_TRANSACTION = (
    "SET LOCAL work_mem = '256MB'",
    "SET LOCAL maintenance_work_mem = '512MB'",
    "SET LOCAL jit = off",
)
# For the look-up of moved archive rows identical to the destination's (one key look-up
# each): parallel workers, although the planner, which has not seen the rows just written,
# expects too few rows to pay for them. Reset after that one query.
PARALLEL_LOOKUP = ("parallel_setup_cost", "parallel_tuple_cost", "min_parallel_index_scan_size")
# For the insert of staged archive rows that are not duplicates: one look-up by key per staged
# row, not a hash of the destination's colliding rows, which at 1M rows outgrows work_mem and
# spills to disk (1M rows: 2.0 s against 3.5 s). Only where the archive has an index on msg_id.
KEY_LOOKUP = ("enable_hashjoin", "enable_mergejoin")
ARCHIVE_KEYED_SQL = (
    "SELECT EXISTS (SELECT 1 FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
    "AND a.attnum = i.indkey[0] WHERE i.indrelid = 'tc_msgarchive'::regclass AND a.attname = 'msg_id')"
)


STAGING_TABLES = (
    q.STAGE_ROOMS,
    q.STAGE_USERS,
    q.STAGE_SEQUENCE,
    q.STAGE_ROOM_STATS,
    q.STAGE_SHARED,
    q.STAGE_IDS,
    q.STAGE_MESSAGES,
    q.STAGE_DUPS,
    q.STAGE_ARCHIVE,
)


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
    stages_archive = True

    def __init__(self, database: PostgresDatabase, hooks: MergeHooks | None = None) -> None:
        self.label = database.label
        self.hooks = hooks or MergeHooks()
        self.conn = connect(database)
        self.conn.execute("SET statement_timeout = 0")
        for statement in DESTINATION_SESSION:
            self.conn.execute(statement)
        self.fingerprint = self.conn.execute(FINGERPRINT_SQL).fetchone()[0]

    def execute(self, text: str, params: dict | None = None) -> int:
        self.hooks.raise_if_cancelled()
        started = time.monotonic()
        try:
            rows = self.conn.execute(text, params or None).rowcount
        except psycopg.errors.QueryCanceled:
            if self.hooks.cancelled:
                logger.info(
                    "Cancel stopped the statement running in %s after %.1f s: %s",
                    self.label,
                    time.monotonic() - started,
                    " ".join(text.split())[:80],
                )
            raise
        logger.debug("%.2f s, %s rows: %s", time.monotonic() - started, rows, " ".join(text.split())[:160])
        return rows

    def query(self, text: str, params: dict | None = None) -> list[tuple]:
        self.hooks.raise_if_cancelled()
        started = time.monotonic()
        rows = self.conn.execute(text, params or None).fetchall()
        logger.debug("%.2f s, query: %s", time.monotonic() - started, " ".join(text.split())[:160])
        return rows

    def analyze(self, table: str) -> None:
        self.conn.execute(f"ANALYZE {table}")

    def insert_staged_archive(self, runs: list[tuple[int, int, int]]) -> int:
        statement = q.insert_staged_archive(runs)
        if not self.conn.execute(ARCHIVE_KEYED_SQL).fetchone()[0]:
            return self.execute(statement.text, statement.params)
        for setting in KEY_LOOKUP:
            self.conn.execute(f"SET LOCAL {setting} = off")
        inserted = self.execute(statement.text, statement.params)
        for setting in KEY_LOOKUP:
            self.conn.execute(f"SET LOCAL {setting} = DEFAULT")
        return inserted

    def delete_moved_duplicates(self, runs: list[tuple[int, int, int]]) -> int:
        # Found by a SELECT first: it can share the look-ups among parallel workers, a DELETE
        # cannot. Then deleted by key.
        statement = q.moved_duplicates_select(runs)
        for setting in PARALLEL_LOOKUP:
            self.conn.execute(f"SET LOCAL {setting} = 0")
        ids = [row[0] for row in self.query(statement.text, statement.params)]
        for setting in PARALLEL_LOOKUP:
            self.conn.execute(f"SET LOCAL {setting} = DEFAULT")
        if not ids:
            return 0
        return self.execute("DELETE FROM tc_msgarchive WHERE msg_id = ANY(%(ids)s)", {"ids": ids})

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
        self._create_staging()
        return notes

    def _create_staging(self) -> None:
        copies = (
            (q.STAGE_ROOMS, "tc_rooms"),
            (q.STAGE_USERS, "tc_users"),
            (q.STAGE_SEQUENCE, "xcp_sequence"),
            (q.STAGE_ARCHIVE, "tc_msgarchive"),  # colliding rows, when many are duplicates
        )
        for name, like in copies:
            self.conn.execute(f"CREATE TEMP TABLE {name} (LIKE {like}) ON COMMIT DROP")
        self.conn.execute(f"CREATE TEMP TABLE {q.STAGE_MESSAGES} (LIKE tc_messages) ON COMMIT DROP")
        self.conn.execute(f"CREATE TEMP TABLE {q.STAGE_DUPS} (room_jid VARCHAR(3071), msg_id BIGINT) ON COMMIT DROP")
        for staged in (q.room_stats_columns(Dialect.POSTGRES), q.ids_columns(Dialect.POSTGRES)):
            columns = ", ".join(f"{n} {t}" for n, t in staged.columns)
            self.conn.execute(f"CREATE TEMP TABLE {staged.table} ({columns}) ON COMMIT DROP")
        self.conn.execute(
            f"CREATE TEMP TABLE {q.STAGE_SHARED} (room_jid VARCHAR(3071) PRIMARY KEY, t_n BIGINT, t_lo BIGINT, "
            "t_hi BIGINT, t_last TIMESTAMP, s_n BIGINT, s_lo BIGINT, s_hi BIGINT, s_last TIMESTAMP, dups BIGINT, "
            "renumber CHAR(1), latest CHAR(1), shift BIGINT) ON COMMIT DROP"
        )

    def clear_staging(self) -> None:
        self.conn.execute("TRUNCATE " + ", ".join(STAGING_TABLES))


class PreviewDestination(PostgresDestination):
    """The destination of a merge preview: the merge runs unchanged, against temporary copies.

    Each TC table and the merge record are copied into a temporary table of the same name
    (PostgreSQL looks up the temporary schema first, so every statement of the merge reads
    and writes the copy), then the transaction is made READ ONLY: the server itself refuses
    any write to a real table, and the caller rolls back. The figures are those of the real
    merge because the same code computed them on the same rows.
    """

    def prepare(self) -> list[str]:
        notes = []
        for statement in DESTINATION_TRANSACTION:
            self.conn.execute(statement)
        schema = self.conn.execute("SELECT current_schema()").fetchone()[0]
        with self.conn.cursor() as cur:
            actual = postgres_actual(cur)
        path = self.conn.execute("SHOW search_path").fetchone()[0]
        self.conn.execute("SET LOCAL search_path = pg_temp")
        if not actual:
            for statement in install_statements(Dialect.POSTGRES):
                self.conn.execute(statement)
            notes.append(f"{self.label} holds no TC tables; the merge will install the TC schema in it.")
        else:
            problems = verify(Dialect.POSTGRES, actual)
            if problems:
                raise MergeError(f"{self.label} does not hold a valid TC schema: " + " ".join(problems))
        real_record = self.conn.execute(
            "SELECT to_regclass(format('%%I.%%I', %s::text, %s::text)) IS NOT NULL", (schema, q.MERGE_RECORD_TABLE)
        ).fetchone()[0]
        copies = (TC_TABLE_NAMES if actual else []) + ([q.MERGE_RECORD_TABLE] if real_record else [])
        for name in copies:
            real = sql.Identifier(schema, name)
            self.conn.execute(
                sql.SQL("CREATE TEMP TABLE {} (LIKE {} INCLUDING ALL) ON COMMIT DROP").format(
                    sql.Identifier(name), real
                )
            )
            self.conn.execute(sql.SQL("INSERT INTO pg_temp.{} SELECT * FROM {}").format(sql.Identifier(name), real))
            self.conn.execute(sql.SQL("ANALYZE pg_temp.{}").format(sql.Identifier(name)))
        if not real_record:
            self.conn.execute(q.merge_record_create(Dialect.POSTGRES))
        self.conn.execute(sql.SQL("SET LOCAL search_path = {}").format(sql.Literal(path)))
        self._create_staging()
        # From here on the server refuses every write but to temporary tables.
        self.conn.execute("SET LOCAL transaction_read_only = on")
        return notes

    def clear_staging(self) -> None:
        for table in STAGING_TABLES:  # TRUNCATE is refused in a read-only transaction
            self.conn.execute(f"DELETE FROM {table}")


class CopyTransport(plan.Transport):
    """COPY ... TO STDOUT (FORMAT BINARY) from the source into COPY ... FROM STDIN on the
    destination, block by block: the worker never holds more than a block."""

    name = "copy"

    def __init__(self, destination: PostgresDestination) -> None:
        self.destination = destination

    def transfer(self, source, statement, into, on_rows=lambda rows: None) -> int:
        copy_out = f"COPY ({statement.text}) TO STDOUT (FORMAT BINARY)"
        copy_in = f"COPY {into.table} ({', '.join(into.names)}) FROM STDIN (FORMAT BINARY)"
        started = time.monotonic()
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
            logger.debug(
                "%.2f s, %s rows: COPY from %s into %s",
                time.monotonic() - started,
                in_cur.rowcount,
                source.label,
                into.table,
            )
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
    preview: bool = False,
) -> MergeReport:
    """Merge two PostgreSQL sources into ``destination`` (committed only on success).

    ``preview``: run the same merge against temporary copies of the destination's tables in
    a read-only transaction, then roll back (``PreviewDestination``); the report is what the
    merge would report, and nothing is written.

    Every connection is registered with ``hooks.on_interrupt``: a Cancel cancels the statement
    it is running (``cancel_safe``, a cancel request on its own socket), the destination's
    transaction is rolled back when the connections close, and MergeCancelled is raised.
    """
    hooks = hooks or MergeHooks()
    opened: list[psycopg.Connection] = []
    forget: list = []

    def interruptible(conn: psycopg.Connection) -> psycopg.Connection:
        opened.append(conn)
        forget.append(hooks.on_interrupt(lambda: conn.cancel_safe(timeout=5)))
        return conn

    try:
        source_sides = []
        for database in sources:
            side = PostgresSource(database)
            interruptible(side.conn)
            source_sides.append(side)
        target = (PreviewDestination if preview else PostgresDestination)(destination, hooks)
        interruptible(target.conn)
        hooks.raise_if_cancelled()
        transport: plan.Transport
        if method == "dblink":
            transport = DblinkTransport(target, source_sides)
        elif method == "copy":
            transport = CopyTransport(target)
        else:
            raise MergeError(f"Unknown transfer method {method!r}; use copy or dblink.")
        report = plan.merge(target, source_sides, transport, hooks, job_id)
        if isinstance(transport, DblinkTransport):
            transport.close()
        hooks.raise_if_cancelled()
        if preview:
            target.conn.rollback()
            report.preview = True
            return report
        hooks.confirm_commit()
        target.conn.commit()
        logger.info("Committed the merge into %s.", destination.label)
        return report
    except psycopg.Error as exc:
        if hooks.cancelled:
            raise MergeCancelled(CANCELLED_REASON) from exc
        raise MergeError(f"The merge stopped on a database error: {_first_line(exc)}") from exc
    except MergeError:
        if hooks.cancelled:  # a database error reworded by a step, caused by the cancel
            raise MergeCancelled(CANCELLED_REASON) from None
        raise
    finally:
        for unregister in forget:
            unregister()
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


def inspect(
    database: PostgresDatabase, role: str, method: str = "copy", timeout: int = 5, hooks: MergeHooks | None = None
) -> DatabaseFacts:
    """Connect (raises MergeError when unreachable or login fails) and gather the facts.

    ``role`` is "source" or "destination": what privileges are checked depends on it. With
    ``hooks``, a Cancel cancels the statement running (one waiting for a lock, say) and
    MergeCancelled is raised.
    """
    hooks = hooks or MergeHooks()
    try:
        with connect(database, connect_timeout=timeout, autocommit=True) as conn:
            forget = hooks.on_interrupt(lambda: conn.cancel_safe(timeout=5))
            try:
                hooks.raise_if_cancelled()
                return _facts(conn, role, method)
            finally:
                forget()
    except psycopg.Error as exc:
        if hooks.cancelled:
            raise MergeCancelled(CANCELLED_REASON) from exc
        raise


def _facts(conn: psycopg.Connection, role: str, method: str) -> DatabaseFacts:
    facts = DatabaseFacts()
    with conn.cursor() as cur:
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
