"""The node agent's Prometheus endpoint (``run_node --metrics-address``).

What only the running node knows: its HA state and service states as its agent last read and
observed them, the chat sessions its XCP Router holds, the rooms its Text Conference Manager
serves, and the messages it committed to its persistent chat database (a counter) with how
long each commit took (a histogram). The gauges are computed at scrape time from the agent's
memory, so a scrape costs no config DB query. The console's ``/metrics`` adds what the config
DB holds for every node (``imp_admin.metrics``).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from prometheus_client import REGISTRY, Counter, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from topology.catalog import START_ORDER, ServiceName, ServiceStatus
from topology.choices import HAState

if TYPE_CHECKING:
    from topology.agent.node_agent import NodeAgent

log = logging.getLogger(__name__)

# The metrics port of a node agent, unless given: its chat port plus this offset.
METRICS_PORT_OFFSET = 10000

MESSAGES_COMMITTED = Counter(
    "imp_tc_messages_committed",
    "Chat messages the Text Conference Manager committed to its database (retried posts count once); "
    "rate() of it is the messages committed per second.",
    ["node"],
)
COMMIT_SECONDS = Histogram(
    "imp_tc_commit_seconds",
    "Seconds one batch of posts took to commit to the persistent chat database.",
    ["node"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)


class NodeAgentCollector(Collector):
    """Gauges read from a running node agent's memory at scrape time."""

    def __init__(self, agent: NodeAgent) -> None:
        self.agent = agent

    def describe(self):
        return []  # computed at scrape time; nothing to check at registration

    def collect(self):
        agent = self.agent
        node = agent.node_name
        ha_state = agent.ha_state
        ha = GaugeMetricFamily(
            "imp_node_ha_state",
            "1 for the node's HA state as its node agent last read it, 0 for the other states.",
            labels=["node", "state"],
        )
        for state in HAState:
            ha.add_metric([node, state.value], 1.0 if state == ha_state else 0.0)
        yield ha

        statuses = agent.service_statuses()
        service = GaugeMetricFamily(
            "imp_service_state",
            "1 for each service's status as the node agent observes it, 0 for the other statuses.",
            labels=["node", "service", "status"],
        )
        for name in START_ORDER:
            current = statuses.get(name)
            for status in ServiceStatus:
                service.add_metric([node, ServiceName(name).label, status.value], 1.0 if status == current else 0.0)
        yield service

        router = agent.instances.get(ServiceName.XCP_ROUTER)
        tc = agent.instances.get(ServiceName.TEXT_CONFERENCE_MANAGER)
        sessions = GaugeMetricFamily(
            "imp_router_sessions", "Chat clients signed in on the node's XCP Router now.", labels=["node"]
        )
        sessions.add_metric([node], float(len(getattr(router, "sessions", {}))) if router is not None else 0.0)
        yield sessions
        rooms = GaugeMetricFamily(
            "imp_tc_rooms_hosted",
            "Rooms the node's Text Conference Manager holds in memory now (its own and, after a failover, its peer's).",
            labels=["node"],
        )
        rooms.add_metric([node], float(len(tc.rooms)) if tc is not None else 0.0)
        yield rooms
        database = GaugeMetricFamily(
            "imp_tc_database_up",
            "1 while the Text Conference Manager's persistent chat database answers, 0 when it is lost "
            "or the service is not running.",
            labels=["node"],
        )
        database.add_metric([node], 1.0 if tc is not None and tc.database_ok else 0.0)
        yield database


class MetricsEndpoint:
    """The HTTP server of one node agent's metrics, in a thread of its own."""

    def __init__(self, agent: NodeAgent, host: str, port: int) -> None:
        self.agent, self.host, self.port = agent, host, port
        self.collector = NodeAgentCollector(agent)
        self._server = None

    def start(self) -> bool:
        """Listen; on failure log why and carry on (a node without metrics still serves chat)."""
        REGISTRY.register(self.collector)
        try:
            self._server, _thread = start_http_server(self.port, addr=self.host)
        except OSError as exc:
            REGISTRY.unregister(self.collector)
            log.warning("Metrics endpoint not started: cannot listen on %s:%s: %s", self.host, self.port, exc)
            return False
        log.info("Metrics of %s on http://%s:%s/metrics", self.agent.node_name, self.host, self.port)
        return True

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
            REGISTRY.unregister(self.collector)
