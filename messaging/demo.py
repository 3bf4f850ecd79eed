"""Persistent chat databases for the demo topology: one PostgreSQL database per redundancy
group with HA (both nodes share it), one per node without HA, on the local server."""

from __future__ import annotations

import psycopg
from psycopg import sql

from messaging.database_assignment import assign
from messaging.dbcheck.install import install_schema
from messaging.models import ChatSettings, DatabaseType, ExternalDatabase
from topology.models import Cluster, Node

DEMO_DATABASE_PREFIX = "imp_demo_tc_"


def _ensure_database(admin: dict, name: str) -> None:
    with psycopg.connect(dbname="postgres", autocommit=True, connect_timeout=5, **admin) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def _register(admin: dict, name: str) -> ExternalDatabase:
    """Create database ``name`` on the local server if needed, and its External Database entry."""
    _ensure_database(admin, name)
    database, _ = ExternalDatabase.objects.get_or_create(
        hostname=admin["host"],
        port=admin["port"],
        database_name=name,
        defaults={"db_type": DatabaseType.POSTGRES, "username": admin["user"]},
    )
    database.set_password(admin["password"] or "demo")
    database.save()
    return database


def provision_chat_databases(
    host: str, port: int, user: str, password: str = "", prefix: str = DEMO_DATABASE_PREFIX
) -> list[str]:
    """Create (or reuse) the demo's external databases, install the TC schema, assign them and
    enable persistent chat on every demo cluster. Returns one line per database, for the log."""
    admin = {"host": host, "port": port, "user": user, "password": password or None}
    shares: dict[str, list[Node]] = {}
    for node in Node.objects.select_related("redundancy_group").order_by("name"):
        group = node.redundancy_group
        key = group.name if group is not None and group.ha_enabled else node.name
        shares.setdefault(key, []).append(node)
    lines = []
    proposed = {}
    for key, nodes in shares.items():
        name = prefix + key.replace("-", "_")
        database = _register(admin, name)
        outcome = install_schema(database)
        if not outcome.ok:
            raise RuntimeError(f"{database}: {outcome.message}")
        proposed.update(dict.fromkeys(nodes, database))
        lines.append(f"{database}: {', '.join(node.name for node in nodes)}")
    assign(proposed)
    for cluster in Cluster.objects.all():
        settings = ChatSettings.for_cluster(cluster)
        settings.enable_persistent_chat = True
        settings.save()
    return lines


# --- The merge story: a group from before it had high availability ---------------------------

MERGE_STORY_GROUP = "subcluster2"
MERGED_SUFFIX = "_merged"


def prepare_merge_story(group_name: str = MERGE_STORY_GROUP) -> None:
    """Put the group in its state from before high availability (HA off), so that
    ``provision_chat_databases`` gives each of its nodes a database of its own."""
    from topology.models import RedundancyGroup

    RedundancyGroup.objects.filter(name=group_name).update(ha_enabled=False)


def fill_merge_story(
    host: str,
    port: int,
    user: str,
    password: str = "",
    prefix: str = DEMO_DATABASE_PREFIX,
    messages: int = 200_000,
    group_name: str = MERGE_STORY_GROUP,
) -> list[str]:
    """Give each node of the group a history in its own database (rooms of its alias, their
    members, ``messages`` room messages, all archived with ids from 1, as two per-node
    databases have them), and register an empty destination database for their merge.

    Databases that already hold rooms are left as they are (the demo keeps its state).
    """
    from messaging.aliases import aliases_of
    from messaging.database_assignment import database_for_node

    admin = {"host": host, "port": port, "user": user, "password": password or None}
    lines = []
    nodes = Node.objects.filter(redundancy_group__name=group_name).order_by("group_position")
    for node in nodes:
        database = database_for_node(node)
        owner = node.assigned_users.order_by("user_id").first()
        owner_jid = owner.jid if owner is not None else f"admin@{node.cluster.domain}"
        filled = _fill_history({**admin, "dbname": database.database_name}, aliases_of(node)[0], owner_jid, messages)
        lines.append(
            f"{database}: history of {node} ({filled} messages)" if filled else f"{database}: history of {node} kept"
        )
    destination = prefix + group_name.replace("-", "_") + MERGED_SUFFIX
    database = _register(admin, destination)
    lines.append(f"{database}: empty, the destination of their merge (not assigned)")
    return lines


def _fill_history(conninfo: dict, alias: str, owner_jid: str, messages: int) -> int:
    """COPY rooms, members, messages and their archive into one per-node database."""
    from datetime import UTC, datetime, timedelta

    from messaging.tc.stanzas import ChatMessage, RoomConfig

    rooms = max(10, messages // 2000)
    per_room = max(1, messages // rooms)
    start = datetime.now(UTC).replace(tzinfo=None) - timedelta(seconds=rooms * per_room)
    nick = owner_jid.split("@")[0]
    with psycopg.connect(connect_timeout=5, **conninfo) as conn:
        if conn.execute("SELECT EXISTS (SELECT 1 FROM tc_rooms)").fetchone()[0]:
            return 0
        jids = [f"team{n:03d}@{alias}" for n in range(rooms)]
        with conn.cursor().copy(
            "COPY tc_rooms (room_jid, creator_jid, subject, type, config, spacket, start_msg_id, next_msg_id) "
            "FROM STDIN"
        ) as copy:
            for jid in jids:
                config = RoomConfig(jid.split("@")[0], True, False, 50).to_xml()
                copy.write_row((jid, owner_jid, f"Team {jid[4:7]}", "persistent", config, "", 1, per_room + 1))
        with conn.cursor().copy(
            "COPY tc_users (room_jid, real_jid, role, affiliation, nick_jid, reason, initiator_jid) FROM STDIN"
        ) as copy:
            for jid in jids:
                copy.write_row((jid, owner_jid, "none", "owner", f"{jid}/{nick}", "", owner_jid))

        def history():
            for index, jid in enumerate(jids):
                for msg_id in range(1, per_room + 1):
                    stamp = start + timedelta(seconds=index * per_room + msg_id)
                    body = f"{nick} in {jid.split('@')[0]}, message {msg_id}"
                    cid = f"demo-{index}-{msg_id}"
                    yield (
                        jid,
                        msg_id,
                        stamp,
                        body,
                        ChatMessage(jid, msg_id, owner_jid, nick, body, stamp, cid).to_stanza(),
                    )

        # One COPY at a time on a connection: the room messages, then the same messages archived.
        with conn.cursor().copy("COPY tc_messages (msg_id, room_jid, stamp, msg) FROM STDIN") as copy:
            for jid, msg_id, stamp, _body, stanza in history():
                copy.write_row((msg_id, jid, stamp, stanza))
        archive_id = 0
        with conn.cursor().copy(
            "COPY tc_msgarchive (msg_id, to_jid, from_jid, nick_jid, sent_date, msg_type, body_len, message_len, "
            "body_string, message_string) FROM STDIN"
        ) as copy:
            for jid, _msg_id, stamp, body, stanza in history():
                archive_id += 1
                copy.write_row(
                    (archive_id, jid, owner_jid, f"{jid}/{nick}", stamp, "g", len(body), len(stanza), body, stanza)
                )
        conn.execute("UPDATE xcp_sequence SET new_id = %s WHERE name_id = 'tc_message_id'", (archive_id + 1,))
        conn.execute("ANALYZE")
    return rooms * per_room
