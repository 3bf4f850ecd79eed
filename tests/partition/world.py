"""A redundancy group on the namespace test bed: its config DB, its persistent chat database,
its two node agents, clients posting throughout, and the count of what was acknowledged.

Shared by the partition tests and ``bench/partition.py``. The config DB is a database of the
test bed's PostgreSQL cluster, cloned from a migrated template; the test process uses it
through Django's ORM (``use_config_db``) over the cluster's Unix socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field

import psycopg
from psycopg import sql

from tests.partition.netns import (
    AGENT_PORT,
    CONFIG_DB_IP,
    EXTERNAL_DB_IP,
    NODE_IPS,
    PG_PORT,
    REDIS_IP,
    REDIS_PORT,
    RELAY_IP,
    ROOT,
    ClientHost,
    TestBed,
)

TEMPLATE = "imp_configdb_template"
# Node A reaches the config DB through the delaying relay, node B directly.
CONFIG_DB_ADDRESS = {"a": RELAY_IP, "b": CONFIG_DB_IP}
# What "cut from the config DB" drops: both of its addresses.
CONFIG_DB_ADDRESSES = (CONFIG_DB_IP, RELAY_IP)
# How long a node waits on the config DB before it gives a query up (libpq options).
CONFIG_DB_OPTIONS = "connect_timeout=2&tcp_user_timeout=2000"

POST_TIMEOUT = 3.0
# The SRM's timers on the test bed, through its own service parameters.
TIMERS = {
    "heartbeat_interval": 0.3,
    "heartbeat_timeout": 3,
    "initialization_heartbeat_timeout": 20,
    "critical_service_delay": 2,
}


def admin(bed: TestBed, dbname: str = "postgres", **kwargs):
    return psycopg.connect(**bed.pg_admin(dbname), autocommit=True, **kwargs)


def migrate_template(bed: TestBed) -> None:
    """Create and migrate the config DB template once per test bed."""
    with admin(bed) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(TEMPLATE)))
    socket_dir = str(bed.socket_dir).replace("/", "%2F")
    env = {**os.environ, "DATABASE_URL": f"postgres://postgres@{socket_dir}:{PG_PORT}/{TEMPLATE}"}
    env.pop("SQLITE_PATH", None)
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--no-input", "-v", "0"], cwd=ROOT, env=env, check=True, timeout=300
    )


@contextlib.contextmanager
def use_config_db(bed: TestBed, dbname: str):
    """Point Django's default connection at ``dbname`` on the test bed for the block."""
    from django.db import connections

    previous = connections.settings["default"]
    connections["default"].close()
    del connections["default"]
    connections.settings["default"] = {
        **previous,
        "ENGINE": "django.db.backends.postgresql",
        "NAME": dbname,
        "HOST": str(bed.socket_dir),
        "PORT": PG_PORT,
        "USER": "postgres",
        "PASSWORD": "",
        "OPTIONS": {},
        "CONN_MAX_AGE": 0,
        "TEST": {**previous.get("TEST", {}), "NAME": dbname},
    }
    try:
        yield
    finally:
        connections["default"].close()
        del connections["default"]
        connections.settings["default"] = previous


