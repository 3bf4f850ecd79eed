"""Fixtures of the merge suites: persistent chat databases on the real local PostgreSQL,
filled with generated rows, and their content read back for exact comparisons."""

from __future__ import annotations

import datetime as dt

import pytest

from dbmerge.engines.postgres import PostgresDatabase
from messaging.models import DatabaseType, ExternalDatabase
from messaging.tc.schema import TABLES, Dialect, install_statements
from tests.conftest import PG_ADMIN, celery_process, worker_arguments

ORDER = {
    "tc_rooms": "room_jid",
    "tc_users": "room_jid, real_jid",
    "tc_messages": "room_jid, msg_id",
    "tc_msgarchive": "msg_id",
    "tc_timelog": "real_jid, nick_jid, direction, stamp",
    "xcp_sequence": "name_id",
}
T0 = dt.datetime(2024, 3, 1, 9, 0, 0)


class ChatDatabase:
    """One persistent chat database on the local PostgreSQL server."""

    def __init__(self, factory, name: str) -> None:
        self.factory = factory
        self.name = name

    @property
    def engine(self) -> PostgresDatabase:
        return PostgresDatabase(self.name, {**PG_ADMIN, "dbname": self.name})

    def execute(self, statement: str, params=None) -> None:
        with self.factory.connect(self.name) as conn:
            conn.execute(statement, params)

    def rows(self) -> dict[str, list[tuple]]:
        """Every row of every TC table, in a fixed order."""
        with self.factory.connect(self.name) as conn:
            return {
                table.name: conn.execute(f"SELECT * FROM {table.name} ORDER BY {ORDER[table.name]}").fetchall()  # noqa: S608
                for table in TABLES
            }

    def room(self, jid, creator="owner@example.com", subject="", kind="persistent", next_msg_id=1, start=1):
        self.execute(
            "INSERT INTO tc_rooms VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            (jid, creator, subject, kind, f"<x>{subject}</x>", f"<s>{subject}</s>", start, next_msg_id),
        )

    def member(self, room, real_jid, role="participant", affiliation="member", reason=""):
        self.execute(
            "INSERT INTO tc_users VALUES (%s, %s, %s, %s, %s, %s, %s)",
            (room, real_jid, role, affiliation, f"{room}/{real_jid.split('@')[0]}", reason, "admin@example.com"),
        )

    def message(self, room, msg_id, minutes, text):
        self.execute(
            "INSERT INTO tc_messages VALUES (%s, %s, %s, %s)", (msg_id, room, T0 + dt.timedelta(minutes=minutes), text)
        )

    def archive(self, msg_id, room="lobby@conf.example.com", sender="alice@example.com", body="hello", **extra):
        row = {
            "msg_id": msg_id,
            "to_jid": room,
            "from_jid": sender,
            "nick_jid": f"{room}/{sender.split('@')[0]}",
            "sent_date": T0 + dt.timedelta(seconds=msg_id),
            "msg_type": "g",
            "body_len": len(body or ""),
            "message_len": len(body or "") + 40,
            "body_string": body,
            "message_string": f"<message>{body}</message>" if body is not None else None,
            "body_text": None,
            "message_text": None,
            "subject": None,
            **extra,
        }
        names = ", ".join(row)
        self.execute(
            f"INSERT INTO tc_msgarchive ({names}) VALUES ({', '.join(['%s'] * len(row))})",  # noqa: S608
            tuple(row.values()),
        )

    def timelog(self, real_jid, direction, minutes):
        self.execute(
            "INSERT INTO tc_timelog VALUES (%s, %s, %s, %s)",
            (
                real_jid,
                f"lobby@conf.example.com/{real_jid.split('@')[0]}",
                direction,
                T0 + dt.timedelta(minutes=minutes),
            ),
        )

    def sequence(self, new_id: int) -> None:
        self.execute("UPDATE xcp_sequence SET new_id = %s WHERE name_id = 'tc_message_id'", (new_id,))

    def external(self, db_type: str = DatabaseType.POSTGRES, **fields) -> ExternalDatabase:
        """An External Database entry of the console pointing at this database."""
        entry = ExternalDatabase(
            database_name=self.name,
            db_type=db_type,
            username=PG_ADMIN["user"],
            hostname=fields.pop("hostname", PG_ADMIN["host"]),
            port=PG_ADMIN["port"],
            **fields,
        )
        entry.set_password("unused-with-trust-auth")
        entry.save()
        return entry


