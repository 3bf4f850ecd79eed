"""XMPP group chat load, side by side: a node agent's XMPP client port against ejabberd.

    .venv/bin/python bench/xmpp_load.py [--users 20,50] [--seconds 20] [--servers imp,ejabberd]
    .venv/bin/python bench/xmpp_load.py --smoke
    .venv/bin/python bench/xmpp_load.py --failover [--users 50]

Throughput (the default): N occupants of one room, each posting its next message as soon as
its previous one is reflected to it (XEP-0045: the reflection is the acknowledgement), for a
fixed time, against

- (a) ``imp``: one node agent (``manage.py run_node``) with its XMPP client port, persistent
  chat on a throw-away PostgreSQL database, "Archive all room messages" on, and a Redis server
  of the bench's own (so its CPU is the bench's);
- (b) ``ejabberd``: Debian's ejabberd (``apt-get install -y ejabberd erlang-p1-pgsql`` when
  missing: Debian packages its PostgreSQL driver apart; the system service is stopped and disabled).
  The bench runs its own instance from a configuration and spool in a temporary directory, on
  loopback ports, with everything (users, rooms, MAM) in a throw-away PostgreSQL database
  created with ejabberd's ``pg.sql``; rooms persistent, MAM on.

Both require STARTTLS and the clients sign in with SASL PLAIN. The clients run in
``--workers`` processes of their own (not the servers'), each a lean asyncio XMPP client that
finds its reflection and counts deliveries by scanning the bytes it reads (no XML tree):
slixmpp builds a stanza object per delivery and costs more CPU than the server it measures.
It prints, per server and N: messages/s acknowledged, deliveries/s, p50/p99 post-to-reflection
latency, CPU seconds of each server process and of the generator, and the ratio a/b.

``--failover``: two node agents A and B in one redundancy group with high availability, N XMPP
users of A posting (each after its reflection, ``--rate`` posts/s at most) to a room of A; the
Text Conference Manager of A is stopped as the Control Center does. Each client follows
``see-other-host`` to B at once (as slixmpp, Gajim or Conversations do), rejoins and posts
again (a post refused meanwhile is sent again with the same id). It prints, per user, the time
from the end of the critical service delay to the user's first post reflected by B, against
the goal "median ≤ Client Re-Login Upper Limit + 1 s"; it waits up to ``--settle`` seconds for
every user to get there. SRM timers: heartbeat every 0.5 s, timeout ``--heartbeat-timeout``
(10 s, the demo's; at 3 s the sign-in storm on B starved B's heartbeat on a loaded machine and
B fenced itself), critical service delay ``--delay``. ``--trace`` prints what three clients saw.

``--configdb postgres`` puts the config DB on PostgreSQL (a throw-away database) instead of
SQLite. ``--profile-agent FILE`` runs the node agent under cProfile (with ``--failover``, B's:
the one the users sign in on).

``--smoke``: 3 users for 2 s, the node only; the test suite runs it so the bench does not rot.

Needs PostgreSQL on loopback (PGHOST/PGPORT/PGUSER) and ``redis-server``; ejabberd is
installed with apt (root) when it is missing.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import multiprocessing
import os
import re
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "bench-user-password"  # every generated user's password, on both servers
DOMAIN = "example.com"
PG = {
    "host": os.environ.get("PGHOST", "127.0.0.1"),
    "port": int(os.environ.get("PGPORT", "5432")),
    "user": os.environ.get("PGUSER", "postgres"),
}

# --- the load generator's client (runs in worker processes: no Django here) -------------------

STREAM_OPEN = (
    "<?xml version='1.0'?><stream:stream to='{domain}' xmlns='jabber:client' "
    "xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>"
)
SEE_OTHER_HOST = re.compile(rb"<see-other-host[^>]*>([^<]+)</see-other-host>")
SELF_PRESENCE = re.compile(rb"code=['\"]110['\"]")
MESSAGE = b"<message"


class Refused(Exception):
    """The server refused a step of the sign-in or the join."""


@dataclass
class Target:
    """Where a client signs in and what it joins (picklable: it goes to worker processes)."""

    host: str
    port: int
    domain: str
    room: str
    configure_room: bool = False  # ejabberd: the creator submits the instant-room form


@dataclass
class ClientStats:
    user: str
    latencies: list[float] = field(default_factory=list)  # seconds, posts reflected in the window
    acknowledged: int = 0
    deliveries: int = 0
    errors: int = 0
    sessions: int = 0
    last_error: str = ""
    trace: list[str] = field(default_factory=list)  # --failover: what happened when, for a report
    first_reflection_on: dict[int, float] = field(default_factory=dict)  # port → wall time


class LeanClient:
    """An XMPP client that does only what the load needs: STARTTLS, SASL PLAIN, bind, MUC join,
    groupchat posts. Incoming bytes are scanned, not parsed: a delivery is a ``<message``, the
    reflection of a post is the post's id (unique per post) in a start tag without ``error``."""

    def __init__(self, user: str, target: Target, window: tuple[float, float] = (0.0, float("inf"))) -> None:
        self.user = user
        self.target = target
        self.address = (target.host, target.port)
        self.window = window
        self.stats = ClientStats(user)
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.buffer = b""  # read, not yet matched (sign-in and join)
        self.carry = b""  # the last bytes read, for a marker split between two reads
        self.tail = b""
        self.pending: bytes | None = None  # id of the post awaiting its reflection
        self.reflected: asyncio.Future | None = None
        self.moved_to: tuple[str, int] | None = None
        self.ended = False  # the stream ended (read_loop saw its end)
        self.counter = 0

    # sign-in and join, before the load: read until a pattern shows up

    async def _expect(self, pattern: bytes | re.Pattern, timeout: float = 30) -> re.Match | int:
        async with asyncio.timeout(timeout):
            while True:
                found = pattern.search(self.buffer) if isinstance(pattern, re.Pattern) else None
                if found is not None:
                    self.buffer = self.buffer[found.end() :]
                    return found
                if isinstance(pattern, bytes) and (at := self.buffer.find(pattern)) >= 0:
                    self.buffer = self.buffer[at + len(pattern) :]
                    return at
                for refusal in (b"<failure", b"<stream:error", b"type='error'", b'type="error"'):
                    if refusal in self.buffer:
                        raise Refused(f"{self.user}: {self.buffer[:600].decode(errors='replace')}")
                data = await self.reader.read(65536)
                if not data:
                    raise Refused(f"{self.user}: the server closed the stream ({self.buffer[:300]!r})")
                self.buffer += data

    def _send(self, text: str) -> None:
        self.writer.write(text.encode())

    async def _open_stream(self) -> None:
        self._send(STREAM_OPEN.format(domain=self.target.domain))
        await self._expect(b"</stream:features>")

    async def connect(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(*self.address)
        self.buffer, self.ended = b"", False
        await self._open_stream()
        self._send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
        await self._expect(b"<proceed")
        context = ssl.create_default_context()
        context.check_hostname = False  # a load generator: the servers' self-made certificates
        context.verify_mode = ssl.CERT_NONE
        await self.writer.start_tls(context, server_hostname=self.target.domain)
        self.buffer = b""
        await self._open_stream()
        plain = base64.b64encode(f"\0{self.user}\0{PASSWORD}".encode()).decode()
        self._send(f"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{plain}</auth>")
        await self._expect(b"<success")
        self.buffer = b""
        await self._open_stream()
        self._send(
            "<iq type='set' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
            "<resource>load</resource></bind></iq>"
        )
        await self._expect(b"</jid>")
        self.stats.sessions += 1
        self.stats.trace.append(f"{time.time():.2f} signed in on {self.address[1]}")

    async def join(self, create: bool = False) -> None:
        room = self.target.room
        self._send(
            f"<presence to='{room}/{self.user}'><x xmlns='http://jabber.org/protocol/muc'>"
            "<history maxstanzas='0'/></x></presence>"
        )
        await self._expect(SELF_PRESENCE)
        if create and self.target.configure_room:
            self._send(
                f"<iq type='set' id='config1' to='{room}'><query xmlns='http://jabber.org/protocol/muc#owner'>"
                "<x xmlns='jabber:x:data' type='submit'/></query></iq>"
            )
            await self._expect(re.compile(rb"id=['\"]config1['\"]"))

    async def close(self) -> None:
        if self.writer is None:
            return
        with contextlib.suppress(Exception):
            self._send("</stream:stream>")
            self.writer.close()
            async with asyncio.timeout(2):
                await self.writer.wait_closed()

    # the load

    def _scan(self, data: bytes, now: float) -> None:
        """Count deliveries in ``data``; find the pending post's reflection (or its error)."""
        text = self.carry + data
        if self.window[0] <= now <= self.window[1]:
            self.stats.deliveries += text.count(MESSAGE)
        # Shorter than the marker: an occurrence is never counted twice, nor missed across reads.
        self.carry = text[1 - len(MESSAGE) :]
        if self.pending is None:
            return
        self.tail = self.tail[-1024:] + data
        at = self.tail.find(self.pending)
        if at < 0:
            return
        end = self.tail.find(b">", at)
        if end < 0:
            return  # the rest of the start tag is still to come
        start = self.tail.rfind(b"<", 0, at)
        failed = b"error" in self.tail[start:end]
        self.tail = self.tail[end:]
        self.pending = None
        if self.reflected is not None and not self.reflected.done():
            self.reflected.set_result(not failed)

    async def read_loop(self) -> None:
        """Read until the stream ends; note a ``see-other-host`` (RFC 6120 §4.9.3.19)."""
        self.carry, self.tail = b"", b""
        watch = b""  # the last bytes, for a stream error split across reads
        while True:
            data = await self.reader.read(262144)
            if not data:
                break
            self._scan(data, time.time())
            watch = watch[-512:] + data
            if b"see-other-host" in watch:
                found = SEE_OTHER_HOST.search(watch)
                if found is not None:
                    host, _, port = found.group(1).decode().strip().rpartition(":")
                    self.moved_to = (host or self.target.host, int(port))
        self.ended = True
        if self.reflected is not None and not self.reflected.done():
            self.reflected.set_exception(ConnectionError("the stream ended"))

    async def post(self) -> bool:
        """Post the next message and wait for its reflection; True when reflected (False:
        the server answered with an error)."""
        self.counter += 1
        token = f"x{self.user}k{self.counter}z"
        return await self.post_again(token)

    async def post_again(self, token: str) -> bool:
        if self.ended:
            raise ConnectionError("the stream ended")
        self.pending = token.encode()
        self.reflected = asyncio.get_running_loop().create_future()
        self._send(
            f"<message to='{self.target.room}' type='groupchat' id='{token}'>"
            f"<body>message {self.counter} from {self.user}</body></message>"
        )
        return await self.reflected


async def _sleep_until(wall: float) -> None:
    await asyncio.sleep(max(0.0, wall - time.time()))


async def _throughput_clients(
    users: list[str], target: Target, create: bool, ready, go_at, warmup: float, seconds: float
) -> list[ClientStats]:
    clients = [LeanClient(user, target) for user in users]
    gate = asyncio.Semaphore(8)  # sign-ins in parallel, bounded

    async def sign_in(client: LeanClient, first: bool) -> None:
        async with gate:
            await client.connect()
            await client.join(create=first)

    if create:
        await sign_in(clients[0], True)
    await asyncio.gather(*(sign_in(c, False) for c in clients[1 if create else 0 :]))
    ready.set()
    while go_at.value == 0:
        await asyncio.sleep(0.01)
    start = go_at.value + warmup
    end = start + seconds
    for client in clients:
        client.window = (start, end)
    readers = [asyncio.create_task(c.read_loop()) for c in clients]

    async def load(client: LeanClient) -> None:
        await _sleep_until(go_at.value)
        while time.time() < end:
            sent = time.perf_counter()
            try:
                ok = await client.post()
            except ConnectionError:
                client.stats.errors += 1
                return
            now = time.time()
            if not ok:
                client.stats.errors += 1
            elif start <= now <= end:
                client.stats.acknowledged += 1
                client.stats.latencies.append(time.perf_counter() - sent)

    await asyncio.gather(*(load(c) for c in clients))
    for client in clients:
        await client.close()
    for reader in readers:
        reader.cancel()
    return [c.stats for c in clients]


def throughput_worker(users, target, create, ready, go_at, warmup, seconds, results) -> None:
    """A generator process: its share of the clients, from sign-in to the end of the window."""
    try:
        stats = asyncio.run(_throughput_clients(users, target, create, ready, go_at, warmup, seconds))
        results.put(("ok", os.getpid(), time.process_time(), stats))
    except BaseException as exc:
        ready.set()
        results.put(("error", os.getpid(), 0.0, f"{exc.__class__.__name__}: {exc}"))


async def _failover_clients(users: list[str], target: Target, rate: float, ready, stop, moved) -> list[ClientStats]:
    clients = [LeanClient(user, target) for user in users]
    for client in clients:
        await client.connect()
        await client.join(create=False)
    ready.set()

    async def session(client: LeanClient) -> None:
        """Post after each reflection; on see-other-host sign in there at once, rejoin, post again."""
        token = None
        while not stop.is_set():
            reader = asyncio.create_task(client.read_loop())
            try:
                while not stop.is_set():
                    if token is None:
                        client.counter += 1
                        token = f"x{client.user}k{client.counter}z"
                    if await client.post_again(token):
                        client.stats.acknowledged += 1
                        if client.address[1] not in client.stats.first_reflection_on:
                            client.stats.first_reflection_on[client.address[1]] = time.time()
                            if client.address != (target.host, target.port):
                                with moved.get_lock():
                                    moved.value += 1
                            client.stats.trace.append(f"{time.time():.2f} first reflection on {client.address[1]}")
                        token = None
                        await asyncio.sleep(1 / rate)
                    else:
                        client.stats.errors += 1  # refused while the room moves: the same post again
                        client.stats.trace.append(f"{time.time():.2f} refused")
                        await asyncio.sleep(0.2)
            except ConnectionError:
                client.stats.trace.append(f"{time.time():.2f} stream ended, moved to {client.moved_to}")
            reader.cancel()
            if stop.is_set():
                break
            if client.moved_to is not None:
                client.address, client.moved_to = client.moved_to, None
            async with asyncio.timeout(60):
                while not stop.is_set():
                    try:
                        await client.connect()
                        await client.join()
                        break
                    except (OSError, Refused, TimeoutError) as exc:
                        client.stats.last_error = f"{exc.__class__.__name__}: {exc}"[:300]
                        await client.close()
                        await asyncio.sleep(0.2)

    async def watch_stop() -> None:
        while not stop.is_set():
            await asyncio.sleep(0.1)
        for client in clients:
            if client.reflected is not None and not client.reflected.done():
                client.reflected.set_exception(ConnectionError("stopped"))

    watcher = asyncio.create_task(watch_stop())
    await asyncio.gather(*(session(c) for c in clients))
    watcher.cancel()
    for client in clients:
        await client.close()
    return [c.stats for c in clients]


def failover_worker(users, target, rate, ready, stop, moved, results) -> None:
    try:
        stats = asyncio.run(_failover_clients(users, target, rate, ready, stop, moved))
        results.put(("ok", os.getpid(), time.process_time(), stats))
    except BaseException as exc:
        ready.set()
        results.put(("error", os.getpid(), 0.0, f"{exc.__class__.__name__}: {exc}"))


# --- processes, CPU and helpers (the parent) ---------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_port(port: int, timeout: float, what: str, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise SystemExit(f"{what} exited with {process.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.1)
    raise SystemExit(f"{what} did not listen on 127.0.0.1:{port} within {timeout:.0f} s")


def cpu_seconds(pid: int) -> float:
    import psutil

    try:
        times = psutil.Process(pid).cpu_times()
    except psutil.Error:
        return 0.0
    return times.user + times.system


def stop_process(process: subprocess.Popen, timeout: float = 20) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def pg_admin():
    import psycopg

    return psycopg.connect(dbname="postgres", autocommit=True, **PG)


def create_database(prefix: str) -> str:
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with pg_admin() as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return name


def drop_database(name: str) -> None:
    with pg_admin() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def count_rows(database: str, table: str) -> int:
    import psycopg
    from psycopg import sql

    with psycopg.connect(dbname=database, **PG) as conn:
        return conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))).fetchone()[0]


