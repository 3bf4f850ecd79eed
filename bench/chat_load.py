"""Chat load generator: N users posting at a set rate through the real chat protocol.

    .venv/bin/python bench/chat_load.py throughput --users 50 --seconds 10
    .venv/bin/python bench/chat_load.py failover --users 50 --rate 2 --scenario failover|fallback|kill
    .venv/bin/python bench/chat_load.py start --rooms 1000 --messages 1000000

``throughput`` runs one node (XCP Router + Text Conference Manager) in this process against a
throw-away PostgreSQL database and prints messages/s acknowledged, p50/p99 post-to-ack
latency, with "Archive all room messages" on and off.

``failover`` builds the reference topology (1A, 1B, 2A, 2B in cluster 1, C2A in cluster 2) in
a throw-away config DB, starts a real node agent (``manage.py run_node``) per node, has every
user post to one room hosted on 1A, then fails TC on 1A (``failover``), continues with a
Fallback (``fallback``), or SIGKILLs 1A's agent (``kill``). It prints acknowledged, lost and
duplicated messages, the longest gap in service per user, and the service gap of the users of
1A during the failover. Needs PostgreSQL and Redis on loopback (PGHOST/PGPORT/PGUSER, REDIS_URL).

``start`` fills 1A's database with ``--rooms`` persistent rooms and ``--messages`` messages
among them, then starts 1A's XCP Router and Text Conference Manager in this process (a normal
start, rooms already in the database) and prints how long the TC took to start and when one
client had a history answer for every room, cold (right after the start) and warm.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
WORK = Path(tempfile.mkdtemp(prefix="chat-load-"))
os.environ.setdefault("SECRET_KEY", "bench-only-secret-key-not-for-production-0123456789")
os.environ.setdefault("IMP_SECRETS_KEY", "dGVzdC1vbmx5LWtleS1ub3QtZm9yLXByb2R1Y3Rpb24=")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "imp_admin.settings")
os.environ["SQLITE_PATH"] = str(WORK / "config.sqlite3")
os.environ["IMP_VAR_DIR"] = str(WORK)
os.environ["CHAT_BUS_PREFIX"] = f"imp-chat-bench-{uuid.uuid4().hex[:8]}"
# Node names are unique per run too: the bus channels are named after the nodes.
SUFFIX = uuid.uuid4().hex[:6]
BENCH_PASSWORD = "bench-user-password"  # every generated user's chat password

import django  # noqa: E402

django.setup()

import psycopg  # noqa: E402
from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from psycopg import sql  # noqa: E402

from messaging.aliases import aliases_of  # noqa: E402
from messaging.chat.client import ChatClient  # noqa: E402
from messaging.database_assignment import assign, database_for_node  # noqa: E402
from messaging.models import ChatSettings, DatabaseType, ExternalDatabase  # noqa: E402
from messaging.router.core import XcpRouter  # noqa: E402
from messaging.tc.schema import Dialect, install_statements  # noqa: E402
from messaging.tc.service import TextConferenceManager  # noqa: E402
from messaging.tc.stanzas import ChatMessage, RoomConfig  # noqa: E402
from tests.conftest import wait_for  # noqa: E402
from topology.catalog import ControlAction, ServiceName  # noqa: E402
from topology.choices import HAState  # noqa: E402
from topology.credentials import set_password  # noqa: E402
from topology.models import (  # noqa: E402
    Cluster,
    EndUser,
    Node,
    NodeServiceParameters,
    RedundancyGroup,
    ServerAction,
    Service,
    ServiceParameters,
)

PG = {
    "host": os.environ.get("PGHOST", "127.0.0.1"),
    "port": int(os.environ.get("PGPORT", "5432")),
    "user": os.environ.get("PGUSER", "postgres"),
}
DATABASES: list[str] = []


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def new_tc_database() -> ExternalDatabase:
    name = f"imp_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(dbname="postgres", autocommit=True, **PG) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    DATABASES.append(name)
    with psycopg.connect(dbname=name, autocommit=True, **PG) as conn:
        for statement in install_statements(Dialect.POSTGRES):
            conn.execute(statement)
    database = ExternalDatabase(
        database_name=name, db_type=DatabaseType.POSTGRES, username=PG["user"], hostname=PG["host"], port=PG["port"]
    )
    database.set_password("")
    database.save()
    return database


def drop_databases() -> None:
    with psycopg.connect(dbname="postgres", autocommit=True, **PG) as conn:
        for name in DATABASES:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def build_topology(users: int) -> dict[str, Node]:
    call_command("migrate", verbosity=0)
    cluster1 = Cluster.objects.create(name="cluster1", cluster_id="imp1", domain="example.com")
    cluster2 = Cluster.objects.create(name="cluster2", cluster_id="imp2", domain="example.com")
    nodes = {}
    for key, cluster in (("1a", cluster1), ("1b", cluster1), ("2a", cluster1), ("2b", cluster1), ("c2a", cluster2)):
        nodes[key] = Node.objects.create(
            name=f"imp-{key}-{SUFFIX}", cluster=cluster, ip_address="127.0.0.1", agent_port=free_port()
        )
        NodeServiceParameters.objects.create(
            node=nodes[key], client_relogin_lower_limit=1, client_relogin_upper_limit=2
        )
    for name, (first, second) in (("subcluster1", ("1a", "1b")), ("subcluster2", ("2a", "2b"))):
        group = RedundancyGroup.objects.create(name=name, cluster=cluster1)
        group.set_servers(nodes[first], nodes[second])
        group.ha_enabled = True
        group.save()
        database = new_tc_database()
        assign({nodes[first]: database, nodes[second]: database})
    RedundancyGroup.objects.create(name="c2-subcluster1", cluster=cluster2).set_servers(nodes["c2a"], None)
    chat = ChatSettings.for_cluster(cluster1)
    chat.enable_persistent_chat = True
    chat.default_max_occupancy = max(chat.default_max_occupancy, users + 10)
    chat.max_users_per_room = max(chat.max_users_per_room, users + 10)
    chat.save()
    params = ServiceParameters.for_cluster(cluster1.pk)
    params.heartbeat_interval, params.heartbeat_timeout = 0.5, 3
    params.initialization_heartbeat_timeout, params.critical_service_delay = 30, 3
    params.save()
    keys = ["1a", "1b", "2a", "2b", "c2a"]
    for n in range(users):
        user = EndUser.objects.create(
            user_id=f"user{n:03d}", jid=f"user{n:03d}@example.com", assigned_node=nodes[keys[n % len(keys)]]
        )
        set_password(user, BENCH_PASSWORD)
    return nodes


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else float("nan")


# --- throughput ------------------------------------------------------------------------------


async def throughput_run(node: Node, users: int, seconds: float, room_name: str) -> tuple[int, list[float], float]:
    router = XcpRouter(node)
    tc = TextConferenceManager(node, router)
    await router.start()
    await tc.start()
    clients = [
        ChatClient(f"user{n:03d}", node.agent_host, node.agent_port, password=BENCH_PASSWORD) for n in range(users)
    ]
    latencies: list[float] = []
    try:
        for client in clients:
            await client.connect()
        room = (await clients[0].create(room_name))["room"]
        for client in clients:
            await client.join(room, history=0)
        deadline = time.monotonic() + seconds

        async def post_loop(client):
            n = 0
            while time.monotonic() < deadline:
                started = time.perf_counter()
                await client.post(room, f"{client.user} {n}")
                latencies.append(time.perf_counter() - started)
                n += 1

        started = time.monotonic()
        await asyncio.gather(*(post_loop(c) for c in clients))
        elapsed = time.monotonic() - started
        return len(latencies), latencies, elapsed
    finally:
        for client in clients:
            with contextlib.suppress(Exception):
                await client.close()
        await tc.stop()
        await router.stop()


def throughput(args) -> None:
    nodes = build_topology(args.users)
    node = nodes["1a"]
    EndUser.objects.filter(user_id__startswith="user").update(assigned_node=node)
    chat = ChatSettings.for_cluster(node.cluster)
    print(f"throughput: {args.users} users in one room on one node, {args.seconds:.0f} s per run")
    for archive in (True, False):
        chat.archive_room_messages = archive
        chat.save()
        count, latencies, elapsed = asyncio.run(
            throughput_run(node, args.users, args.seconds, f"load-{'archive' if archive else 'plain'}")
        )
        print(
            f"  archive {'on ' if archive else 'off'}: {count / elapsed:8.0f} messages/s acknowledged, "
            f"p50 {percentile(latencies, 0.5) * 1000:6.1f} ms, p99 {percentile(latencies, 0.99) * 1000:6.1f} ms "
            f"({count} posts)"
        )


# --- failover ------------------------------------------------------------------------------


def start_agent(name: str) -> subprocess.Popen:
    log = (WORK / f"agent-{name}.log").open("w")
    return subprocess.Popen(
        [sys.executable, "manage.py", "run_node", name, "--reconcile-interval", "0.2", "--restart-delay", "1"],
        cwd=ROOT,
        env=dict(os.environ),
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def state(node: Node) -> str:
    return Node.objects.get(pk=node.pk).ha_state


class Poster:
    def __init__(self, user: str, node: Node) -> None:
        self.client = ChatClient(
            user, node.agent_host, node.agent_port, password=BENCH_PASSWORD, max_relogin_delay=2, give_up_after=120
        )
        self.acks: list[tuple[float, int, str]] = []

    async def run(self, room: str, rate: float, stop: asyncio.Event) -> None:
        n = 0
        while not stop.is_set():
            body = f"{self.client.user} {n}"
            ack = await self.client.post(room, body, retry_for=120)
            self.acks.append((time.monotonic(), ack["msg_id"], body))
            n += 1
            await asyncio.sleep(1 / rate)


async def failover_run(args, nodes: dict[str, Node]) -> None:
    agents = {key: start_agent(node.name) for key, node in nodes.items()}
    try:
        await asyncio.to_thread(
            wait_for,
            lambda: (
                all(state(nodes[k]) == HAState.NORMAL for k in ("1a", "1b", "2a", "2b"))
                and Service.objects.filter(name=ServiceName.TEXT_CONFERENCE_MANAGER, status="started").count() == 5
            ),
            90,
            f"every node Normal (agent logs in {WORK})",
            interval=0.2,
        )
        home_1a = await asyncio.to_thread(
            lambda: set(EndUser.objects.filter(assigned_node=nodes["1a"]).values_list("user_id", flat=True))
        )
        group = await asyncio.to_thread(RedundancyGroup.objects.get, members=nodes["1a"])
        users = EndUser.objects.select_related("assigned_node").order_by("user_id")
        posters = [Poster(u.user_id, u.assigned_node) for u in await asyncio.to_thread(list, users)]
        for poster in posters:
            await poster.client.connect()
        room = (await posters[0].client.create("load"))["room"]
        for poster in posters:
            await poster.client.join(room, history=0)
        stop = asyncio.Event()
        tasks = [asyncio.create_task(p.run(room, args.rate, stop)) for p in posters]
        await asyncio.sleep(args.warmup)
        if args.scenario == "kill":
            agents["1a"].send_signal(signal.SIGKILL)
        else:
            tc = await asyncio.to_thread(
                Service.objects.get, node=nodes["1a"], name=ServiceName.TEXT_CONFERENCE_MANAGER
            )
            await asyncio.to_thread(tc.request, ControlAction.STOP)
        await asyncio.to_thread(
            wait_for,
            lambda: state(nodes["1b"]) == HAState.RUNNING_IN_BACKUP_MODE,
            90,
            f"1B Running in Backup Mode (agent logs in {WORK})",
            interval=0.2,
        )
        await asyncio.sleep(args.settle)
        if args.scenario == "fallback":
            await asyncio.to_thread(tc.request, ControlAction.START)
            await asyncio.to_thread(
                wait_for,
                lambda: state(nodes["1a"]) == HAState.FAILED_OVER,
                90,
                f"1A Failed Over (agent logs in {WORK})",
                interval=0.2,
            )
            await asyncio.to_thread(ServerAction.objects.create, group=group, node=nodes["1a"], action="fallback")
            await asyncio.to_thread(
                wait_for,
                lambda: all(state(nodes[k]) == HAState.NORMAL for k in ("1a", "1b")),
                90,
                f"both Normal (agent logs in {WORK})",
                interval=0.2,
            )
            await asyncio.sleep(args.settle)
        stop.set()
        await asyncio.gather(*tasks)
        history, after = [], 0
        while True:
            page = (await posters[1].client.history(room, after=after, limit=100))["messages"]
            if not page:
                break
            history += page
            after = page[-1]["msg_id"]
        for poster in posters:
            await poster.client.close()
        report(args, posters, history, home_1a)
    finally:
        for process in agents.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in agents.values():
            with contextlib.suppress(Exception):
                process.wait(20)


def report(args, posters: list[Poster], history: list[dict], home_1a: set[str]) -> None:
    stored: dict[int, str] = {m["msg_id"]: m["body"] for m in history}
    bodies = [m["body"] for m in history]
    acked = [(msg_id, body) for p in posters for _, msg_id, body in p.acks]
    lost = [a for a in acked if stored.get(a[0]) != a[1]]
    duplicated = len(bodies) - len(set(bodies))
    gaps = {}
    for poster in posters:
        times = [t for t, _, _ in poster.acks]
        gaps[poster.client.user] = max((b - a for a, b in itertools.pairwise(times)), default=0.0)
    print(f"{args.scenario}: {len(posters)} users posting {args.rate}/s each to one room on 1A")
    print(f"  acknowledged {len(acked)}, stored {len(history)}, lost {len(lost)}, duplicated {duplicated}")
    worst = max(gaps, key=gaps.get)
    print(
        f"  longest gap in service per user: max {gaps[worst]:.2f} s ({worst}), "
        f"median {statistics.median(gaps.values()):.2f} s"
    )
    print(
        f"  service gap of 1A's users during the {args.scenario}: "
        f"max {max(gaps[u] for u in home_1a):.2f} s, median {statistics.median(gaps[u] for u in home_1a):.2f} s"
    )
    others = [gaps[u] for u in gaps if u not in home_1a]
    print(f"  service gap of the other users: max {max(others):.2f} s")
    if lost or duplicated:
        raise SystemExit("MESSAGES LOST OR DUPLICATED")


# --- normal start --------------------------------------------------------------------------


def fill_rooms(node: Node, rooms: int, messages: int) -> list[str]:
    """COPY ``rooms`` persistent rooms of ``node`` and ``messages`` messages among them."""
    alias = aliases_of(node)[0]
    jids = [f"bench{n}@{alias}" for n in range(rooms)]
    per_room = max(1, messages // rooms)
    stamp = datetime.now(UTC).replace(tzinfo=None)
    database = database_for_node(node)
    with psycopg.connect(dbname=database.database_name, **PG) as conn:
        with conn.cursor().copy(
            "COPY tc_rooms (room_jid, creator_jid, subject, type, config, spacket, start_msg_id, next_msg_id) "
            "FROM STDIN"
        ) as copy:
            for jid in jids:
                config = RoomConfig(jid.split("@")[0], True, False, 50).to_xml()
                copy.write_row((jid, "user000@example.com", "", "persistent", config, "", 1, per_room + 1))
        with conn.cursor().copy(
            "COPY tc_users (room_jid, real_jid, role, affiliation, nick_jid, reason, initiator_jid) FROM STDIN"
        ) as copy:
            for jid in jids:
                copy.write_row(
                    (jid, "user000@example.com", "none", "owner", f"{jid}/user000", "", "user000@example.com")
                )
        with conn.cursor().copy("COPY tc_messages (msg_id, room_jid, stamp, msg) FROM STDIN") as copy:
            for jid in jids:
                for msg_id in range(1, per_room + 1):
                    message = ChatMessage(
                        jid, msg_id, "user000@example.com", "user000", f"message {msg_id}", stamp, uuid.uuid4().hex
                    )
                    copy.write_row((msg_id, jid, stamp, message.to_stanza()))
        conn.execute("ANALYZE")
    return jids


async def every_room_answers(client: ChatClient, jids: list[str]) -> None:
    for jid in jids:
        reply = await client.history(jid, limit=1)
        assert reply["messages"], jid


async def start_run(node: Node, jids: list[str]) -> dict[str, float]:
    router = XcpRouter(node)
    tc = TextConferenceManager(node, router)
    await router.start()
    client = ChatClient("user000", node.agent_host, node.agent_port, password=BENCH_PASSWORD)
    try:
        started = time.perf_counter()
        await tc.start()
        tc_started = time.perf_counter() - started
        await client.connect()
        await every_room_answers(client, jids)
        cold = time.perf_counter() - started
        started = time.perf_counter()
        await every_room_answers(client, jids)
        warm = time.perf_counter() - started
        return {
            "TC started (rooms loaded)": tc_started,
            "all rooms answered, cold (from the start)": cold,
            "all rooms answered, warm": warm,
        }
    finally:
        with contextlib.suppress(Exception):
            await client.close()
        await tc.stop()
        await router.stop()


def normal_start(args) -> None:
    nodes = build_topology(1)
    node = nodes["1a"]
    started = time.monotonic()
    jids = fill_rooms(node, args.rooms, args.messages)
    took = time.monotonic() - started
    print(f"start: {args.rooms} rooms, {args.messages} messages loaded into 1A's database in {took:.1f} s")
    history_max = ChatSettings.for_cluster(node.cluster).history_max
    print(f"  one client asks each room for its last message, one request at a time (archive maximum {history_max})")
    for name, seconds in asyncio.run(start_run(node, jids)).items():
        print(f"  {name}: {seconds:.3f} s")


def failover(args) -> None:
    nodes = build_topology(args.users)
    asyncio.run(failover_run(args, nodes))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="mode", required=True)
    one = sub.add_parser("throughput")
    one.add_argument("--users", type=int, default=50)
    one.add_argument("--seconds", type=float, default=10)
    two = sub.add_parser("failover")
    two.add_argument("--users", type=int, default=50)
    two.add_argument("--rate", type=float, default=2.0, help="posts per second per user")
    two.add_argument("--scenario", choices=["failover", "fallback", "kill"], default="failover")
    two.add_argument("--warmup", type=float, default=3.0)
    two.add_argument("--settle", type=float, default=5.0)
    three = sub.add_parser("start")
    three.add_argument("--rooms", type=int, default=1000)
    three.add_argument("--messages", type=int, default=1_000_000)
    args = parser.parse_args()
    print(
        f"(config DB {settings.DATABASES['default']['NAME']}, bus prefix {settings.CHAT_BUS_PREFIX})"
        if hasattr(settings, "CHAT_BUS_PREFIX")
        else f"(work dir {WORK})"
    )
    try:
        {"throughput": throughput, "failover": failover, "start": normal_start}[args.mode](args)
    finally:
        drop_databases()


if __name__ == "__main__":
    main()
