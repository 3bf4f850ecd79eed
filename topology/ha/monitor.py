"""The Server Recovery Manager of one node: what it reads each tick, and how it judges the peer.

``RecoveryManager.tick()`` runs every few tenths of a second inside the node agent. It reads
the group, both nodes, the service parameters and the services' observed state from the
config DB, carries out pending Server Actions (``topology.ha.actions``), and hands what it saw
to the decision of its node's state (``topology.ha.decisions``), which makes the transitions of
``topology.ha.transitions``. A transition that needs this node's Text Conference Manager to
load or unload rooms returns a follow-up: the agent re-reads the room hosting, then calls the
follow-up with whether that worked. After each tick the agent compares ``group_states()`` with
the last: a change is a transition, and the node's XCP Router checks its users at once.
Plain module: no HTTP and no asyncio.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from django.db.models import F, Q
from django.utils import timezone

from topology.agent.base import START_TIMEOUT
from topology.catalog import ServiceName, ServiceStatus
from topology.choices import HAReason, HAState
from topology.ha import actions, decisions, transitions
from topology.ha.decisions import FollowUp, Look, seconds
from topology.models import Node, Service, ServiceParameters

log = logging.getLogger(__name__)


@dataclass
class Verdict:
    """Why the peer must be failed over; ``services_down`` when its agent reports and its
    critical services have been down for the delay (not its heartbeat lost, nor a reboot)."""

    reason: HAReason
    failed_reason: HAReason
    services_down: bool = False


class RecoveryManager:
    """The SRM of one node."""

    def __init__(self, node_id: int) -> None:
        self.node_id = node_id
        self.started_at = timezone.now()

    # --- reading ---------------------------------------------------------------------

    def _read(self):
        node = Node.objects.select_related("redundancy_group").get(pk=self.node_id)
        group = node.redundancy_group
        peer = None
        if group is not None:
            peer = Node.objects.filter(redundancy_group=group).exclude(pk=node.pk).first()
        params = ServiceParameters.for_cluster(node.cluster_id)
        return node, group, peer, params

    @staticmethod
    def critical_down_since(node: Node, params: ServiceParameters) -> datetime | None:
        """Since when a critical service of ``node`` is not Started (None if all run).

        Measured from the node agent's start at the earliest, so the stopped state left over
        from an earlier run does not count; and, while the node initializes, from the start of
        its initialization: an SRM that (re)starts, after Recover say, gets the whole critical
        service delay to bring the node's critical services back before its peer fails it over.
        """
        rows = {
            name: (status, changed_at)
            for name, status, changed_at in node.services.filter(name__in=params.critical_services).values_list(
                "name", "status", "status_changed_at"
            )
        }
        floor = node.agent_started_at
        if node.ha_state == HAState.INITIALIZING and node.ha_state_changed_at is not None:
            floor = max(filter(None, [floor, node.ha_state_changed_at]))
        down_since: datetime | None = None
        for name in params.critical_services:
            status, changed_at = rows.get(name, (ServiceStatus.NOT_RUNNING, None))
            if status == ServiceStatus.STARTED:
                continue
            since = max(filter(None, [changed_at, floor]), default=None) or timezone.now()
            down_since = since if down_since is None else min(down_since, since)
        return down_since

    def peer_verdict(self, peer: Node, params: ServiceParameters, now: datetime) -> Verdict | None:
        """Whether the peer must be failed over now, and why (reference 1.5, 1.6)."""
        initializing = peer.ha_state in (HAState.INITIALIZING, HAState.UNKNOWN)
        stopped_cleanly = peer.last_heartbeat is not None and peer.agent_started_at is None
        timeout = params.initialization_heartbeat_timeout if initializing else params.heartbeat_timeout
        last_seen = peer.last_heartbeat or self.started_at
        if now - last_seen >= seconds(timeout):
            if stopped_cleanly:
                return Verdict(HAReason.PEER_REBOOT, HAReason.PEER_REBOOT)
            if initializing:
                return Verdict(HAReason.PEER_DOWN_DURING_INITIALIZATION, HAReason.INITIALIZATION)
            return Verdict(HAReason.PEER_DOWN, HAReason.PEER_DOWN)
        down_since = self.critical_down_since(peer, params)
        if down_since is not None and now - down_since >= seconds(params.critical_service_delay):
            if stopped_cleanly:
                return Verdict(HAReason.PEER_REBOOT, HAReason.PEER_REBOOT)
            if initializing:
                return Verdict(HAReason.PEER_DOWN_DURING_INITIALIZATION, HAReason.INITIALIZATION, services_down=True)
            if peer.services.filter(
                name__in=params.critical_services, status=ServiceStatus.NOT_RUNNING, database_failure=True
            ).exists():
                return Verdict(HAReason.DATABASE_FAILURE, HAReason.DATABASE_FAILURE, services_down=True)
            return Verdict(HAReason.CRITICAL_SERVICE_DOWN, HAReason.CRITICAL_SERVICE_DOWN, services_down=True)
        return None

    @staticmethod
    def take_back_failed(node: Node, params: ServiceParameters, now: datetime) -> bool:
        """Whether the critical services ``node`` starts for its take-back failed to start.

        Judged from the critical service delay after Taking Back began, on what the agent
        reports rather than on how long starting takes: a service that failed to start (Not
        Running) or that is commanded out of service will not come; one the agent is still
        starting gets the agent's own start timeout on top of the delay.
        """
        began = node.ha_state_changed_at
        delay = seconds(params.critical_service_delay)
        if began is None or now - began < delay:
            return False
        rows = {service.name: service for service in node.services.filter(name__in=params.critical_services)}
        for name in params.critical_services:
            service = rows.get(name)
            if service is None or service.status == ServiceStatus.NOT_RUNNING or not service.wants_running:
                return True
            if service.status != ServiceStatus.STARTED and now - began >= delay + seconds(START_TIMEOUT):
                return True
        return False

    def group_states(self) -> tuple:
        """This node's and its peer's HA states and since when: they change with every
        transition of the group, whichever SRM (or Server Action) made it, and so whenever
        the group's users may have moved to the other node."""
        group = Node.objects.filter(pk=self.node_id).values("redundancy_group_id")
        nodes = Node.objects.filter(Q(pk=self.node_id) | Q(redundancy_group_id__in=group))
        return tuple(nodes.order_by("pk").values_list("pk", "ha_state", "ha_state_changed_at"))

    def interval(self) -> float:
        """How often to tick: the heartbeat interval, at most every second, at least every 0.1 s."""
        node = Node.objects.only("cluster_id").get(pk=self.node_id)
        return max(0.1, min(ServiceParameters.for_cluster(node.cluster_id).heartbeat_interval, 1.0))

    # --- deciding --------------------------------------------------------------------

    def initialize(self) -> None:
        """The SRM starts: Initializing, unless the node is in the middle of a failover."""
        _node, group, peer, _params = self._read()
        if group is None or not group.ha_enabled or peer is None:
            transitions.set_ha_not_enabled(self.node_id)  # not while a failover is still to undo
            return
        transitions.set_own_state(
            self.node_id,
            HAState.INITIALIZING,
            HAReason.INITIALIZATION,
            only_from={HAState.NORMAL, HAState.UNKNOWN, HAState.INITIALIZING},
        )
        # Restarted during a manual failover: the node stays Idle, now for Initialization (1.5).
        transitions.set_own_state(self.node_id, HAState.IDLE, HAReason.INITIALIZATION, only_from={HAState.IDLE})

    def tick(self) -> FollowUp | None:
        """One look at the group; returns a follow-up when the TC must re-read its rooms first.

        With HA off the SRM takes nothing over, but a failover in progress is not abandoned:
        transitions under way finish, and the failed-over node gets its users and rooms back by
        a fallback as soon as it can take them (reason High Availability Not Enabled). Only then
        does each node show High Availability Not Enabled.
        """
        node, group, peer, params = self._read()
        if group is None or peer is None:
            transitions.set_ha_not_enabled(self.node_id)
            return None
        if actions.apply_server_actions(self.node_id):
            node, group, peer, params = self._read()
        look = Look(self, node, peer, params, group.ha_enabled, timezone.now(), self.critical_down_since(node, params))
        follow_up = decisions.decide(look)
        if follow_up is None and not group.ha_enabled:
            transitions.set_ha_not_enabled(self.node_id)
        return follow_up

    def restart_pending(self) -> bool:
        """Whether a restart of this node's SRM was asked for and not yet carried out."""
        return Service.objects.filter(
            node_id=self.node_id,
            name=ServiceName.SERVER_RECOVERY_MANAGER,
            request_number__gt=F("handled_request_number"),
        ).exists()

    def finish_take_over(self, rooms_loaded: bool) -> None:
        transitions.finish_take_over(self.node_id, rooms_loaded)