def backend_pids(database: str) -> list[int]:
    with pg_admin() as conn:
        rows = conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s", (database,)).fetchall()
    return [pid for (pid,) in rows]


class PrivateRedis:
    """A redis-server of the bench's own, on a free loopback port (its CPU is the bench's)."""

    def __init__(self, work: Path) -> None:
        self.port = free_port()
        binary = shutil.which("redis-server")
        if binary is None:
            raise SystemExit("redis-server is not installed (Debian: apt-get install redis-server)")
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            cwd=work,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_port(self.port, 10, "redis-server", self.process)
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        stop_process(self.process)


# --- (a) the node agent ------------------------------------------------------------------------


def setup_django(work: Path, redis_url: str) -> None:
    os.environ.update(
        SQLITE_PATH=str(work / "config.sqlite3"),
        IMP_VAR_DIR=str(work),
        REDIS_URL=redis_url,
        CHAT_BUS_PREFIX=f"imp-xmpp-bench-{uuid.uuid4().hex[:8]}",
        DJANGO_SETTINGS_MODULE="imp_admin.settings",
    )
    os.environ.setdefault("SECRET_KEY", "bench-only-secret-key-not-for-production-0123456789")
    os.environ.setdefault("IMP_SECRETS_KEY", "dGVzdC1vbmx5LWtleS1ub3QtZm9yLXByb2R1Y3Rpb24=")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def make_tc_database(name: str):
    import psycopg

    from messaging.models import DatabaseType, ExternalDatabase
    from messaging.tc.schema import Dialect, install_statements

    with psycopg.connect(dbname=name, autocommit=True, **PG) as conn:
        for statement in install_statements(Dialect.POSTGRES):
            conn.execute(statement)
    database = ExternalDatabase(
        database_name=name, db_type=DatabaseType.POSTGRES, username=PG["user"], hostname=PG["host"], port=PG["port"]
    )
    database.set_password("")
    database.save()
    return database


