"""Invitations to rooms kept for users who were signed in nowhere when they were invited (and
declines of invitations, for inviters signed in nowhere), in the config DB so that whichever
node the user signs in on next hands them over.

Written by the node agents' routers (``messaging.invitations``): when a room's invitation
(XEP-0045 §7.8.2 mediated, or XEP-0249 direct) or a decline finds no session of its recipient.
docs/chat-protocol.md, "Occupants", says what clients see.
"""

from __future__ import annotations

from django.db import models

from messaging.models.bookmarks import ROOM_JID_MAX_LENGTH


class InvitationKind(models.TextChoices):
    """What a kept invitation is: an invitation to its user, or a decline of one the user sent."""

    INVITE = "invite", "Invitation"
    DECLINE = "decline", "Declined invitation"


class KeptInvitation(models.Model):
    """An invitation to a room (or a decline of one) waiting for its recipient's next sign-in;
    deleted as it is handed over. One per recipient, room, sender and kind: sending it again
    replaces it."""

    user = models.ForeignKey(
        "topology.EndUser",
        on_delete=models.CASCADE,
        related_name="kept_invitations",
        editable=False,
        help_text="Who gets it (the invitee, or for a decline the inviter); handed to this user's next session, "
        "then deleted.",
    )
    room_jid = models.CharField(
        "Room JID",
        max_length=ROOM_JID_MAX_LENGTH,
        editable=False,
        help_text="The room's bare JID, in lower case.",
    )
    kind = models.CharField(
        max_length=16,
        choices=InvitationKind.choices,
        default=InvitationKind.INVITE,
        editable=False,
        help_text="An invitation to the user, or another user's decline of the user's invitation.",
    )
    sender = models.CharField(
        max_length=ROOM_JID_MAX_LENGTH,
        editable=False,
        help_text="Who sent it: the inviter's bare JID, as the room checked it, or the invitee who declined.",
    )
    reason = models.TextField(blank=True, editable=False, help_text="The reason the sender gave, if any.")
    stanza_id = models.CharField(
        max_length=255,
        blank=True,
        editable=False,
        help_text="The id of the sender's message, kept on what is handed over.",
    )
    direct_from = models.CharField(
        max_length=ROOM_JID_MAX_LENGTH,
        blank=True,
        editable=False,
        help_text="The inviter's full JID for a XEP-0249 direct invitation (sent from it); empty for a mediated one.",
    )
    invited = models.DateTimeField(auto_now=True, help_text="When it was sent (its XEP-0203 delay stamp on delivery).")

    class Meta:
        ordering = ["user", "invited", "pk"]
        constraints = [
            models.UniqueConstraint(
                "user", "room_jid", "sender", "kind", name="%(app_label)s_%(class)s_unique_room_sender_kind_per_user"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.room_jid} from {self.sender} ({self.user_id})"
