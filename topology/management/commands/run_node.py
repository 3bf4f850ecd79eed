"""``manage.py run_node NODE``: run the node agent that is the IM and Presence node NODE."""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import logging
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from topology.agent.db import end_idle_transactions
from topology.agent.metrics import METRICS_PORT_OFFSET
from topology.agent.node_agent import NodeAgent
from topology.models import Node


class Command(BaseCommand):
    help = (
        "Run the node agent of NODE: its services (Cisco XCP Router, Cisco XCP Text Conference Manager, "
        "Cisco Server Recovery Manager) reconciled to the Control Center's desired state, heartbeats and "
        "observed state written to the config DB. Stops cleanly on SIGTERM or Ctrl-C."
    )

    def add_arguments(self, parser):
        parser.add_argument("node", help="Node name, as on System > Nodes.")
        parser.add_argument(
            "--reconcile-interval",
            type=float,
            default=0.5,
            help="Seconds between two looks at the desired state (default 0.5).",
        )
        parser.add_argument(
            "--restart-delay",
            type=float,
            default=5.0,
            help="Seconds before a service that failed to start or crashed is tried again (default 5).",
        )
        parser.add_argument(
            "--metrics-host",
            default=None,
            help="Address of the node's Prometheus endpoint (default NODE_METRICS_HOST, 127.0.0.1: loopback only).",
        )
        parser.add_argument(
            "--metrics-port",
            type=int,
            default=None,
            help=f"Port of the node's Prometheus endpoint (default: the node agent port + {METRICS_PORT_OFFSET}); "
            "0 turns it off.",
        )

    def handle(
        self,
        *args,
        node: str,
        reconcile_interval: float,
        restart_delay: float,
        metrics_host: str | None,
        metrics_port: int | None,
        **options,
    ):
        end_idle_transactions()
        agent_port = Node.objects.filter(name=node).values_list("agent_port", flat=True).first()
        if agent_port is None:
            raise CommandError(f"No node named {node!r}; see System > Nodes.")
        if metrics_port is None:
            metrics_port = agent_port + METRICS_PORT_OFFSET if agent_port + METRICS_PORT_OFFSET <= 65535 else 0
        if not 0 <= metrics_port <= 65535:
            raise CommandError("--metrics-port must be between 1 and 65535, or 0 for no metrics endpoint.")
        metrics_address = (metrics_host or settings.NODE_METRICS_HOST, metrics_port) if metrics_port else None
        if not 0.05 <= reconcile_interval <= 1.0:
            raise CommandError("--reconcile-interval must be between 0.05 and 1 second.")
        lock = self._lock(node)
        logging.getLogger().setLevel(logging.INFO)
        connection.close()  # the agent's own DB thread opens its connection
        try:
            agent = NodeAgent(
                node,
                reconcile_interval=reconcile_interval,
                restart_delay=restart_delay,
                metrics_address=metrics_address,
            )
            asyncio.run(agent.run())
        finally:
            lock.close()

    @staticmethod
    def _lock(node: str):
        """One agent per node and config DB on this host: a second one refuses to start."""
        database = settings.DATABASES["default"]
        key = hashlib.sha256(f"{database.get('HOST')}:{database.get('PORT')}:{database['NAME']}".encode()).hexdigest()
        path = Path(settings.VAR_DIR) / "agents" / f"{node}-{key[:12]}.lock"
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = path.open("w")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            handle.close()
            raise CommandError(f"A node agent for {node} is already running on this host.") from exc
        return handle