@dataclass
class Chatter:
    """A user posting to one room as fast as acknowledgements come; records each one."""

    user: str
    client: object
    acked: list[tuple[int, str, float]] = field(default_factory=list)
    refused: int = 0
    last_error: str = ""

    async def keep_posting(self, room: str, stop: asyncio.Event) -> None:
        """Post, and post the same (same client id) again until it is acknowledged. A post left
        unanswered for POST_TIMEOUT drops the connection, as a user's client gives up on a
        silent server; the client then signs in again wherever a node answers."""
        from messaging.chat.client import ChatClientError, Disconnected

        n = 0
        while not stop.is_set():
            body = f"{self.user} {n} {uuid.uuid4().hex[:6]}"
            cid = uuid.uuid4().hex
            while not stop.is_set():
                try:
                    async with asyncio.timeout(POST_TIMEOUT):
                        ack = await self.client.post(room, body, cid=cid, retry_for=1)
                except TimeoutError:
                    self.refused += 1
                    self.last_error = "no answer"
                    ws = self.client._ws
                    # Only a connection that is up and silent; a reconnect under way goes on
                    # (dropping the connection a reconnect is rejoining on would strand it).
                    reconnecting = self.client._reconnecting is not None and not self.client._reconnecting.done()
                    if self.client._connected.is_set() and not reconnecting and ws is not None and ws.transport:
                        ws.transport.abort()
                    await asyncio.sleep(0.2)
                    continue
                except (ChatClientError, Disconnected) as exc:
                    self.refused += 1
                    self.last_error = str(exc)
                    if getattr(exc, "code", "") == "not-in-room":  # the room lost us in the turmoil: join again
                        with contextlib.suppress(ChatClientError, Disconnected, TimeoutError):
                            async with asyncio.timeout(POST_TIMEOUT):
                                await self.client.join(room)
                    await asyncio.sleep(0.1)
                    continue
                self.acked.append((ack["msg_id"], body, time.time()))
                break
            n += 1
            await asyncio.sleep(0.02)


@dataclass
class Outcome:
    """What one case did, counted from the acknowledgements and the stored messages.

    ``backup_after``: from the cut to the first acknowledged post the backup committed (None
    if the backup never took the room). ``longest_pause``: the longest time, from the cut on,
    without an acknowledgement to anyone.
    """

    acknowledged: int
    lost: list[str]
    doubled: list[str]
    split_brain: list[str]
    backup_after: float | None
    longest_pause: float | None

    def line(self, name: str) -> str:
        def seconds(value: float | None) -> str:
            return f"{value:.2f} s" if value is not None else "-"

        return (
            f"{name}: acknowledged {self.acknowledged}, lost {len(self.lost)}, doubled {len(self.doubled)}, "
            f"split brain {len(self.split_brain)}, service on backup after {seconds(self.backup_after)}, "
            f"longest pause {seconds(self.longest_pause)}"
        )


