"""User assignment by the cluster's User Assignment Mode (reference section 3)."""

from __future__ import annotations

from collections import defaultdict

from django.db import transaction

from topology.choices import UserAssignmentMode
from topology.models import Cluster, EndUser, Node


def _assignable_nodes(cluster: Cluster, mode: str) -> list[Node]:
    nodes = Node.objects.filter(cluster=cluster, redundancy_group__isnull=False).order_by(
        "redundancy_group__name", "group_position"
    )
    if mode == UserAssignmentMode.ACTIVE_STANDBY:
        return [node for node in nodes if node.group_position == 1]
    return list(nodes)


@transaction.atomic
def assign_users(cluster: Cluster, users=None) -> dict[Node, int]:
    """(Re)assign users of ``cluster`` by its User Assignment Mode; return users per node.

    ``users`` defaults to every user homed in the cluster or not yet assigned anywhere.
    Balanced spreads them evenly over every grouped node; Active-Standby over the first
    node of each group; None changes nothing.
    """
    mode = cluster.user_assignment_mode
    counts: dict[Node, int] = defaultdict(int)
    if mode == UserAssignmentMode.NONE:
        return counts
    nodes = _assignable_nodes(cluster, mode)
    if not nodes:
        return counts
    if users is None:
        users = EndUser.objects.filter(assigned_node__cluster=cluster) | EndUser.objects.filter(
            assigned_node__isnull=True
        )
    batch = []
    for index, user in enumerate(users.order_by("user_id")):
        node = nodes[index % len(nodes)]
        if user.assigned_node_id != node.pk:
            user.assigned_node = node
            batch.append(user)
        counts[node] += 1
    for user in batch:  # one save per user, so the audit trail records each move
        user.save(update_fields=["assigned_node"])
    return counts
