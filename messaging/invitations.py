"""Invitations to rooms kept for invitees signed in nowhere, and declines for inviters signed in
nowhere (``KeptInvitation``), handed to their next session on whichever node serves them, as
Prosody's and ejabberd's offline stores keep them. Nothing else is kept for later: this service
has no one-to-one chat.

Plain functions of the recipient's JID that know nothing of XMPP framing; they run in a worker
thread. Each is an event of the router core (``type`` ``invite`` or ``decline``, ``room``,
``from``, ``reason``, ``id``, ``direct_from``); the one handed over carries ``stamp``, when it was
sent.
"""

from __future__ import annotations

from datetime import UTC

from django.db import close_old_connections, transaction

from messaging.models import InvitationKind, KeptInvitation
from topology.models import EndUser

# The newest invitations and declines kept for one user; older ones go (a user away for long is
# invited to the same rooms again and again, and one per room, sender and kind is kept anyway).
KEPT_PER_USER = 50


def keep(jid: str, event: dict) -> bool:
    """Keep an invitation or a decline for ``jid``'s next sign-in (a repeat from the same sender
    about the same room replaces it); False when no user has the JID."""
    close_old_connections()
    try:
        with transaction.atomic():
            user = EndUser.objects.select_for_update().only("pk").filter(jid=jid).first()
            if user is None:
                return False
            KeptInvitation.objects.update_or_create(
                user=user,
                room_jid=event["room"],
                sender=event["from"],
                kind=InvitationKind(event["type"]),
                defaults={
                    "reason": event.get("reason") or "",
                    "stanza_id": event.get("id") or "",
                    "direct_from": event.get("direct_from") or "",
                },
            )
            stale = KeptInvitation.objects.filter(user=user).order_by("-invited", "-pk")[KEPT_PER_USER:]
            KeptInvitation.objects.filter(pk__in=list(stale.values_list("pk", flat=True))).delete()
        return True
    finally:
        close_old_connections()


def take(jid: str) -> list[dict]:
    """The invitations and declines kept for ``jid``, oldest first, as events with their
    ``stamp``; they are deleted as they are read, so whoever takes one hands it over, once."""
    close_old_connections()
    try:
        with transaction.atomic():
            rows = list(
                KeptInvitation.objects.select_for_update(skip_locked=True)
                .filter(user__jid=jid)
                .order_by("invited", "pk")
            )
            KeptInvitation.objects.filter(pk__in=[row.pk for row in rows]).delete()
    finally:
        close_old_connections()
    events = []
    for row in rows:
        event = {
            "type": row.kind,
            "room": row.room_jid,
            "from": row.sender,
            "reason": row.reason,
            "id": row.stanza_id,
            "stamp": row.invited.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        }
        if row.direct_from:
            event["direct_from"] = row.direct_from
        events.append(event)
    return events
