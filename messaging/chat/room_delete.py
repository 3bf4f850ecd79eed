"""Delete a persistent chat room from its external database (Persistent Chat Rooms > a room).

The product never deletes whole persistent rooms from its own pages; a super administrator
here may, for a room no one is in, outside a failover of its node's redundancy group: during
one the room is moving between nodes, and a delete could race the node taking it over. The
room's rows (``tc_rooms``, its members in ``tc_users``, its messages in ``tc_messages``) go in
one transaction; archived copies in ``tc_msgarchive`` stay, as the product's archive does.
Each delete is an audit trail entry on the external database.
"""

from __future__ import annotations

from auditlog.models import LogEntry
from django.contrib.contenttypes.models import ContentType

from messaging.chat import report
from messaging.chat.directory import read_snapshot
from messaging.models import ExternalDatabase
from topology.choices import FAILOVER_STATES
from topology.models import Node


class RoomDeleteRefused(Exception):
    """The room cannot be deleted now; the message says why and what to do."""


def _failover_blocker(room_jid: str) -> Node | None:
    snapshot = read_snapshot()
    names = {snapshot.home_of_room(room_jid)}
    host = snapshot.host_of_room(room_jid)
    names.add(host.name if host else None)
    names.discard(None)
    nodes = Node.objects.filter(name__in=names)
    group_ids = [node.redundancy_group_id for node in nodes if node.redundancy_group_id]
    candidates = Node.objects.filter(name__in=names) | Node.objects.filter(redundancy_group_id__in=group_ids)
    return candidates.filter(ha_state__in=FAILOVER_STATES).order_by("name").first()


def delete_room(database: ExternalDatabase, room_jid: str, *, actor) -> dict[str, int]:
    """Delete ``room_jid`` and its members and messages; audited. Raises RoomDeleteRefused."""
    stuck = _failover_blocker(room_jid)
    if stuck is not None:
        raise RoomDeleteRefused(
            f"{room_jid} cannot be deleted while {stuck} is {stuck.get_ha_state_display()}: the room's node is "
            "in a failover. Fall back first, then delete it."
        )
    occupants = report.occupants_now([room_jid]).get(room_jid, 0)
    if occupants:
        raise RoomDeleteRefused(
            f"{room_jid} cannot be deleted while {occupants} user(s) are in it; it can be deleted once empty."
        )
    with report._connect(database) as conn, conn.transaction():
        row = conn.execute("SELECT type FROM tc_rooms WHERE room_jid = %s FOR UPDATE", (room_jid,)).fetchone()
        if row is None:
            raise RoomDeleteRefused(f"{room_jid} is not in {database} (already deleted?).")
        counts = {
            table: conn.execute(f"DELETE FROM {table} WHERE room_jid = %s", (room_jid,)).rowcount  # noqa: S608 (constant)
            for table in ("tc_messages", "tc_users", "tc_rooms")
        }
    LogEntry.objects.create(
        content_type=ContentType.objects.get_for_model(ExternalDatabase),
        object_pk=str(database.pk),
        object_id=database.pk,
        object_repr=str(database),
        action=LogEntry.Action.UPDATE,
        changes={"persistent chat room": [room_jid, "deleted"]},
        actor=actor,
        additional_data={"messages deleted": counts["tc_messages"], "members deleted": counts["tc_users"]},
    )
    return counts
