"""Which node hosts a group chat alias, and so which node is home to a room (reference 4.4).

Room JIDs are ``room@<alias>``. A node answers to its system-generated alias
(``conference-<node>-<Cluster ID>.<domain>``) while the cluster lets the system manage
primary aliases, and to every alias mapped to it on the alias mapping page.
"""

from __future__ import annotations

from collections.abc import Iterable

from messaging.models import ChatAlias, ChatSettings
from messaging.models.aliases import node_for_alias, system_alias
from topology.models import Node

__all__ = ["aliases_by_node", "aliases_of", "home_node_for_room"]


def aliases_of(node: Node) -> list[str]:
    """Every alias the node answers to: the system alias first (when managed), then the
    primary mapped alias, then the others."""
    return aliases_by_node([node])[node.pk]


def aliases_by_node(nodes: Iterable[Node]) -> dict[int, list[str]]:
    """``aliases_of`` for many nodes in two queries: node pk → its aliases, in that order."""
    nodes = list(nodes)
    managed_by_default = ChatSettings._meta.get_field("auto_manage_aliases").get_default()
    managed = dict(
        ChatSettings.objects.filter(cluster_id__in={node.cluster_id for node in nodes}).values_list(
            "cluster_id", "auto_manage_aliases"
        )
    )
    mapped: dict[int, list[str]] = {node.pk: [] for node in nodes}
    rows = ChatAlias.objects.filter(node__in=nodes).order_by("-is_primary", "alias").values_list("node_id", "alias")
    for node_id, alias in rows:
        mapped[node_id].append(alias)
    found = {}
    for node in nodes:
        aliases = [system_alias(node)] if managed.get(node.cluster_id, managed_by_default) else []
        aliases += [alias for alias in mapped[node.pk] if alias not in aliases]
        found[node.pk] = aliases
    return found


def home_node_for_room(room_jid: str) -> Node | None:
    """The node that hosts ``room@alias`` (a resource after ``/`` is ignored), or None."""
    bare = room_jid.split("/", 1)[0]
    if "@" not in bare:
        return None
    return node_for_alias(bare.rsplit("@", 1)[1])