def build_nodes(users: int, ha: bool, delay: float = 3.0, heartbeat_timeout: float = 10):
    """A cluster of one node (or, with ``ha``, two in a group with high availability), its
    persistent chat on a new PostgreSQL database with the archive on, ``users`` users of the
    first node; each node gets an XMPP client port."""
    from messaging.database_assignment import assign
    from messaging.models import ChatSettings
    from topology.credentials import set_password
    from topology.models import Cluster, EndUser, Node, NodeServiceParameters, RedundancyGroup, ServiceParameters

    suffix = uuid.uuid4().hex[:6]
    cluster = Cluster.objects.create(name="bench", cluster_id="imp1", domain=DOMAIN)
    nodes = []
    for key in ("a", "b") if ha else ("a",):
        node = Node.objects.create(
            name=f"xbench-{key}-{suffix}",
            cluster=cluster,
            ip_address="127.0.0.1",
            agent_host="127.0.0.1",
            agent_port=free_port(),
            xmpp_port=free_port(),
        )
        NodeServiceParameters.objects.create(node=node, client_relogin_lower_limit=1, client_relogin_upper_limit=2)
        nodes.append(node)
    group = RedundancyGroup.objects.create(name="bench-group", cluster=cluster)
    group.set_servers(nodes[0], nodes[1] if ha else None)
    group.ha_enabled = ha
    group.save()
    db_name = create_database("imp_xbench")
    database = make_tc_database(db_name)
    assign(dict.fromkeys(nodes, database))
    chat = ChatSettings.for_cluster(cluster)
    chat.enable_persistent_chat = True
    chat.archive_room_messages = True
    chat.default_max_occupancy = max(chat.default_max_occupancy, users + 10)
    chat.max_users_per_room = max(chat.max_users_per_room, users + 10)
    chat.save()
    params = ServiceParameters.for_cluster(cluster.pk)
    params.heartbeat_interval, params.heartbeat_timeout = 0.5, heartbeat_timeout
    params.initialization_heartbeat_timeout, params.critical_service_delay = 30, delay
    params.save()
    for n in range(users):
        user = EndUser.objects.create(user_id=f"user{n:03d}", jid=f"user{n:03d}@{DOMAIN}", assigned_node=nodes[0])
        set_password(user, PASSWORD)
    return group, nodes, db_name


