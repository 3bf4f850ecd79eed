"""Which node hosts a group chat alias, and so which node is home to a room (reference 4.4).

Room JIDs are ``room@<alias>``. A node answers to its system-generated alias
(``conference-<node>-<Cluster ID>.<domain>``) while the cluster lets the system manage
primary aliases, and to every alias mapped to it on the alias mapping page.
"""

from __future__ import annotations

from messaging.models import ChatAlias, ChatSettings
from messaging.models.aliases import node_for_alias, system_alias
from topology.models import Node

__all__ = ["aliases_of", "home_node_for_room"]


def aliases_of(node: Node) -> list[str]:
    """Every alias the node answers to: the system alias first (when managed), then the
    primary mapped alias, then the others."""
    aliases = []
    if ChatSettings.peek(node.cluster).auto_manage_aliases:
        aliases.append(system_alias(node))
    for alias in ChatAlias.objects.filter(node=node).order_by("-is_primary", "alias").values_list("alias", flat=True):
        if alias not in aliases:
            aliases.append(alias)
    return aliases


def home_node_for_room(room_jid: str) -> Node | None:
    """The node that hosts ``room@alias`` (a resource after ``/`` is ignored), or None."""
    bare = room_jid.split("/", 1)[0]
    if "@" not in bare:
        return None
    return node_for_alias(bare.rsplit("@", 1)[1])
