"""Persistent chat databases for the demo topology: one PostgreSQL database per redundancy
group with HA (both nodes share it), one per node without HA, on the local server."""

from __future__ import annotations

import psycopg
from psycopg import sql

from messaging.assignment import assign
from messaging.dbcheck.install import install_schema
from messaging.models import ChatSettings, DatabaseType, ExternalDatabase
from topology.models import Cluster, Node

DEMO_DATABASE_PREFIX = "imp_demo_tc_"


def _ensure_database(admin: dict, name: str) -> None:
    with psycopg.connect(dbname="postgres", autocommit=True, connect_timeout=5, **admin) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


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
        _ensure_database(admin, name)
        database, _ = ExternalDatabase.objects.get_or_create(
            hostname=host,
            port=port,
            database_name=name,
            defaults={"db_type": DatabaseType.POSTGRES, "username": user},
        )
        database.set_password(password or "demo")
        database.save()
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