def start_agent(work: Path, name: str, profile: str = "") -> subprocess.Popen:
    """``manage.py run_node name``; under cProfile (stats written to ``profile`` when it stops) if given."""
    log = (work / f"agent-{name}.log").open("w")
    python = [sys.executable, "-m", "cProfile", "-o", profile] if profile else [sys.executable]
    return subprocess.Popen(
        [*python, "manage.py", "run_node", name, "--reconcile-interval", "0.2"],
        cwd=ROOT,
        env=dict(os.environ),
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def wait_tc_started(nodes, agents, timeout: float = 90) -> None:
    from topology.catalog import ServiceName
    from topology.models import Service

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for agent in agents:
            if agent.poll() is not None:
                raise SystemExit(f"a node agent exited with {agent.returncode}; see its log")
        started = Service.objects.filter(
            node__in=nodes, name=ServiceName.TEXT_CONFERENCE_MANAGER, status="started"
        ).count()
        if started == len(nodes):
            return
        time.sleep(0.2)
    raise SystemExit("the Text Conference Manager did not start in time")


class ImpServer:
    """(a) one node agent of imp-admin, its XMPP client port."""

    key = "imp"
    label = "imp-admin node (XMPP port, archive on)"

    def __init__(self, work: Path, users: int, profile: str = "") -> None:
        from messaging.aliases import aliases_of

        self.profile = profile
        self.work = work
        _group, (self.node,), self.db_name = build_nodes(users, ha=False)
        self.alias = aliases_of(self.node)[0]
        self.agent: subprocess.Popen | None = None

    def start(self) -> None:
        self.agent = start_agent(self.work, self.node.name, self.profile)
        wait_tc_started([self.node], [self.agent])
        wait_port(self.node.xmpp_port, 30, "the node's XMPP client port", self.agent)

    def stop(self) -> None:
        if self.agent is not None:
            stop_process(self.agent)
        drop_database(self.db_name)

    def target(self, room: str) -> Target:
        return Target("127.0.0.1", self.node.xmpp_port, DOMAIN, f"{room}@{self.alias}")

    def archived(self) -> int:
        return count_rows(self.db_name, "tc_msgarchive")

    def processes(self, redis: PrivateRedis) -> dict[str, list[int]]:
        return {
            "node agent": [self.agent.pid],
            "redis-server": [redis.process.pid],
            "postgres backends": backend_pids(self.db_name),
        }


# --- (b) ejabberd ----------------------------------------------------------------------------

EJABBERD_YML = """\
hosts: ["{domain}"]
loglevel: warning
log_rotate_count: 0
certfiles: ["{work}/ejabberd.pem"]
sql_type: pgsql
sql_server: "{pg_host}"
sql_port: {pg_port}
sql_database: "{database}"
sql_username: "{pg_user}"
sql_password: ""
sql_pool_size: 10
new_sql_schema: false
default_db: sql
auth_method: sql
auth_password_format: plain
listen:
  - port: {port}
    ip: "127.0.0.1"
    module: ejabberd_c2s
    starttls_required: true
    max_stanza_size: 262144
modules:
  mod_disco: {{}}
  mod_ping: {{}}
  mod_mam:
    db_type: sql
    default: always
  mod_muc:
    host: "conference.{domain}"
    db_type: sql
    access: all
    access_create: all
    access_persistent: all
    access_mam: all
    max_users: 1000
    default_room_options:
      persistent: true
      mam: true
      max_users: 1000
"""


def ejabberd_installed() -> bool:
    return Path("/usr/share/ejabberd/sql/pg.sql").exists() and any(Path("/usr/lib/erlang/lib").glob("p1_pgsql-*"))


def install_ejabberd() -> None:
    """Debian's package and its PostgreSQL driver (a package of its own); the system service is
    left stopped and disabled (the bench runs an instance of its own)."""
    if not ejabberd_installed():
        if os.geteuid() != 0:
            raise SystemExit("ejabberd is not installed; as root the bench installs it (apt-get install -y ejabberd)")
        print("installing ejabberd (apt-get install -y ejabberd erlang-p1-pgsql) ...", flush=True)
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        command = ["apt-get", "install", "-y", "ejabberd", "erlang-p1-pgsql"]
        subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL)
    if os.geteuid() == 0:
        for command in (["service", "ejabberd", "stop"], ["systemctl", "disable", "ejabberd"]):
            with contextlib.suppress(OSError):
                subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)


