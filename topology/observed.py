"""Observed state of the nodes, as their node agents and SRMs report it.

Other apps (Verify HA settings, merge validation, the chat service's routing) ask here, so
they never depend on how the agent stores what it observes.
"""

from __future__ import annotations

from django.db.models import Q

from topology.catalog import ServiceName, ServiceStatus
from topology.models import HAAlarm, Node, Service

TEXT_CONFERENCE_MANAGER = ServiceName.TEXT_CONFERENCE_MANAGER.label
XCP_ROUTER = ServiceName.XCP_ROUTER.label
SERVER_RECOVERY_MANAGER = ServiceName.SERVER_RECOVERY_MANAGER.label


def _service_value(service: str) -> str:
    """Accept the product's service name ("Cisco XCP Router") or its stored value."""
    for choice in ServiceName:
        if service in (choice.value, choice.label):
            return choice.value
    raise ValueError(f"Unknown service {service!r}; known: {', '.join(ServiceName.labels)}")


def service_running(node: Node, service: str) -> bool | None:
    """True if the node agent reports ``service`` Started, False if not, None if unknown.

    Unknown means the node agent is not reporting (no heartbeat within the SRM's heartbeat
    timeout); callers count it as not passed.
    """
    node = Node.objects.only("last_heartbeat", "heartbeat_expires_at").get(pk=node.pk)
    return services_running([node], service)[node.pk]


def services_running(nodes: list[Node], service: str) -> dict[int, bool | None]:
    """``service_running`` of each of ``nodes`` (with their heartbeat fields loaded), node pk →
    True, False or None, in one query."""
    reporting = [node.pk for node in nodes if node.agent_reporting]
    started = set(
        Service.objects.filter(
            node__in=reporting, name=_service_value(service), status=ServiceStatus.STARTED
        ).values_list("node_id", flat=True)
    )
    return {node.pk: (node.pk in started if node.pk in reporting else None) for node in nodes}


def room_host(home_node: Node, nodes: dict[int, Node] | None = None) -> Node | None:
    """The node whose Text Conference Manager serves ``home_node``'s rooms now.

    The home node itself, or its backup while it is failed over; None during the short
    hand-back of a fallback (``rooms_moving``), when the backup has released the rooms and
    the home node has not yet taken them: no node serves them then. Reads the fields of the
    instance given (callers pass a freshly read node); ``nodes`` (pk → node, read with it)
    saves reading the backup again.
    """
    if home_node.rooms_moving:
        return None
    if home_node.rooms_hosted_by_id is None:
        return home_node
    if nodes and home_node.rooms_hosted_by_id in nodes:
        return nodes[home_node.rooms_hosted_by_id]
    return Node.objects.filter(pk=home_node.rooms_hosted_by_id).first() or home_node


def hosted_homes(node: Node) -> list[Node]:
    """The nodes whose rooms ``node``'s Text Conference Manager must serve now.

    Its own rooms unless they are failed over to the peer or being handed back, plus the
    rooms of a failed-over peer. The TC calls this when it starts and when the agent tells it
    the hosting changed (after a failover or a fallback).
    """
    candidates = Node.objects.filter(Q(pk=node.pk, rooms_hosted_by__isnull=True) | Q(rooms_hosted_by=node))
    return [home for home in candidates.order_by("name") if not home.rooms_moving]


def recent_alarms(limit: int = 10) -> list[HAAlarm]:
    """The newest SRM alarms (UC_SRM-2-SRMFailover, UC_SRM-2-SRMFailed) for the dashboard."""
    return list(HAAlarm.objects.select_related("from_node", "to_node", "group")[:limit])
