"""Invitations to rooms kept for users who were signed in nowhere when they were invited, in the
config DB so that whichever node the user signs in on next hands them over.

Written by the node agents' routers (``messaging.invitations``): when a room's invitation
(XEP-0045 §7.8.2 mediated, or XEP-0249 direct) finds no session of the invitee. docs/chat-protocol.md,
"Occupants", says what clients see.
"""

from __future__ import annotations

from django.db import models

from messaging.models.bookmarks import ROOM_JID_MAX_LENGTH


class KeptInvitation(models.Model):
    """An invitation to a room waiting for its invitee's next sign-in; deleted as it is handed
    over. One per invitee, room and inviter: inviting again replaces it."""

    user = models.ForeignKey(
        "topology.EndUser",
        on_delete=models.CASCADE,
        related_name="kept_invitations",
        editable=False,
        help_text="Who is invited; handed to this user's next session, then deleted.",
    )
    room_jid = models.CharField(
        "Room JID",
        max_length=ROOM_JID_MAX_LENGTH,
        editable=False,
        help_text="The room's bare JID, in lower case.",
    )
    inviter = models.CharField(
        max_length=ROOM_JID_MAX_LENGTH, editable=False, help_text="The inviter's bare JID, as the room checked it."
    )
    reason = models.TextField(blank=True, editable=False, help_text="The reason the inviter gave, if any.")
    stanza_id = models.CharField(
        max_length=255, blank=True, editable=False, help_text="The id of the inviter's message, kept on the invitation."
    )
    direct_from = models.CharField(
        max_length=ROOM_JID_MAX_LENGTH,
        blank=True,
        editable=False,
        help_text="The inviter's full JID for a XEP-0249 direct invitation (sent from it); empty for a mediated one.",
    )
    invited = models.DateTimeField(
        auto_now=True, help_text="When the invitation was sent (its XEP-0203 delay stamp on delivery)."
    )

    class Meta:
        ordering = ["user", "invited", "pk"]
        constraints = [
            models.UniqueConstraint(
                "user", "room_jid", "inviter", name="%(app_label)s_%(class)s_unique_room_inviter_per_user"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.room_jid} from {self.inviter} ({self.user_id})"