def self_signed_pem(path: Path) -> None:
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, DOMAIN)])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName(DOMAIN), x509.DNSName(f"conference.{DOMAIN}")]), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    )
    path.write_bytes(key_pem + certificate.public_bytes(serialization.Encoding.PEM))


class EjabberdServer:
    """(b) Debian's ejabberd in a temporary directory, MAM and rooms in PostgreSQL."""

    key = "ejabberd"
    label = "ejabberd 23.01 (Debian), MAM on PostgreSQL"

    def __init__(self, work: Path, users: int) -> None:
        import psycopg

        install_ejabberd()
        self.work = work / "ejabberd"
        (self.work / "spool").mkdir(parents=True)
        (self.work / "logs").mkdir()
        self.port = free_port()
        self.db_name = create_database("ejabberd_xbench")
        with psycopg.connect(dbname=self.db_name, autocommit=True, **PG) as conn:
            conn.execute(Path("/usr/share/ejabberd/sql/pg.sql").read_text())
            with conn.cursor() as cursor:
                cursor.executemany(
                    "INSERT INTO users (username, password) VALUES (%s, %s)",
                    [(f"user{n:03d}", PASSWORD) for n in range(users)],
                )
        self_signed_pem(self.work / "ejabberd.pem")
        config = EJABBERD_YML.format(
            domain=DOMAIN,
            work=self.work,
            port=self.port,
            database=self.db_name,
            pg_host=PG["host"],
            pg_port=PG["port"],
            pg_user=PG["user"],
        )
        (self.work / "ejabberd.yml").write_text(config)
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        library = next(Path("/usr/lib/x86_64-linux-gnu").glob("ejabberd-*"), None)
        env = dict(
            os.environ,
            HOME=str(self.work),  # the Erlang cookie goes here
            EJABBERD_CONFIG_PATH=str(self.work / "ejabberd.yml"),
            EJABBERD_LOG_PATH=str(self.work / "logs" / "ejabberd.log"),
            ERL_LIBS=str(library.parent if library else "/usr/lib/x86_64-linux-gnu"),
            ERL_CRASH_DUMP=str(self.work / "logs" / "erl_crash.dump"),
            ERL_INETRC="/etc/ejabberd/inetrc",
            ERL_MAX_PORTS="32000",
            ERL_MAX_ETS_TABLES="1400",
        )
        log = (self.work / "logs" / "console.log").open("w")
        self.process = subprocess.Popen(
            [
                "/usr/bin/erl",
                "-sname",
                f"xbench{os.getpid()}@localhost",
                "+K",
                "true",
                "+P",
                "250000",
                "-noshell",
                "-noinput",
                "-mnesia",
                "dir",
                f'"{self.work / "spool"}"',
                "-s",
                "ejabberd",
            ],
            cwd=self.work,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_port(self.port, 90, f"ejabberd (logs in {self.work / 'logs'})", self.process)
        time.sleep(2)  # it listens before its applications are all started; one failing ends it
        if self.process.poll() is not None:
            raise SystemExit(f"ejabberd exited with {self.process.returncode} (logs in {self.work / 'logs'})")

    def stop(self) -> None:
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)
        drop_database(self.db_name)

    def target(self, room: str) -> Target:
        return Target("127.0.0.1", self.port, DOMAIN, f"{room}@conference.{DOMAIN}", configure_room=True)

    def archived(self) -> int:
        return count_rows(self.db_name, "archive")

    def processes(self, redis: PrivateRedis) -> dict[str, list[int]]:
        import psutil

        beam = [p.pid for p in psutil.Process(self.process.pid).children(recursive=True)] + [self.process.pid]
        return {"ejabberd (beam.smp)": beam, "postgres backends": backend_pids(self.db_name)}


