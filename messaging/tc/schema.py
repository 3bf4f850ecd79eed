"""The persistent chat schema (`tc_*` tables and `xcp_sequence`), one definition for all
three database types (reference section 7, keys from DESIGN.md).

The same column list generates the DDL for PostgreSQL, Oracle and SQL Server and drives
schema verification, so what is installed and what is checked cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Dialect(StrEnum):
    POSTGRES = "postgres"
    ORACLE = "oracle"
    MSSQL = "mssql"


class Kind(StrEnum):
    VARCHAR = "varchar"
    TEXT = "text"
    BIGINT = "bigint"
    INT = "int"
    TIMESTAMP = "timestamp"


# How each kind is spelled in each dialect (reference 7: VARCHAR2 in Oracle, nvarchar in
# SQL Server; TEXT is CLOB / nvarchar(MAX); BIGINT NUMBER(19); INT NUMBER(9); datetime).
TYPE_NAMES: dict[Dialect, dict[Kind, str]] = {
    Dialect.POSTGRES: {
        Kind.VARCHAR: "VARCHAR({length})",
        Kind.TEXT: "TEXT",
        Kind.BIGINT: "BIGINT",
        Kind.INT: "INTEGER",
        Kind.TIMESTAMP: "TIMESTAMP",
    },
    Dialect.ORACLE: {
        Kind.VARCHAR: "VARCHAR2({length})",
        Kind.TEXT: "CLOB",
        Kind.BIGINT: "NUMBER(19)",
        Kind.INT: "NUMBER(9)",
        Kind.TIMESTAMP: "TIMESTAMP",
    },
    Dialect.MSSQL: {
        Kind.VARCHAR: "NVARCHAR({length})",
        Kind.TEXT: "NVARCHAR(MAX)",
        Kind.BIGINT: "BIGINT",
        Kind.INT: "INT",
        Kind.TIMESTAMP: "DATETIME",
    },
}

# The names each database reports for a column of a kind, for verification.
REPORTED_TYPES: dict[Dialect, dict[Kind, set[str]]] = {
    Dialect.POSTGRES: {
        Kind.VARCHAR: {"character varying"},
        Kind.TEXT: {"text"},
        Kind.BIGINT: {"bigint"},
        Kind.INT: {"integer"},
        Kind.TIMESTAMP: {"timestamp without time zone", "timestamp with time zone"},
    },
    Dialect.ORACLE: {
        Kind.VARCHAR: {"VARCHAR2", "NVARCHAR2"},
        Kind.TEXT: {"CLOB", "NCLOB"},
        Kind.BIGINT: {"NUMBER"},
        Kind.INT: {"NUMBER"},
        Kind.TIMESTAMP: {"TIMESTAMP(6)", "TIMESTAMP", "DATE"},
    },
    Dialect.MSSQL: {
        Kind.VARCHAR: {"nvarchar", "varchar"},
        Kind.TEXT: {"nvarchar", "ntext", "varchar", "text"},
        Kind.BIGINT: {"bigint"},
        Kind.INT: {"int"},
        Kind.TIMESTAMP: {"datetime", "datetime2"},
    },
}


@dataclass(frozen=True)
class Column:
    name: str
    kind: Kind
    length: int | None = None
    nullable: bool = False
    check: tuple[str, ...] = ()  # allowed values, as a named CHECK constraint

    def type_sql(self, dialect: Dialect) -> str:
        return TYPE_NAMES[dialect][self.kind].format(length=self.length)


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...] = ()
    indexes: tuple[tuple[str, ...], ...] = field(default=())

    @property
    def column_names(self) -> list[str]:
        return [column.name for column in self.columns]


def _jid(name: str, nullable: bool = False) -> Column:
    return Column(name, Kind.VARCHAR, 3071, nullable)


TC_ROOMS = Table(
    "tc_rooms",
    (
        _jid("room_jid"),
        _jid("creator_jid"),
        Column("subject", Kind.VARCHAR, 255),
        Column("type", Kind.VARCHAR, 32, check=("ad-hoc", "persistent")),
        Column("config", Kind.TEXT),
        Column("spacket", Kind.TEXT),
        Column("start_msg_id", Kind.BIGINT),
        Column("next_msg_id", Kind.BIGINT),
    ),
    primary_key=("room_jid",),
)
TC_USERS = Table(
    "tc_users",
    (
        _jid("room_jid"),
        _jid("real_jid"),
        Column("role", Kind.VARCHAR, 32),
        Column("affiliation", Kind.VARCHAR, 32),
        _jid("nick_jid"),
        Column("reason", Kind.VARCHAR, 255),
        _jid("initiator_jid"),
    ),
    primary_key=("room_jid", "real_jid"),
)
TC_MESSAGES = Table(
    "tc_messages",
    (
        Column("msg_id", Kind.BIGINT),
        _jid("room_jid"),
        Column("stamp", Kind.TIMESTAMP),
        Column("msg", Kind.TEXT),
    ),
    primary_key=("room_jid", "msg_id"),
)
TC_TIMELOG = Table(
    "tc_timelog",
    (
        _jid("real_jid"),
        _jid("nick_jid"),
        Column("direction", Kind.VARCHAR, 1, check=("E", "L")),
        Column("stamp", Kind.TIMESTAMP),
    ),
)
TC_MSGARCHIVE = Table(
    "tc_msgarchive",
    (
        Column("msg_id", Kind.BIGINT),
        _jid("to_jid"),
        _jid("from_jid"),
        _jid("nick_jid"),
        Column("sent_date", Kind.TIMESTAMP),
        Column("msg_type", Kind.VARCHAR, 1),
        Column("body_len", Kind.INT),
        Column("message_len", Kind.INT),
        Column("body_string", Kind.VARCHAR, 4000, nullable=True),
        Column("message_string", Kind.VARCHAR, 4000, nullable=True),
        Column("body_text", Kind.TEXT, nullable=True),
        Column("message_text", Kind.TEXT, nullable=True),
        Column("subject", Kind.VARCHAR, 255, nullable=True),
    ),
    primary_key=("msg_id",),
)
XCP_SEQUENCE = Table(
    "xcp_sequence",
    (Column("name_id", Kind.VARCHAR, 64), Column("new_id", Kind.BIGINT)),
    primary_key=("name_id",),
)

TABLES: tuple[Table, ...] = (TC_ROOMS, TC_USERS, TC_MESSAGES, TC_TIMELOG, TC_MSGARCHIVE, XCP_SEQUENCE)
TABLES_BY_NAME = {table.name: table for table in TABLES}

# The fencing token: each home node's hosting epoch, bumped by every node that takes the home's
# rooms (a take-over, a take-back, a start) and checked by every commit of a post to those
# rooms; and the epoch each stored message was committed under. Not the product's tables, so
# installs, merges and schema checks leave them out: the Text Conference Manager creates them
# when it first starts on a database (``PostgresStore.ensure_fencing``).
TC_HOSTING_EPOCHS = Table(
    "tc_hosting_epochs",
    (
        Column("home_node", Kind.VARCHAR, 255),
        Column("epoch", Kind.BIGINT),
        Column("holder", Kind.VARCHAR, 255),
        Column("claimed_at", Kind.TIMESTAMP),
    ),
    primary_key=("home_node",),
)
TC_MESSAGE_EPOCHS = Table(
    "tc_message_epochs",
    (
        _jid("room_jid"),
        Column("msg_id", Kind.BIGINT),
        Column("epoch", Kind.BIGINT),
        Column("node", Kind.VARCHAR, 255),
    ),
    primary_key=("room_jid", "msg_id"),
)
FENCING_TABLES: tuple[Table, ...] = (TC_HOSTING_EPOCHS, TC_MESSAGE_EPOCHS)

# The row of xcp_sequence that hands out tc_msgarchive.msg_id values.
MESSAGE_ID_SEQUENCE = "tc_message_id"


def create_table_sql(table: Table, dialect: Dialect) -> str:
    """CREATE TABLE for one table. Names are fixed constants of this module, never input."""
    lines = []
    for column in table.columns:
        line = f"    {column.name} {column.type_sql(dialect)}{'' if column.nullable else ' NOT NULL'}"
        lines.append(line)
    for column in table.columns:
        if column.check:
            allowed = ", ".join(f"'{value}'" for value in column.check)
            lines.append(f"    CONSTRAINT {table.name}_check_{column.name} CHECK ({column.name} IN ({allowed}))")
    if table.primary_key:
        lines.append(f"    CONSTRAINT {table.name}_pkey PRIMARY KEY ({', '.join(table.primary_key)})")
    return f"CREATE TABLE {table.name} (\n" + ",\n".join(lines) + "\n)"


def index_sql(dialect: Dialect) -> list[str]:
    """Indexes the service's queries need beyond the primary keys."""
    statements = [
        "CREATE INDEX tc_timelog_stamp_idx ON tc_timelog (stamp)",
        "CREATE INDEX tc_msgarchive_to_jid_idx ON tc_msgarchive (to_jid, sent_date)",
    ]
    if dialect is Dialect.POSTGRES:
        # room_jid can be 3071 characters; hash the prefix-free way PostgreSQL allows.
        return [sql.replace("(to_jid, sent_date)", "(md5(to_jid), sent_date)") for sql in statements]
    if dialect is Dialect.MSSQL:
        # SQL Server cannot index nvarchar over 1700 bytes; the archive is read by id.
        return [statements[0]]
    return statements[:1]


