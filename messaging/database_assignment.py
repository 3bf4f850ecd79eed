"""The persistent chat database of each chat node (reference 4.3), and the rules that tie
both nodes of a redundancy group to one database."""

from __future__ import annotations

from django.core.exceptions import ValidationError

from messaging.models import ExternalDatabase, PersistentChatAssignment
from topology.models import Node, RedundancyGroup

__all__ = ["assign", "database_for_node", "validate_assignments"]


def database_for_node(node: Node) -> ExternalDatabase | None:
    """The external database the node's Text Conference Manager uses, None if unassigned."""
    assignment = PersistentChatAssignment.objects.select_related("database").filter(node=node).first()
    return assignment.database if assignment else None


def validate_assignments(proposed: dict[Node, ExternalDatabase | None]) -> dict[Node, list[str]]:
    """Check a proposed set of node → database assignments against the rest of the config.

    With high availability on, both nodes of a redundancy group use the same database and
    no other group uses it; without it, each node has its own database. Unassigned is
    allowed (Verify HA settings reports it). Returns error messages keyed by node.
    """
    current = dict(
        PersistentChatAssignment.objects.filter(database__isnull=False).values_list("node_id", "database_id")
    )
    final = {**current, **{node.pk: (db.pk if db else None) for node, db in proposed.items()}}
    nodes = {n.pk: n for n in Node.objects.select_related("redundancy_group").filter(pk__in=final.keys())}
    names = {db.pk: str(db) for db in ExternalDatabase.objects.filter(pk__in={v for v in final.values() if v})}
    errors: dict[Node, list[str]] = {}

    def owner(node: Node) -> tuple:
        group = node.redundancy_group
        return ("group", group.pk) if group is not None and group.ha_enabled else ("node", node.pk)

    users: dict[int, set[tuple]] = {}
    for node_id, db_id in final.items():
        if db_id and node_id in nodes:
            users.setdefault(db_id, set()).add(owner(nodes[node_id]))

    for node in proposed:
        node = nodes.get(node.pk, node)
        db_id = final.get(node.pk)
        group = node.redundancy_group
        if group is not None and group.ha_enabled and db_id:
            peer_db = next(
                (final.get(n.pk) for n in group.members.all() if n.pk != node.pk),
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


def _describe(owner: tuple, nodes: dict[int, Node]) -> str:
    kind, pk = owner
    if kind == "group":
        return f"redundancy group {RedundancyGroup.objects.get(pk=pk)}"
    return f"node {nodes[pk]}" if pk in nodes else f"node {Node.objects.get(pk=pk)}"


def assign(proposed: dict[Node, ExternalDatabase | None]) -> None:
    """Validate and save assignments; raise ValidationError (nothing saved) on any rule broken."""
    from django.db import transaction

    errors = validate_assignments(proposed)
    if errors:
        raise ValidationError([message for messages in errors.values() for message in messages])
    with transaction.atomic():
        for node, database in proposed.items():
            PersistentChatAssignment.objects.update_or_create(node=node, defaults={"database": database})
