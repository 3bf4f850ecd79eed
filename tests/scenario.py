"""The use cases' presence topology, built one way for every suite that needs it.

The reference use case (seed-ha-persistent-chat; the demo's topology too): cluster1 with nodes
1A, 1B, 2A, 2B in two redundancy groups, cluster2 with node C2A, users homed on them, one
persistent chat database per HA group. The chat, agent, use-case and end-to-end suites each
build part of it; ``Scenario`` is the one place that knows how, so a node always answers on
a free loopback port and tells clients to sign in again after 1 s, a group is made through
the product's own rules, and a database is assigned through ``database_assignment.assign``.

Suites that start real node agents give a ``suffix``: the agents' chat bus (Redis) is shared
with other test runs on this host, and its channels are named after the nodes.
"""

from __future__ import annotations

import socket

from messaging.database_assignment import assign
from messaging.models import ChatSettings, DatabaseType, ExternalDatabase
from messaging.tc.schema import Dialect, install_statements
from tests.conftest import PG_ADMIN, chat_user
from topology.models import Cluster, EndUser, Node, NodeServiceParameters, RedundancyGroup


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def give_xmpp_ports(nodes) -> None:
    """An XMPP client port on every node, none the same as a node's agent port (those are not
    bound yet, so ``free_port`` could hand one out again)."""
    taken = {node.agent_port for node in nodes}
    for node in nodes:
        while (port := free_port()) in taken:
            pass
        taken.add(port)
        node.xmpp_port = port
        node.save(update_fields=["xmpp_port"])


def install_schema(postgres, name: str) -> None:
    """Install the persistent chat (``tc_*``) schema in the test's PostgreSQL database ``name``."""
    with postgres.connect(name, autocommit=True) as conn:
        for statement in install_statements(Dialect.POSTGRES):
            conn.execute(statement)


def external_database(name: str) -> ExternalDatabase:
    """Register the local PostgreSQL database ``name`` as an external database."""
    database = ExternalDatabase(
        database_name=name,
        db_type=DatabaseType.POSTGRES,
        username=PG_ADMIN["user"],
        hostname=PG_ADMIN["host"],
        port=PG_ADMIN["port"],
    )
    database.set_password("")
    database.save()
    return database


def chat_database(postgres, prefix: str) -> ExternalDatabase:
    """A new PostgreSQL database with the persistent chat schema, registered as an external database."""
    name = postgres.database(prefix)
    install_schema(postgres, name)
    return external_database(name)


class Scenario:
    """Builds clusters, nodes, redundancy groups, database assignments and users, keyed the way
    the use cases name them ("1a", "c2a"); ``nodes`` holds each node by that key."""

    def __init__(self, suffix: str = "") -> None:
        self.suffix = suffix
        self.clusters: dict[str, Cluster] = {}
        self.nodes: dict[str, Node] = {}
        self.groups: dict[str, RedundancyGroup] = {}

    def cluster(self, name: str, cluster_id: str, *, persistent_chat: bool = False) -> Cluster:
        """A cluster of domain example.com; ``persistent_chat`` turns Enable Persistent Chat on."""
        cluster = Cluster.objects.create(name=name, cluster_id=cluster_id, domain="example.com")
        if persistent_chat:
            chat = ChatSettings.for_cluster(cluster)
            chat.enable_persistent_chat = True
            chat.save()
        self.clusters[name] = cluster
        return cluster

    def node(self, key: str, cluster: Cluster, name: str | None = None) -> Node:
        """Node ``imp-<key><suffix>`` (or ``name``), its agent on a free loopback port."""
        node = Node.objects.create(
            name=name or f"imp-{key}{self.suffix}",
            cluster=cluster,
            ip_address="127.0.0.1",
            agent_host="127.0.0.1",
            agent_port=free_port(),
        )
        NodeServiceParameters.objects.create(node=node, client_relogin_lower_limit=1, client_relogin_upper_limit=1)
        self.nodes[key] = node
        return node

    def group(self, name: str, first: str, second: str | None = None, *, ha: bool = False) -> RedundancyGroup:
        """A redundancy group of the nodes keyed ``first`` and ``second``, HA on if ``ha``."""
        group = RedundancyGroup.objects.create(name=name, cluster=self.nodes[first].cluster)
        group.set_servers(self.nodes[first], self.nodes[second] if second else None)
        if ha:
            group.ha_enabled = True
            group.save()
        self.groups[name] = group
        return group

    def assign(self, database: ExternalDatabase, *keys: str) -> None:
        """Assign ``database`` to the nodes keyed ``keys`` (Persistent Chat Database Assignment)."""
        assign({self.nodes[key]: database for key in keys})

    def user(self, user_id: str, key: str) -> EndUser:
        """End user ``user_id`` (``<user_id>@example.com``) homed on the node keyed ``key``, with
        the chat password ``tests.conftest.chat_password(user_id)``."""
        return chat_user(user_id, self.nodes[key])
