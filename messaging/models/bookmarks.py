"""End users' bookmarks of rooms and their private XML storage, kept in the config DB so that
both nodes of a redundancy group serve the same ones (after a failover, the backup node).

Written and read only by the node agents' XMPP front end (``messaging.bookmarks``): XEP-0402
and XEP-0048 bookmarks over PEP, XEP-0049 private XML storage. docs/chat-protocol.md,
"Bookmarks", says what clients see.
"""

from __future__ import annotations

from django.db import models

ROOM_JID_MAX_LENGTH = 1024  # inside PostgreSQL's limit for one row of a unique index


class Bookmark(models.Model):
    """One room a user bookmarked: where it is, the nickname to join with, and whether the
    user's clients join it by themselves when they sign in (autojoin)."""

    user = models.ForeignKey(
        "topology.EndUser",
        on_delete=models.CASCADE,
        related_name="bookmarks",
        editable=False,
        help_text="Whose bookmark this is; only this user's own sessions read or change it.",
    )
    room_jid = models.CharField(
        "Room JID",
        max_length=ROOM_JID_MAX_LENGTH,
        editable=False,
        help_text="The room's bare JID, in lower case (the XEP-0402 item id).",
    )
    name = models.TextField(blank=True, editable=False, help_text="The name the user gave the room, if any.")
    autojoin = models.BooleanField(
        default=False, editable=False, help_text="The user's clients join the room when they sign in."
    )
    nick = models.TextField(blank=True, editable=False, help_text="The nickname to join the room with, if any.")
    password = models.TextField(
        blank=True, editable=False, help_text="The room password the client sent, kept as sent (rooms here have none)."
    )
    extensions = models.TextField(
        blank=True,
        editable=False,
        help_text="The XEP-0402 extensions element as the client sent it (XML), kept for it alone.",
    )
    published = models.DateTimeField(
        auto_now=True, help_text="When a client last published this bookmark; items are served oldest first."
    )

    class Meta:
        ordering = ["user", "published", "pk"]
        constraints = [
            models.UniqueConstraint("user", "room_jid", name="%(app_label)s_%(class)s_unique_room_per_user"),
        ]

    def __str__(self) -> str:
        return f"{self.room_jid} ({self.user_id})"


class PrivateXml(models.Model):
    """One element a user keeps in XEP-0049 private XML storage (``jabber:iq:private``), other
    than ``storage:bookmarks``, which is served from the user's bookmarks."""

    user = models.ForeignKey(
        "topology.EndUser",
        on_delete=models.CASCADE,
        related_name="private_xml",
        editable=False,
        help_text="Whose element this is; only this user's own sessions read or change it.",
    )
    namespace = models.CharField(max_length=1024, editable=False, help_text="The element's namespace (its key).")
    element = models.CharField(
        max_length=255, editable=False, help_text="The element's name (the other half of its key)."
    )
    xml = models.TextField(editable=False, help_text="The element as the client stored it (XML).")
    updated = models.DateTimeField(auto_now=True, help_text="When the user's client last stored the element.")

    class Meta:
        ordering = ["user", "namespace", "element"]
        verbose_name = "private XML element"
        constraints = [
            models.UniqueConstraint(
                "user", "namespace", "element", name="%(app_label)s_%(class)s_unique_element_per_user"
            ),
        ]

    def __str__(self) -> str:
        return f"{{{self.namespace}}}{self.element} ({self.user_id})"
