"""The persistent chat database rule of a redundancy group (reference 4.3, 5.2), in one place.

With high availability on, both nodes of a redundancy group use one external database and no
other group or node uses it; without it, each node has a database of its own. Unassigned is
allowed (Verify High Availability Settings reports it).

Plain functions over values already read: they query nothing and import no model, so the
messaging models (``messaging.models.databases.validate_assignments``, when an assignment is
saved) and the redundancy group (``topology.models.topology.database_assignment_warning``,
after an HA change) call the same rule without importing each other.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from topology.models import Node, RedundancyGroup

Owner = tuple[str, int]


def owner(node: Node) -> Owner:
    """Who a database assigned to ``node`` belongs to: its group with HA on, else the node itself."""
    group = node.redundancy_group
    return ("group", group.pk) if group is not None and group.ha_enabled else ("node", node.pk)


def assignment_errors(
    proposed: Iterable[Node], final: dict[int, int | None], nodes: dict[int, Node], names: dict[int, str]
) -> dict[Node, list[str]]:
    """What breaks the rule in a proposed set of assignments, as messages keyed by node.

    ``final`` maps every assigned node's pk to its database pk once the proposal is applied,
    ``nodes`` holds those nodes (with their redundancy group) by pk, ``names`` the databases'
    names by pk.
    """
    errors: dict[Node, list[str]] = {}
    users: dict[int, set[Owner]] = {}
    for node_id, db_id in final.items():
        if db_id and node_id in nodes:
            users.setdefault(db_id, set()).add(owner(nodes[node_id]))

    for node in proposed:
        node = nodes.get(node.pk, node)
        db_id = final.get(node.pk)
        group = node.redundancy_group
        if group is not None and group.ha_enabled and db_id:
            peer_db = next(
                (final.get(n.pk) for n in nodes.values() if n.redundancy_group_id == group.pk and n.pk != node.pk),
                None,
            )
            if peer_db and peer_db != db_id:
                errors.setdefault(node, []).append(
                    f"High availability is on in {group}: {node} and its peer must use the same external "
                    f"database, but the peer uses {names.get(peer_db)}."
                )
        if db_id and len(users.get(db_id, ())) > 1:
            others = sorted(_describe(o, nodes) for o in users[db_id] if o != owner(node))
            errors.setdefault(node, []).append(
                f"{names.get(db_id)} is already used by {', '.join(others)}; "
                + (
                    "a database serves one redundancy group."
                    if owner(node)[0] == "group"
                    else "without high availability each node needs its own database."
                )
            )
    return errors


def _describe(who: Owner, nodes: dict[int, Node]) -> str:
    kind, pk = who
    if kind == "group":
        group = next(n.redundancy_group for n in nodes.values() if n.redundancy_group_id == pk)
        return f"redundancy group {group}"
    return f"node {nodes[pk]}"


def group_warning(
    group: RedundancyGroup, server1: Node, server2: Node, first: str | None, second: str | None
) -> str | None:
    """What the group's assignment lacks after an HA change, given the names of the databases
    its two nodes use (None: unassigned); None if nothing."""
    if first is None or second is None:
        return None
    if group.ha_enabled and first != second:
        return (
            f"High availability is on in {group}, but {server1} uses {first} and {server2} uses {second}: with "
            "high availability both use one database. Merge them (External Database Jobs) and assign the result "
            "to both on the Group Chat and Persistent Chat page."
        )
    if not group.ha_enabled and first == second:
        return (
            f"High availability is off in {group}, but {server1} and {server2} still share {first}: without high "
            "availability each node needs its own database. Assign another one to one of them on the Group Chat "
            "and Persistent Chat page."
        )
    return None