def seed_sql(dialect: Dialect) -> list[str]:
    return ["INSERT INTO xcp_sequence (name_id, new_id) VALUES ('tc_message_id', 1)"]


def install_statements(dialect: Dialect) -> list[str]:
    """Every statement that installs the schema into an empty database, in order."""
    return [create_table_sql(table, dialect) for table in TABLES] + index_sql(dialect) + seed_sql(dialect)


@dataclass(frozen=True)
class ActualColumn:
    """A column as the database reports it."""

    type_name: str
    length: int | None
    nullable: bool


def verify(dialect: Dialect, actual: dict[str, dict[str, ActualColumn]]) -> list[str]:
    """Compare the reported tables (lower-case names) with the schema; return the problems.

    An empty list means the schema is valid. Each problem is a sentence naming the table
    and column, and what was expected.
    """
    problems = []
    for table in TABLES:
        columns = actual.get(table.name)
        if columns is None:
            problems.append(f"Table {table.name} is missing.")
            continue
        for column in table.columns:
            found = columns.get(column.name)
            if found is None:
                problems.append(f"Column {table.name}.{column.name} is missing.")
                continue
            if found.type_name not in REPORTED_TYPES[dialect][column.kind]:
                problems.append(
                    f"Column {table.name}.{column.name} is {found.type_name}; expected {column.type_sql(dialect)}."
                )
            elif column.kind is Kind.VARCHAR and found.length is not None and found.length < (column.length or 0):
                problems.append(
                    f"Column {table.name}.{column.name} holds {found.length} characters; "
                    f"expected at least {column.length}."
                )
    return problems


# From pg_catalog rather than information_schema, which hides the columns of tables the
# user holds no privilege on: a table someone else created still conflicts with the schema.
POSTGRES_COLUMNS_SQL = """
    SELECT c.relname, a.attname, format_type(a.atttypid, NULL),
           CASE WHEN a.atttypid = 'varchar'::regtype AND a.atttypmod > 4 THEN a.atttypmod - 4 END,
           NOT a.attnotnull
    FROM pg_catalog.pg_class c
    JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
    WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'p', 'v')
      AND c.relname = ANY(%s)
"""


def postgres_actual(cursor) -> dict[str, dict[str, ActualColumn]]:
    """Read the columns of the TC tables from a psycopg cursor."""
    cursor.execute(POSTGRES_COLUMNS_SQL, ([table.name for table in TABLES],))
    actual: dict[str, dict[str, ActualColumn]] = {}
    for table_name, column_name, data_type, length, nullable in cursor.fetchall():
        actual.setdefault(table_name, {})[column_name] = ActualColumn(data_type, length, nullable)
    return actual