class GroupOnBed:
    """Cluster ``imp1`` with nodes A and B (an HA group) on the test bed, users Andy (home A)
    and Bob (home B), one persistent chat database, and the SRM's timers shortened."""

    def __init__(self, bed: TestBed, tmp_dir) -> None:
        self.bed = bed
        self.tmp_dir = tmp_dir
        suffix = uuid.uuid4().hex[:8]
        self.config_db = f"imp_config_{suffix}"
        self.chat_db = f"imp_chat_{suffix}"
        self.bus_prefix = f"imp-chat-{suffix}"
        self.agents: dict[str, object] = {}
        self.clients: ClientHost | None = None
        with admin(bed) as conn:
            clone = sql.SQL("CREATE DATABASE {} TEMPLATE {}")
            conn.execute(clone.format(sql.Identifier(self.config_db), sql.Identifier(TEMPLATE)))
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.chat_db)))
        from messaging.tc.schema import Dialect, install_statements

        with admin(bed, self.chat_db) as conn:
            for statement in install_statements(Dialect.POSTGRES):
                conn.execute(statement)

    def build(self, **timers) -> None:
        """Create the topology in the config DB (inside ``use_config_db``)."""
        from django.contrib.auth.models import User

        from messaging.database_assignment import assign
        from messaging.models import ChatSettings, DatabaseType, ExternalDatabase
        from topology.models import Cluster, Node, NodeServiceParameters, RedundancyGroup, ServiceParameters

        cluster = Cluster.objects.create(name="cluster1", cluster_id="imp1", domain="example.com")
        self.nodes = {}
        for key in ("a", "b"):
            self.nodes[key] = Node.objects.create(
                name=f"imp-1{key}",
                cluster=cluster,
                ip_address=NODE_IPS[key],
                agent_host=NODE_IPS[key],
                agent_port=AGENT_PORT,
            )
            NodeServiceParameters.objects.create(
                node=self.nodes[key], client_relogin_lower_limit=1, client_relogin_upper_limit=1
            )
        self.group = RedundancyGroup.objects.create(name="subcluster1", cluster=cluster)
        self.group.set_servers(self.nodes["a"], self.nodes["b"])
        self.group.ha_enabled = True
        self.group.save()
        database = ExternalDatabase(
            database_name=self.chat_db,
            db_type=DatabaseType.POSTGRES,
            username="postgres",
            hostname=EXTERNAL_DB_IP,
            port=PG_PORT,
        )
        database.set_password("")
        database.save()
        assign({self.nodes["a"]: database, self.nodes["b"]: database})
        chat = ChatSettings.for_cluster(cluster)
        chat.enable_persistent_chat = True
        chat.save()
        from tests.conftest import chat_user

        chat_user("andy", self.nodes["a"])
        chat_user("bob", self.nodes["b"])
        params = ServiceParameters.for_cluster(cluster.pk)
        for name, value in {**TIMERS, **timers}.items():
            setattr(params, name, value)
        params.full_clean()
        params.save()
        self.params = params
        self.admin = User.objects.create_superuser("partition-admin", password="partition-admin-password")

    # --- agents ------------------------------------------------------------------------

    def agent_env(self, key: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in ("SQLITE_PATH", "SQLITE_TEST_PATH")}
        env.update(
            DATABASE_URL=f"postgres://postgres@{CONFIG_DB_ADDRESS[key]}:{PG_PORT}/{self.config_db}?{CONFIG_DB_OPTIONS}",
            REDIS_URL=f"redis://{REDIS_IP}:{REDIS_PORT}/0",
            CHAT_BUS_PREFIX=self.bus_prefix,
            PYTHONUNBUFFERED="1",
        )
        return env

    def start_agent(self, key: str):
        agent = self.bed.spawn(
            key,
            f"agent-{key}-{time.monotonic_ns()}",
            [
                sys.executable,
                "manage.py",
                "run_node",
                self.nodes[key].name,
                "--reconcile-interval",
                "0.2",
                "--restart-delay",
                "1",
            ],
            env=self.agent_env(key),
            log_dir=self.tmp_dir,
        )
        self.agents[key] = agent
        return agent

    # --- clients -----------------------------------------------------------------------

    def client(self, user: str, key: str):
        from messaging.chat.client import ChatClient
        from tests.conftest import chat_password

        return ChatClient(
            user, NODE_IPS[key], AGENT_PORT, password=chat_password(user), max_relogin_delay=1, give_up_after=120
        )

    # --- reading the outcome -------------------------------------------------------------

    def stored(self, room: str) -> list[tuple[int, str]]:
        """(msg_id, body) of every message stored in the room, from the external database."""
        from messaging.tc.stanzas import ChatMessage

        with admin(self.bed, self.chat_db) as conn:
            rows = conn.execute(
                "SELECT msg_id, stamp, msg FROM tc_messages WHERE room_jid = %s ORDER BY msg_id", (room,)
            ).fetchall()
        return [(msg_id, ChatMessage.from_row(room, msg_id, stamp, msg).body) for msg_id, stamp, msg in rows]

    def epochs(self, room: str) -> dict[int, tuple[int, str]]:
        """msg_id → (hosting epoch, node) each stored message was committed under."""
        with admin(self.bed, self.chat_db) as conn:
            rows = conn.execute(
                "SELECT msg_id, epoch, node FROM tc_message_epochs WHERE room_jid = %s", (room,)
            ).fetchall()
        return {msg_id: (epoch, node) for msg_id, epoch, node in rows}

    def outcome(self, room: str, chatters: list[Chatter], cut_at: float) -> Outcome:
        stored = self.stored(room)
        bodies = [body for _, body in stored]
        acked = sorted(
            ((msg_id, body, at) for chatter in chatters for msg_id, body, at in chatter.acked), key=lambda ack: ack[2]
        )
        stored_ids = dict(stored)
        lost = [body for msg_id, body, _ in acked if stored_ids.get(msg_id) != body]
        doubled = sorted({body for body in bodies if bodies.count(body) > 1})
        epochs = self.epochs(room)
        backup = self.nodes["b"].name
        on_backup = [at for msg_id, _, at in acked if at > cut_at and epochs.get(msg_id, (0, ""))[1] == backup]
        times = [cut_at] + [at for _, _, at in acked if at > cut_at]
        pauses = [later - earlier for earlier, later in itertools.pairwise(times)]
        return Outcome(
            len(acked),
            lost,
            doubled,
            self.split_brain(stored, epochs),
            on_backup[0] - cut_at if on_backup else None,
            max(pauses) if pauses else None,
        )

    @staticmethod
    def split_brain(stored: list[tuple[int, str]], epochs: dict[int, tuple[int, str]]) -> list[str]:
        """Stored messages that show two nodes accepting posts for the room: one committed
        without a hosting epoch, under an epoch older than an earlier message's (an old host
        still writing after the new one began), or under an epoch another node also used."""
        problems = []
        holder: dict[int, str] = {}
        newest = 0
        for msg_id, body in stored:
            epoch, node = epochs.get(msg_id, (None, None))
            if epoch is None:
                problems.append(f"{msg_id} ({body}): no hosting epoch")
                continue
            if epoch < newest:
                problems.append(f"{msg_id} ({body}): epoch {epoch} after epoch {newest}")
            if holder.setdefault(epoch, node) != node:
                problems.append(f"{msg_id} ({body}): epoch {epoch} used by {holder[epoch]} and {node}")
            newest = max(newest, epoch)
        return problems

    def close(self) -> None:
        for agent in self.agents.values():
            with contextlib.suppress(Exception):
                agent.stop()
        if self.clients is not None:
            self.clients.close()
        with admin(self.bed) as conn:
            for name in (self.config_db, self.chat_db):
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