# --- the throughput run ------------------------------------------------------------------------


@dataclass
class Outcome:
    server: str
    users: int
    seconds: float
    acknowledged: int
    deliveries: int
    latencies: list[float]
    errors: int
    archived: int  # rows in the server's archive table after the run (all runs so far)
    cpu: dict[str, float]
    generator_busy: float  # the busiest generator process's CPU share of the run (1.0 = one core)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else float("nan")


def collect(results, count: int, timeout: float) -> tuple[list[ClientStats], dict[int, float]]:
    stats, cpu = [], {}
    deadline = time.monotonic() + timeout
    for _ in range(count):
        status, pid, seconds, payload = results.get(timeout=max(1.0, deadline - time.monotonic()))
        if status != "ok":
            raise SystemExit(f"a load generator process failed: {payload}")
        stats += payload
        cpu[pid] = seconds
    return stats, cpu


def sample_cpu(processes: dict[str, list[int]]) -> dict[str, dict[int, float]]:
    return {label: {pid: cpu_seconds(pid) for pid in pids} for label, pids in processes.items()}


def cpu_used(before: dict[str, dict[int, float]], after: dict[str, dict[int, float]]) -> dict[str, float]:
    """CPU seconds per process group between two samples (a process new since ``before`` counts whole)."""
    return {
        label: sum(seconds - before.get(label, {}).get(pid, 0.0) for pid, seconds in pids.items())
        for label, pids in after.items()
    }


def run_load(server, redis: PrivateRedis, users: int, args) -> Outcome:
    """One measured run: ``users`` clients in a new room of ``server``, ``args.seconds`` long."""
    context = multiprocessing.get_context("spawn")
    target = server.target(f"load{users}-{uuid.uuid4().hex[:4]}")
    names = [f"user{n:03d}" for n in range(users)]
    workers = max(1, min(args.workers, users))
    results = context.Queue()
    go_at = context.Value("d", 0.0)
    processes = []
    for index in range(workers):
        ready = context.Event()
        process = context.Process(
            target=throughput_worker,
            args=(names[index::workers], target, index == 0, ready, go_at, args.warmup, args.seconds, results),
            daemon=True,
        )
        process.start()
        processes.append(process)
        if index == 0 and not ready.wait(120):  # the first client creates the room before anyone joins
            raise SystemExit("the room was not created within 120 s")
        processes[-1].ready = ready
    for process in processes:
        if not process.ready.wait(120):
            raise SystemExit("the clients did not join within 120 s")
    go = time.time() + 0.5
    go_at.value = go
    time.sleep(max(0.0, go + args.warmup - time.time()))
    watched = server.processes(redis)
    watched["load generator"] = [p.pid for p in processes]
    before = sample_cpu(watched)
    time.sleep(max(0.0, go + args.warmup + args.seconds - time.time()))
    after = sample_cpu(watched)
    stats, _ = collect(results, workers, 60)
    for process in processes:
        process.join(10)
    cpu = cpu_used(before, after)
    generator = after["load generator"]
    busiest = max(generator[pid] - before["load generator"].get(pid, 0.0) for pid in generator)
    latencies = [value for s in stats for value in s.latencies]
    return Outcome(
        server=server.key,
        users=users,
        seconds=args.seconds,
        acknowledged=sum(s.acknowledged for s in stats),
        deliveries=sum(s.deliveries for s in stats),
        latencies=latencies,
        errors=sum(s.errors for s in stats),
        archived=server.archived(),
        cpu=cpu,
        generator_busy=busiest / args.seconds,
    )


