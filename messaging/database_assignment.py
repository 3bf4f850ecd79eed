"""The persistent chat database of each chat node (reference 4.3): reading and saving the
assignments. The rule they obey is ``topology.database_rule``, checked by
``messaging.models.databases.validate_assignments``."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction

from messaging.models import ExternalDatabase, PersistentChatAssignment
from messaging.models.databases import validate_assignments
from topology.models import Node

__all__ = ["assign", "database_for_node"]


def database_for_node(node: Node) -> ExternalDatabase | None:
    """The external database the node's Text Conference Manager uses, None if unassigned."""
    assignment = PersistentChatAssignment.objects.select_related("database").filter(node=node).first()
    return assignment.database if assignment else None


def assign(proposed: dict[Node, ExternalDatabase | None]) -> None:
    """Validate and save assignments; raise ValidationError (nothing saved) on any rule broken."""
    errors = validate_assignments(proposed)
    if errors:
        raise ValidationError([message for messages in errors.values() for message in messages])
    with transaction.atomic():
        for node, database in proposed.items():
            PersistentChatAssignment.objects.update_or_create(node=node, defaults={"database": database})