class Conversation:
    """Andy (home A) and Bob (home B) posting to one room hosted on A, from the clients' host."""

    def __init__(self, group: GroupOnBed) -> None:
        self.group = group
        if group.clients is None:
            group.clients = ClientHost(group.bed)
        self.host = group.clients
        self.chatters: list[Chatter] = []
        self.room = ""
        self._stop: asyncio.Event | None = None
        self._tasks: list[asyncio.Task] = []

    async def _start(self) -> None:
        self._stop = asyncio.Event()
        self.chatters = [Chatter("andy", self.group.client("andy", "a")), Chatter("bob", self.group.client("bob", "b"))]
        for chatter in self.chatters:
            await chatter.client.connect()
        self.room = (await self.chatters[0].client.create(f"ops-{uuid.uuid4().hex[:6]}"))["room"]
        for chatter in self.chatters:
            await chatter.client.join(self.room)
        self._tasks = [asyncio.create_task(c.keep_posting(self.room, self._stop)) for c in self.chatters]

    def start(self) -> Conversation:
        self.host.run(self._start(), timeout=60)
        return self

    def acked(self) -> int:
        return sum(len(chatter.acked) for chatter in self.chatters)

    def __str__(self) -> str:
        return ", ".join(
            f"{c.user}: {len(c.acked)} acknowledged, {c.refused} refused ({c.last_error}), on {c.client.node}"
            for c in self.chatters
        )

    def acked_by_each_since(self, since: float) -> int:
        """The fewest acknowledgements any one chatter had after ``since``."""
        return min(sum(1 for _, _, at in chatter.acked if at > since) for chatter in self.chatters)

    async def _finish(self) -> None:
        self._stop.set()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.gather(*self._tasks, return_exceptions=True), 30)
        for chatter in self.chatters:
            with contextlib.suppress(Exception):
                await chatter.client.close()

    def finish(self) -> None:
        self.host.run(self._finish(), timeout=60)
