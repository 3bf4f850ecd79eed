"""What the HA panel of a group page shows: states, Server Action buttons, timeline, alarms."""

from __future__ import annotations

from topology.catalog import ServiceStatus
from topology.choices import FAILOVER_STATES, TRANSITION_STATES, HAState
from topology.ha.actions import available_actions
from topology.models import (
    HATransition,
    Node,
    RedundancyGroup,
    ServerAction,
    ServerActionName,
    ServerActionStatus,
    ServiceParameters,
)

TIMELINE_LENGTH = 30


def critical_services_down(node: Node) -> bool:
    """Whether a critical service of ``node`` is not running, as its agent last reported."""
    critical = ServiceParameters.for_cluster(node.cluster_id).critical_services
    started = node.services.filter(name__in=critical, status=ServiceStatus.STARTED).count()
    return started < len(set(critical))


def handing_back(group: RedundancyGroup, members: list[Node]) -> list[dict]:
    """With HA off, the failed-over nodes whose users and rooms are still on their peer.

    The SRMs give them back as soon as the node can take them (``RecoveryManager.tick``);
    until then the group page says where they are and what the nodes wait for.
    """
    if group.ha_enabled:
        return []
    waiting = []
    for node in members:
        backup = next((m for m in members if m.pk == node.rooms_hosted_by_id), None)
        if backup is None and not node.rooms_moving:
            continue
        waiting.append({"node": node, "backup": backup, "moving": node.rooms_moving})
    return waiting


def group_ha_context(group: RedundancyGroup, user) -> dict:
    members = list(Node.objects.filter(redundancy_group=group).order_by("group_position"))
    group = RedundancyGroup.objects.get(pk=group.pk)  # fresh ha_enabled
    servers = {node.group_position: node for node in members}

    rows = []
    for position in (1, 2):
        node = servers.get(position)
        peer = next((n for n in members if node is not None and n.pk != node.pk), None)
        actions, unavailable = [], []
        if node is not None and node.agent_reporting:
            actions, unavailable = available_actions(node, peer, group.ha_enabled)
        rows.append(
            {
                "position": position,
                "node": node,
                "actions": actions,
                "unavailable": unavailable,
                # Fallback comes once the failed node's critical services run again (reference 1.6).
                "start_services_first": node is not None
                and group.ha_enabled
                and node.ha_state == HAState.FAILED_OVER_CRITICAL_SERVICES_NOT_RUNNING,
                # Recover restarts the SRMs, not the services: a node whose critical services
                # are still down would only initialize until they run (or be taken over).
                "start_services_before_recover": node is not None
                and ServerActionName.RECOVER in actions
                and critical_services_down(node),
            }
        )
    pending = ServerAction.objects.filter(group=group, status=ServerActionStatus.PENDING).first()
    last_action = ServerAction.objects.filter(group=group).select_related("node").first()
    in_transition = any(node.ha_state in TRANSITION_STATES for node in members if node.agent_reporting)
    back = handing_back(group, members)
    in_failover = any(node.ha_state in FAILOVER_STATES for node in members)
    return {
        "group": group,
        "rows": rows,
        "pending": pending,
        "last_action": last_action,
        "handing_back": back,
        "timeline": HATransition.objects.filter(group=group).select_related("node")[:TIMELINE_LENGTH],
        "can_act": user.has_perm("topology.run_server_action"),
        # A group with HA on can fail over at any moment: its page follows the states live.
        "polling": group.ha_enabled or bool(pending) or in_transition or bool(back) or in_failover,
        "poll_every": "1s" if pending or in_transition else "2s",
    }