def describe(outcome: Outcome) -> str:
    rate = outcome.acknowledged / outcome.seconds
    cpu = ", ".join(f"{label} {seconds:.1f} s" for label, seconds in outcome.cpu.items())
    return (
        f"  {outcome.server:9} N={outcome.users:3}: {rate:7.0f} messages/s acknowledged, "
        f"{outcome.deliveries / outcome.seconds:8.0f} deliveries/s, "
        f"p50 {percentile(outcome.latencies, 0.5) * 1000:6.1f} ms, "
        f"p99 {percentile(outcome.latencies, 0.99) * 1000:6.1f} ms, "
        f"{outcome.errors} errors, {outcome.archived} messages archived so far; CPU in {outcome.seconds:.0f} s: {cpu} "
        f"(busiest generator process {outcome.generator_busy * 100:.0f} % of a core)"
    )


def table(outcomes: list[Outcome]) -> str:
    by = {(o.server, o.users): o for o in outcomes}
    servers = list(dict.fromkeys(o.server for o in outcomes))
    lines = [
        "| N | server | messages/s acknowledged | deliveries/s | p50 ms | p99 ms | CPU s per process | a/b |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for users in sorted({o.users for o in outcomes}):
        for server in servers:
            outcome = by.get((server, users))
            if outcome is None:
                continue
            rate = outcome.acknowledged / outcome.seconds
            ratio = ""
            if server == "imp" and ("ejabberd", users) in by:
                other = by[("ejabberd", users)]
                ratio = f"**{rate / (other.acknowledged / other.seconds):.2f}**"
            cpu = "; ".join(f"{label} {seconds:.1f}" for label, seconds in outcome.cpu.items())
            lines.append(
                f"| {users} | {server} | {rate:.0f} | {outcome.deliveries / outcome.seconds:.0f} | "
                f"{percentile(outcome.latencies, 0.5) * 1000:.1f} | {percentile(outcome.latencies, 0.99) * 1000:.1f} | "
                f"{cpu} | {ratio} |"
            )
    return "\n".join(lines)


def throughput(args, work: Path, redis: PrivateRedis) -> list[Outcome]:
    sizes = [int(n) for n in args.users.split(",")]
    outcomes: list[Outcome] = []
    for key in args.servers.split(","):
        if key == "imp":
            server = ImpServer(
                work, max(sizes), profile=str(Path(args.profile_agent).resolve()) if args.profile_agent else ""
            )
        else:
            server = EjabberdServer(work, max(sizes))
        print(f"({server.label})", flush=True)
        try:
            server.start()
            for users in sizes:
                outcome = run_load(server, redis, users, args)
                print(describe(outcome), flush=True)
                outcomes.append(outcome)
        finally:
            server.stop()
    return outcomes


# --- failover ------------------------------------------------------------------------------


def failover(args, work: Path) -> None:
    from messaging.aliases import aliases_of
    from topology.catalog import ControlAction, ServiceName
    from topology.choices import HAState
    from topology.models import Node, NodeServiceParameters, Service

    users = int(args.users.split(",")[-1])
    _group, (a, b), db_name = build_nodes(users, ha=True, delay=args.delay, heartbeat_timeout=args.heartbeat_timeout)
    profile = str(Path(args.profile_agent).resolve()) if args.profile_agent else ""
    agents = [start_agent(work, a.name), start_agent(work, b.name, profile)]  # B takes the sign-ins
    context = multiprocessing.get_context("spawn")
    processes = []
    try:
        deadline = time.monotonic() + 120
        while not all(Node.objects.get(pk=n.pk).ha_state == HAState.NORMAL for n in (a, b)):
            if time.monotonic() > deadline or any(agent.poll() is not None for agent in agents):
                raise SystemExit(f"A and B did not both reach Normal (agent logs in {work})")
            time.sleep(0.2)
        wait_tc_started([a, b], agents)
        wait_port(a.xmpp_port, 30, "A's XMPP client port")
        target = Target("127.0.0.1", a.xmpp_port, DOMAIN, f"failover@{aliases_of(a)[0]}")
        creator = context.Event()
        results = context.Queue()
        stop = context.Event()
        moved = context.Value("i", 0)  # users with a post reflected by another node than A
        names = [f"user{n:03d}" for n in range(users)]
        workers = max(1, min(args.workers, users))
        # The first worker's first client creates the room (our node creates it on the first join).
        for index in range(workers):
            ready = creator if index == 0 else context.Event()
            process = context.Process(
                target=failover_worker,
                args=(names[index::workers], target, args.rate, ready, stop, moved, results),
                daemon=True,
            )
            process.start()
            process.ready = ready
            processes.append(process)
            if not ready.wait(120):
                raise SystemExit("the clients did not join within 120 s")
        time.sleep(args.warmup)
        tc = Service.objects.get(node=a, name=ServiceName.TEXT_CONFERENCE_MANAGER)
        tc.request(ControlAction.STOP)
        deadline = time.monotonic() + 120
        while Node.objects.get(pk=b.pk).ha_state != HAState.RUNNING_IN_BACKUP_MODE:
            if time.monotonic() > deadline:
                raise SystemExit(f"B did not reach Running in Backup Mode (agent logs in {work})")
            time.sleep(0.1)
        deadline = time.monotonic() + args.settle
        while moved.value < users and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(1)
        stop.set()
        stats, _ = collect(results, workers, 120)
        down_at = Service.objects.get(pk=tc.pk).status_changed_at.timestamp()
        delay_end = down_at + args.delay
        upper = NodeServiceParameters.objects.get(node=a).client_relogin_upper_limit
        gaps = {
            s.user: s.first_reflection_on[b.xmpp_port] - delay_end
            for s in stats
            if b.xmpp_port in s.first_reflection_on
        }
        missing = sorted(s.user for s in stats if b.xmpp_port not in s.first_reflection_on)
        print(
            f"failover: {users} XMPP users of A posting (at most {args.rate}/s each) to a room of A; "
            f"critical service delay {args.delay:g} s, heartbeat timeout {args.heartbeat_timeout:g} s, "
            f"Client Re-Login Upper Limit {upper} s"
        )
        print(
            f"  posts reflected {sum(s.acknowledged for s in stats)}, "
            f"refused and sent again {sum(s.errors for s in stats)}"
        )
        if gaps:
            values = sorted(gaps.values())
            print(
                f"  end of the critical service delay → first post reflected by B, per user: "
                f"median {statistics.median(values):.2f} s, p90 {percentile(values, 0.9):.2f} s, "
                f"min {values[0]:.2f} s, max {values[-1]:.2f} s "
                f"(goal: median ≤ {upper + 1} s: {'met' if statistics.median(values) <= upper + 1 else 'NOT met'})"
            )
        if args.trace:
            print(f"  TC stopped {down_at:.2f}, delay end {delay_end:.2f}")
            for s in stats[:3]:
                print(f"  {s.user}: {s.trace[-12:]}")
        if missing:
            print(f"  {len(missing)} users had no post reflected by B: {', '.join(missing[:10])}")
            for s in stats[:3]:
                print(f"  {s.user}: {s.sessions} sessions, last error {s.last_error or 'none'}; {s.trace[-8:]}")
            raise SystemExit("NOT EVERY USER REACHED THE BACKUP NODE")
    finally:
        for process in processes:
            process.join(10)
            if process.is_alive():
                process.kill()
        for agent in agents:
            stop_process(agent)
        drop_database(db_name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", default="20,50", help="occupants of the room, one run per value (20,50)")
    parser.add_argument("--seconds", type=float, default=20, help="length of each measured window")
    parser.add_argument("--warmup", type=float, default=2, help="posting before the window opens")
    parser.add_argument("--servers", default="imp,ejabberd", help="imp, ejabberd, or both (imp,ejabberd)")
    parser.add_argument("--workers", type=int, default=2, help="load generator processes")
    parser.add_argument("--profile-agent", default="", help="run the node agent under cProfile, stats to this file")
    parser.add_argument("--configdb", choices=["sqlite", "postgres"], default="sqlite", help="the config DB")
    parser.add_argument("--smoke", action="store_true", help="3 users, 2 s, the node only (for the test suite)")
    parser.add_argument("--failover", action="store_true", help="the failover gap per user instead")
    parser.add_argument("--rate", type=float, default=2.0, help="--failover: posts per second per user at most")
    parser.add_argument("--delay", type=float, default=3.0, help="--failover: critical service delay, s")
    parser.add_argument("--trace", action="store_true", help="--failover: print what three clients saw")
    parser.add_argument(
        "--settle", type=float, default=60.0, help="--failover: at most this long for every user to post on B, s"
    )
    parser.add_argument("--heartbeat-timeout", type=float, default=10.0, help="--failover: SRM heartbeat timeout, s")
    args = parser.parse_args()
    if args.smoke:
        args.users, args.seconds, args.warmup, args.servers, args.workers = "3", 2.0, 0.5, "imp", 1
    for value in args.servers.split(","):
        if value not in ("imp", "ejabberd"):
            parser.error(f"--servers takes imp and ejabberd, not {value!r}")
    try:
        sizes = [int(n) for n in args.users.split(",")]
    except ValueError:
        parser.error("--users takes numbers separated by commas, such as 20,50")
    if min(sizes) < 1 or args.seconds <= 0:
        parser.error("--users and --seconds must be positive")
    work = Path(tempfile.mkdtemp(prefix="xmpp-load-"))
    redis = PrivateRedis(work)
    config_db = ""
    try:
        if args.configdb == "postgres":  # as a production console would run; SQLite otherwise
            config_db = create_database("imp_xbench_config")
            os.environ["DATABASE_URL"] = f"postgres://{PG['user']}@{PG['host']}:{PG['port']}/{config_db}"
        else:
            os.environ.pop("DATABASE_URL", None)
        setup_django(work, redis.url)
        print(f"(work dir {work}; load {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f})")
        if args.failover:
            failover(args, work)
        else:
            print(
                f"throughput: N occupants of one room, each posting after its previous reflection; "
                f"{args.seconds:g} s window after {args.warmup:g} s warm-up; {args.workers} generator processes"
            )
            outcomes = throughput(args, work, redis)
            print()
            print(table(outcomes))
        print(f"(load average at the end {' '.join(f'{v:.2f}' for v in os.getloadavg())})")
    except BaseException:
        print(f"(the work dir is kept for its logs: {work})", file=sys.stderr)
        raise
    else:
        shutil.rmtree(work, ignore_errors=True)
    finally:
        redis.stop()
        if config_db:
            from django.db import connections

            connections.close_all()
            drop_database(config_db)


if __name__ == "__main__":
    main()
