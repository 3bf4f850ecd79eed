"""What the HA panel of a group page shows: states, Server Action buttons, timeline, alarms."""

from __future__ import annotations

from topology.choices import TRANSITION_STATES
from topology.ha.transitions import offered_actions
from topology.models import HATransition, Node, RedundancyGroup, ServerAction, ServerActionStatus

TIMELINE_LENGTH = 30


def group_ha_context(group: RedundancyGroup, user) -> dict:
    members = list(Node.objects.filter(redundancy_group=group).order_by("group_position"))
    group = RedundancyGroup.objects.get(pk=group.pk)  # fresh ha_enabled
    servers = {node.group_position: node for node in members}

    rows = []
    for position in (1, 2):
        node = servers.get(position)
        peer = next((n for n in members if node is not None and n.pk != node.pk), None)
        actions = offered_actions(node, peer, group.ha_enabled) if node is not None and node.agent_reporting else []
        rows.append({"position": position, "node": node, "actions": actions})
    pending = ServerAction.objects.filter(group=group, status=ServerActionStatus.PENDING).first()
    last_action = ServerAction.objects.filter(group=group).select_related("node").first()
    in_transition = any(node.ha_state in TRANSITION_STATES for node in members if node.agent_reporting)
    return {
        "group": group,
        "rows": rows,
        "pending": pending,
        "last_action": last_action,
        "timeline": HATransition.objects.filter(group=group).select_related("node")[:TIMELINE_LENGTH],
        "can_act": user.has_perm("topology.run_server_action"),
        "polling": bool(pending) or in_transition,
    }
