"""Failover and fallback timings with real node agents and a real shared PostgreSQL database.

    .venv/bin/python bench/failover.py [--rooms 1000] [--messages 1000000] [--users 1000]

Builds a throw-away config DB (SQLite, var/bench) and a throw-away PostgreSQL persistent chat
database holding ``--rooms`` persistent rooms of node A with ``--messages`` messages between
them, starts the node agents of A and B (``manage.py run_node``), then:

* failover: stops A's Text Conference Manager the way the Control Center does and measures,
  from the end of the critical service delay, when A's users are reassigned to B and when B
  has answered a history request for every one of A's rooms;
* fallback: presses Fallback the way the group page does and measures, from the press, when
  the users are back on A and when A has answered for every room again.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
BENCH_DIR = ROOT / "var" / "bench"
DELAY = 1.0
BENCH_PASSWORD = "bench-user-password"  # every generated user's chat password


def setup_django() -> Path:
    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    config_db = BENCH_DIR / f"configdb-{os.getpid()}.sqlite3"
    os.environ.update(
        SQLITE_PATH=str(config_db),
        IMP_VAR_DIR=str(BENCH_DIR),
        DJANGO_SETTINGS_MODULE="imp_admin.settings",
        SECRET_KEY=os.environ.get("SECRET_KEY", "bench-only-secret-key"),
        IMP_SECRETS_KEY=os.environ.get(
            "IMP_SECRETS_KEY", "YmVuY2gtb25seS1rZXktbm90LWZvci1wcm9kdWN0aW9uPT0="[:43] + "="
        ),
        DEBUG="1",
    )
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    return config_db


def pg_admin():
    import psycopg

    return psycopg.connect(host="127.0.0.1", port=5432, user="postgres", dbname="postgres", autocommit=True)


def build_world(db_name: str, users: int):
    from messaging.database_assignment import assign
    from messaging.models import ChatSettings, DatabaseType, ExternalDatabase
    from topology.models import Cluster, EndUser, Node, NodeServiceParameters, RedundancyGroup, ServiceParameters

    suffix = uuid.uuid4().hex[:6]
    cluster = Cluster.objects.create(name="bench", cluster_id="bench", domain="example.com")
    nodes = []
    for index, key in enumerate(("a", "b")):
        node = Node.objects.create(
            name=f"bench-{key}-{suffix}",
            cluster=cluster,
            ip_address="127.0.0.1",
            agent_host="127.0.0.1",
            agent_port=17400 + (os.getpid() % 500) * 2 + index,
        )
        NodeServiceParameters.objects.create(node=node, client_relogin_lower_limit=1, client_relogin_upper_limit=1)
        nodes.append(node)
    group = RedundancyGroup.objects.create(name="bench-group", cluster=cluster)
    group.set_servers(*nodes)
    group.ha_enabled = True
    group.save()
    database = ExternalDatabase(
        database_name=db_name, db_type=DatabaseType.POSTGRES, username="postgres", hostname="127.0.0.1", port=5432
    )
    database.set_password("")
    database.save()
    assign({nodes[0]: database, nodes[1]: database})
    chat = ChatSettings.for_cluster(cluster)
    chat.enable_persistent_chat = True
    chat.save()
    ServiceParameters.objects.create(
        cluster=cluster,
        heartbeat_interval=0.2,
        heartbeat_timeout=3,
        initialization_heartbeat_timeout=30,
        critical_service_delay=DELAY,
    )
    from topology.credentials import set_password

    EndUser.objects.bulk_create(
        [EndUser(user_id=f"user{i}", jid=f"user{i}@example.com", assigned_node=nodes[0]) for i in range(users)]
        + [EndUser(user_id="watcher", jid="watcher@example.com", assigned_node=nodes[1])]
    )
    for user in EndUser.objects.filter(assigned_node__in=nodes):
        set_password(user, BENCH_PASSWORD)
    return group, nodes


def start_agent(name: str) -> subprocess.Popen:
    log = (BENCH_DIR / f"agent-{name}.log").open("w")
    return subprocess.Popen(
        [sys.executable, "manage.py", "run_node", name, "--reconcile-interval", "0.1"],
        cwd=ROOT,
        env=dict(os.environ),
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def state(node) -> str:
    from topology.models import Node

    return Node.objects.get(pk=node.pk).ha_state


async def create_template_room(node) -> str:
    from messaging.chat.client import ChatClient

    client = ChatClient(
        "user0", node.agent_host, node.agent_port, password=BENCH_PASSWORD, max_relogin_delay=1, give_up_after=30
    )
    await client.connect()
    try:
        room = (await client.create(f"template-{uuid.uuid4().hex[:6]}"))["room"]
        await client.join(room)
        await client.post(room, "template message")
        return room
    finally:
        await client.close()


def fill_rooms(db_name: str, template: str, rooms: int, messages: int) -> list[str]:
    """Clone the template room ``rooms`` times and COPY ``messages`` messages among them."""
    import psycopg

    alias = template.split("@", 1)[1]
    jids = [f"bench{i}@{alias}" for i in range(rooms)]
    per_room = max(1, messages // rooms)
    with psycopg.connect(host="127.0.0.1", port=5432, user="postgres", dbname=db_name) as conn:
        row = conn.execute(
            "SELECT creator_jid, subject, type, config, spacket, start_msg_id FROM tc_rooms WHERE room_jid = %s",
            (template,),
        ).fetchone()
        stamp, msg = conn.execute("SELECT stamp, msg FROM tc_messages WHERE room_jid = %s", (template,)).fetchone()
        columns = "room_jid, creator_jid, subject, type, config, spacket, start_msg_id, next_msg_id"
        with conn.cursor().copy(f"COPY tc_rooms ({columns}) FROM STDIN") as copy:
            for jid in jids:
                copy.write_row((jid, *row[:4], (row[4] or "").replace(template, jid), row[5], per_room + 1))
        with conn.cursor().copy("COPY tc_messages (msg_id, room_jid, stamp, msg) FROM STDIN") as copy:
            for jid in jids:
                body = msg.replace(template, jid)
                for msg_id in range(1, per_room + 1):
                    copy.write_row((msg_id, jid, stamp, body))
        conn.execute("ANALYZE tc_messages")
    return jids


async def all_rooms_answer(node, user: str, jids: list[str]) -> float:
    """Ask ``node`` for the last message of every room; the time the last answer arrived."""
    from messaging.chat.client import ChatClient

    client = ChatClient(
        user, node.agent_host, node.agent_port, password=BENCH_PASSWORD, max_relogin_delay=0.2, give_up_after=60
    )
    await client.connect()
    gate = asyncio.Semaphore(64)

    async def one(jid: str) -> None:
        async with gate:
            for _ in range(300):  # bounded: the room may be a moment away from its new host
                try:
                    reply = await client.history(jid, limit=1)
                    assert reply["messages"], jid
                    return
                except Exception as exc:
                    if "try again" not in str(exc) and "unavailable" not in str(exc).lower():
                        raise
                    await asyncio.sleep(0.02)
            raise RuntimeError(f"{jid} never answered")

    try:
        await asyncio.gather(*(one(jid) for jid in jids))
        return time.time()
    finally:
        await client.close()


def ts(value: datetime) -> float:
    return value.timestamp()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rooms", type=int, default=1000)
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, default=1000)
    args = parser.parse_args()

    config_db = setup_django()
    from tests.conftest import wait_for
    from topology.catalog import ControlAction, ServiceName
    from topology.choices import HAState
    from topology.models import EndUser, HATransition, ServerAction, Service

    db_name = f"imp_bench_{uuid.uuid4().hex[:8]}"
    with pg_admin() as conn:
        conn.execute(f'CREATE DATABASE "{db_name}"')
    agents: list[subprocess.Popen] = []
    try:
        import psycopg

        from messaging.tc.schema import Dialect, install_statements

        with psycopg.connect(host="127.0.0.1", port=5432, user="postgres", dbname=db_name, autocommit=True) as conn:
            for statement in install_statements(Dialect.POSTGRES):
                conn.execute(statement)
        group, (a, b) = build_world(db_name, args.users)
        agents = [start_agent(a.name), start_agent(b.name)]
        wait_for(lambda: state(a) == state(b) == HAState.NORMAL, 120, "both Normal", interval=0.01)
        template = asyncio.run(create_template_room(a))
        started = time.time()
        jids = fill_rooms(db_name, template, args.rooms, args.messages)
        print(f"loaded {args.rooms} rooms, {args.messages} messages in {time.time() - started:.1f} s")
        # Baseline, no failover: A answers for every room, cold (rooms loaded on first request), then warm.
        started = time.time()
        cold = asyncio.run(all_rooms_answer(a, "user0", jids)) - started
        started = time.time()
        warm = asyncio.run(all_rooms_answer(a, "user0", jids)) - started

        # Failover: A's TC stopped as the Control Center does.
        Service.objects.get(node=a, name=ServiceName.TEXT_CONFERENCE_MANAGER).request(ControlAction.STOP)
        wait_for(lambda: state(b) == HAState.RUNNING_IN_BACKUP_MODE, 120, "B Running in Backup Mode", interval=0.01)
        served = asyncio.run(all_rooms_answer(b, "watcher", jids))
        down_at = ts(Service.objects.get(node=a, name=ServiceName.TEXT_CONFERENCE_MANAGER).status_changed_at)
        delay_end = down_at + DELAY
        takeover = HATransition.objects.get(node=b, to_state=HAState.TAKING_OVER)
        backup = HATransition.objects.get(node=b, to_state=HAState.RUNNING_IN_BACKUP_MODE)
        assert EndUser.objects.filter(assigned_node=a, active_node=b).count() == args.users
        failover = {
            "users reassigned": ts(takeover.at) - delay_end,
            "B Running in Backup Mode": ts(backup.at) - delay_end,
            "all rooms answered by B": served - delay_end,
        }

        # Fallback: A healthy again (Failed Over), then Fallback pressed.
        Service.objects.get(node=a, name=ServiceName.TEXT_CONFERENCE_MANAGER).request(ControlAction.START)
        wait_for(lambda: state(a) == HAState.FAILED_OVER, 120, "A Failed Over", interval=0.01)
        pressed = time.time()
        ServerAction.objects.create(group=group, node=a, action="fallback")
        wait_for(lambda: state(a) == state(b) == HAState.NORMAL, 120, "both Normal", interval=0.01)
        served = asyncio.run(all_rooms_answer(a, "user0", jids))
        released = HATransition.objects.filter(node=b, to_state=HAState.NORMAL).latest("at")
        normal = HATransition.objects.filter(node=a, to_state=HAState.NORMAL).latest("at")
        assert not EndUser.objects.filter(active_node__isnull=False).exists()
        fallback = {
            "users back on A": ts(released.at) - pressed,
            "A Normal": ts(normal.at) - pressed,
            "all rooms answered by A": served - pressed,
        }
        print(f"\nrooms={args.rooms} messages={args.messages} users={args.users} critical service delay={DELAY} s")
        out = io.StringIO()
        out.write("| phase | measure | seconds |\n| --- | --- | --- |\n")
        baseline = {"all rooms answered by A, cold": cold, "all rooms answered by A, warm": warm}
        for phase, figures in (
            ("baseline (no failover)", baseline),
            ("failover (from end of delay)", failover),
            ("fallback (from press)", fallback),
        ):
            for name, value in figures.items():
                out.write(f"| {phase} | {name} | {value:.3f} |\n")
        print(out.getvalue())
    finally:
        for agent in agents:
            agent.send_signal(signal.SIGTERM)
        for agent in agents:
            try:
                agent.wait(20)
            except subprocess.TimeoutExpired:
                agent.kill()
        with pg_admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
        for suffix in ("", "-wal", "-shm"):
            Path(f"{config_db}{suffix}").unlink(missing_ok=True)


if __name__ == "__main__":
    main()
