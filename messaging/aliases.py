"""Which node hosts a group chat alias, and so which node is home to a room (reference 4.4).

Room JIDs are ``room@<alias>``. A node answers to its system-generated alias
(``conference-<node>-<Cluster ID>.<domain>``) while the cluster lets the system manage
primary aliases, and to every alias mapped to it on the alias mapping page.
"""

from __future__ import annotations

import re

from messaging.models import ChatAlias, ChatSettings
from messaging.models.aliases import system_alias
from topology.models import Node

__all__ = ["aliases_of", "home_node_for_room", "node_for_alias", "system_alias"]

_SYSTEM_ALIAS = re.compile(r"^conference-(?P<node>\d+)-(?P<rest>.+)$")


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


def node_for_alias(domain: str, exclude_alias_pk: int | None = None) -> Node | None:
    """The node that answers to ``domain`` (the part of a room JID after ``@``), or None."""
    domain = domain.strip().lower()
    mapped = ChatAlias.objects.filter(alias=domain).select_related("node__cluster")
    if exclude_alias_pk is not None:
        mapped = mapped.exclude(pk=exclude_alias_pk)
    found = mapped.first()
    if found is not None:
        return found.node
    match = _SYSTEM_ALIAS.match(domain)
    if match is None:
        return None
    node = Node.objects.select_related("cluster").filter(pk=int(match["node"])).first()
    if node is None or system_alias(node) != domain or not ChatSettings.peek(node.cluster).auto_manage_aliases:
        return None
    return node


def home_node_for_room(room_jid: str) -> Node | None:
    """The node that hosts ``room@alias`` (a resource after ``/`` is ignored), or None."""
    bare = room_jid.split("/", 1)[0]
    if "@" not in bare:
        return None
    return node_for_alias(bare.rsplit("@", 1)[1])
