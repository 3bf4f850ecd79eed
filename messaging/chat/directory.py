"""What the chat services need from the config DB, cached: nodes and their chat ports, which
alias belongs to which home node, which node hosts each home node's rooms right now, and the
group chat system administrators of each cluster.

The cache is read in a worker thread and refreshed on a timer (and on demand after a
"room moved"), so no request ever waits on the config DB.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field

from asgiref.sync import sync_to_async
from django.db import close_old_connections

from messaging.aliases import aliases_by_node
from messaging.models.administrators import administrators_by_cluster
from topology import observed
from topology.models import EndUser, Node

logger = logging.getLogger(__name__)

REFRESH_SECONDS = 1.0


def host_port(host: str, port: int) -> str:
    """``host:port``, an IPv6 address in brackets (RFC 6120 §4.9.3.19, RFC 3986)."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


@dataclass(frozen=True)
class NodeAddress:
    """A node's chat port (its XCP Router)."""

    name: str
    host: str
    port: int
    cluster_pk: int
    xmpp_port: int | None = None  # the XMPP client port (RFC 6120), when the node has one


@dataclass(frozen=True)
class Snapshot:
    nodes: dict[str, NodeAddress] = field(default_factory=dict)
    alias_home: dict[str, str] = field(default_factory=dict)  # alias → home node name
    primary_alias: dict[str, str] = field(default_factory=dict)  # node name → alias for new rooms
    host_of: dict[str, str] = field(default_factory=dict)  # home node name → node hosting its rooms
    # cluster pk → IM addresses of its group chat system administrators (absent: not enabled)
    administrators: dict[int, frozenset[str]] = field(default_factory=dict)
    peers: dict[str, str] = field(default_factory=dict)  # node name → the other node of its redundancy group

    def home_of_room(self, room_jid: str) -> str | None:
        return self.alias_home.get(room_jid.split("/", 1)[0].rpartition("@")[2].lower())

    def host_of_room(self, room_jid: str) -> NodeAddress | None:
        home = self.home_of_room(room_jid)
        host = self.host_of.get(home) if home else None
        return self.nodes.get(host) if host else None

    def aliases_of(self, node_name: str) -> list[str]:
        return [alias for alias, home in self.alias_home.items() if home == node_name]


def read_snapshot() -> Snapshot:
    """Read the snapshot from the config DB, on the caller's connection (a request's, say)."""
    nodes = list(Node.objects.select_related("cluster"))
    addresses = {
        n.name: NodeAddress(n.name, n.agent_host, n.agent_port, n.cluster_id, xmpp_client_port(n)) for n in nodes
    }
    alias_home: dict[str, str] = {}
    primary: dict[str, str] = {}
    host_of: dict[str, str] = {}
    aliases_of_node = aliases_by_node(nodes)
    by_pk = {node.pk: node for node in nodes}
    for node in nodes:
        aliases = aliases_of_node[node.pk]
        for alias in aliases:
            alias_home.setdefault(alias.lower(), node.name)
        if aliases:
            primary[node.name] = aliases[0].lower()
        host = observed.room_host(node, by_pk)
        if host is not None:
            host_of[node.name] = host.name
    groups: dict[int, list[str]] = {}
    for node in nodes:
        if node.redundancy_group_id is not None:
            groups.setdefault(node.redundancy_group_id, []).append(node.name)
    peers = {}
    for first, *rest in groups.values():
        if len(rest) == 1:
            peers[first], peers[rest[0]] = rest[0], first
    return Snapshot(addresses, alias_home, primary, host_of, administrators_by_cluster(), peers)


def _read_snapshot_in_thread() -> Snapshot:
    """``read_snapshot`` from a worker thread of the agent, which owns its connection's life."""
    close_old_connections()
    try:
        return read_snapshot()
    finally:
        close_old_connections()


class Directory:
    """A Snapshot kept fresh by a background task."""

    def __init__(self, interval: float = REFRESH_SECONDS) -> None:
        self.interval = interval
        self.snapshot = Snapshot()
        self._task: asyncio.Task | None = None
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        await self.refresh()
        self._task = asyncio.create_task(self._loop(), name="chat-directory")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def refresh(self) -> Snapshot:
        async with self._lock:
            self.snapshot = await sync_to_async(_read_snapshot_in_thread, thread_sensitive=False)()
            return self.snapshot

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.refresh()
            except Exception as exc:  # the config DB busy or away: keep the last snapshot
                logger.warning("Could not refresh the chat directory: %s", exc)


def xmpp_client_port(node: Node) -> int | None:
    """The node's XMPP client port (RFC 6120 over TCP), None when it has none."""
    return node.xmpp_port or None


@dataclass(frozen=True)
class UserInfo:
    user_id: str
    jid: str
    serving: str | None
    home: str | None
    backup: str | None


def lookup_user(name: str) -> UserInfo | None:
    close_old_connections()
    try:
        user = (
            EndUser.objects.select_related("assigned_node__redundancy_group", "active_node")
            .filter(**({"jid__iexact": name} if "@" in name else {"user_id": name}))
            .first()
        )
        if user is None:
            return None
        home = user.assigned_node
        backup = None
        if home is not None and home.redundancy_group is not None:
            peer = home.redundancy_group.peer_of(home)
            backup = peer.name if peer else None
        serving = user.serving_node
        return UserInfo(
            user.user_id, user.jid.lower(), serving.name if serving else None, home.name if home else None, backup
        )
    finally:
        close_old_connections()