@pytest.fixture
def chat_db(postgres):
    """A factory of persistent chat databases: ``chat_db()`` has the TC schema installed,
    ``chat_db(schema=False)`` is an empty database."""

    def make(schema: bool = True) -> ChatDatabase:
        name = postgres.database("imp_tc")
        database = ChatDatabase(postgres, name)
        if schema:
            with postgres.connect(name) as conn:
                for statement in install_statements(Dialect.POSTGRES):
                    conn.execute(statement)
        return database

    return make


def fill_generated(database: ChatDatabase, rows: int, rooms: int = 50, offset: int = 0) -> None:
    """``rows`` archive rows, half as many room messages, a fifth as many time log rows."""
    with database.factory.connect(database.name) as conn:
        conn.execute(
            "INSERT INTO tc_rooms SELECT 'room' || g || '@conf.example.com', 'owner@example.com', 'Room ' || g, "
            "'persistent', '<x/>', '<s/>', 1, %s FROM generate_series(1, %s) g",
            (rows, rooms),
        )
        conn.execute(
            "INSERT INTO tc_msgarchive SELECT g, 'room' || (g %% %s + 1) || '@conf.example.com', "
            "'user' || (g %% 997) || '@example.com', 'nick', timestamp '2024-01-01' + (g + %s) * interval '1 second', "
            "'g', 24, 80, 'message body number ' || g, '<message>body ' || g || '</message>', NULL, NULL, NULL "
            "FROM generate_series(1, %s) g",
            (rooms, offset, rows),
        )
        conn.execute(
            "INSERT INTO tc_messages SELECT g, 'room' || (g %% %s + 1) || '@conf.example.com', "
            "timestamp '2024-01-01' + (g + %s) * interval '1 second', '<message>history ' || g || '</message>' "
            "FROM generate_series(1, %s) g",
            (rooms, offset, rows // 2),
        )
        conn.execute(
            "INSERT INTO tc_timelog SELECT 'user' || (g %% 997) || '@example.com', 'room/nick', "
            "CASE WHEN g %% 2 = 0 THEN 'E' ELSE 'L' END, timestamp '2024-01-01' + g * interval '1 second' "
            "FROM generate_series(1, %s) g",
            (rows // 5,),
        )
        conn.execute("UPDATE xcp_sequence SET new_id = %s", (rows + 1,))
        conn.execute("ANALYZE")


@pytest.fixture
def celery_beat(celery_worker, tmp_path):
    """Celery beat as its own process beside the worker (as deployed), with the stale merge
    job check every second and the periodic external database checks off."""
    env = {"MERGE_STALE_CHECK_INTERVAL": "1", "EXTERNAL_DB_CHECK_INTERVAL": "0"}
    arguments = ("beat", "--loglevel=INFO", "--schedule", str(tmp_path / "beat-schedule"))
    with celery_process(tmp_path, "beat", *arguments, env=env) as process:
        yield process


def tc_stopped_on(node) -> None:
    """Make ``node``'s agent report (fresh heartbeat) with Text Conference Manager stopped,
    through the models the node agent writes."""
    from django.utils import timezone

    from topology.catalog import ServiceName, ServiceStatus
    from topology.models import Node, Service

    now = timezone.now()
    Node.objects.filter(pk=node.pk).update(last_heartbeat=now, heartbeat_expires_at=now + dt.timedelta(hours=1))
    Service.objects.update_or_create(
        node=node, name=ServiceName.TEXT_CONFERENCE_MANAGER, defaults={"status": ServiceStatus.STOPPED}
    )


def tc_running_on(node) -> None:
    from django.utils import timezone

    from topology.catalog import ServiceName, ServiceStatus
    from topology.models import Node, Service

    now = timezone.now()
    Node.objects.filter(pk=node.pk).update(last_heartbeat=now, heartbeat_expires_at=now + dt.timedelta(hours=1))
    Service.objects.update_or_create(
        node=node, name=ServiceName.TEXT_CONFERENCE_MANAGER, defaults={"status": ServiceStatus.STARTED}
    )


@pytest.fixture
def prefork_worker(transactional_db, tmp_path):
    """A real Celery worker with the prefork pool (one child process) on this run's queue.

    The suites' ``celery_worker`` runs the solo pool, which does not enforce time limits; the
    prefork pool does (its parent signals the child when the soft limit passes), as deployed.
    """
    with celery_process(tmp_path, "prefork-worker", *worker_arguments("prefork", "--concurrency=1")) as process:
        yield process
