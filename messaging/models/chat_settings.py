"""Messaging > Group Chat and Persistent Chat settings of a cluster (reference 4.1 and 4.2).

The Text Conference Manager of every node of the cluster reads these fields and enforces
them; a change applies after the service restarts. Ranges the product's online help gives
and the reference could not read are marked [INFERRED] in the help text.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q

if TYPE_CHECKING:
    from topology.models import Cluster, Node

# TC's hard limit of rooms per server, ad hoc plus persistent (reference 4.2, alarm
# XcpTxtConfRoomLimitError).
TC_ROOM_LIMIT = 16500
MAX_DB_CONNECTIONS = 100  # [INFERRED] upper bound; the product documents the default only
MAX_HEARTBEAT_SECONDS = 3600
MAX_ROOM_TIMEOUT_MINUTES = 525600  # one year
MAX_OCCUPANTS = 10000  # [INFERRED] upper bound
MAX_HISTORY = 10000  # [INFERRED] upper bound

OCCUPANCY_MESSAGE = "Default maximum occupancy for a room cannot exceed how many users can be in a room at one time."
PERSISTENT_ROOMS_MESSAGE = (
    "Maximum number of persistent chat rooms allowed cannot exceed the maximum number of rooms allowed "
    "(ad hoc plus persistent rooms, at most 16500 per server)."
)
HISTORY_MESSAGE = (
    "Number of messages in chat history displayed by default cannot exceed the maximum number "
    "of messages that can be retrieved from the archive."
)


class ParticipationLevel(models.TextChoices):
    """Lowest participation level a user must hold to do something in a room (reference 4.2)."""

    VISITOR = "visitor", "Visitor"
    PARTICIPANT = "participant", "Participant"
    MODERATOR = "moderator", "Moderator"


SUBJECT_LEVELS = [(ParticipationLevel.PARTICIPANT, "Participant"), (ParticipationLevel.MODERATOR, "Moderator")]


def _range(low: int, high: int) -> list:
    return [MinValueValidator(low), MaxValueValidator(high)]


class ChatSettings(models.Model):
    """Group chat and persistent chat settings of one cluster; one row per cluster.

    Written by the console (Messaging > Group Chat and Persistent Chat); read by the Text
    Conference Manager of each node of the cluster when it starts. New room settings apply
    only to rooms created after the change (reference 4).
    """

    cluster = models.OneToOneField("topology.Cluster", on_delete=models.CASCADE, related_name="chat_settings")

    # --- 4.1: aliases and persistent chat -------------------------------------------------
    auto_manage_aliases = models.BooleanField(
        "System automatically manages primary group chat server aliases",
        default=True,
        help_text="On: each node's primary alias is conference-{node number}-{Cluster ID}.{domain}. Off: the "
        "administrator manages aliases on the Group Chat Server Alias Mapping page.",
    )
    enable_persistent_chat = models.BooleanField(
        "Enable Persistent Chat",
        default=False,
        help_text="Clusterwide. When on, rooms can be persistent and the Text Conference Manager keeps "
        "rooms and messages in the node's external database; it does not start without a reachable one.",
    )
    limit_room_creation_to_home_cluster = models.BooleanField(
        "Limit room creation to home cluster",
        default=False,
        help_text="Users may create rooms only on their home cluster's chat nodes.",
    )
    archive_joins_and_exits = models.BooleanField(
        "Archive all room joins and exits",
        default=False,
        help_text="Writes a tc_timelog row each time a user enters or leaves a room. Adds traffic and "
        "database space; persistent chat itself does not need it.",
    )
    archive_room_messages = models.BooleanField(
        "Archive all room messages",
        default=True,
        help_text="Writes every room message to tc_msgarchive (recommended).",
    )
    only_admins_create_persistent = models.BooleanField(
        "Allow only group chat system administrators to create persistent chat rooms",
        default=False,
        help_text="When on, other users can create ad hoc rooms only.",
    )
    max_persistent_rooms = models.PositiveIntegerField(
        "Maximum number of persistent chat rooms allowed",
        default=1500,
        validators=_range(1, TC_ROOM_LIMIT),
        help_text="Persistent rooms a node hosts, 1–16500 and at most the maximum number of rooms allowed. "
        "With high availability keep it at or below 2500 per node: after a failover one node hosts both "
        "nodes' rooms.",
    )
    db_connections = models.PositiveSmallIntegerField(
        "Number of connections to the database",
        default=5,
        validators=_range(1, MAX_DB_CONNECTIONS),
        help_text="Size of each node's connection pool to its external database, 1–100 (default 5).",
    )
    db_heartbeat_interval = models.PositiveIntegerField(
        "Database connection heartbeat interval (seconds)",
        default=300,
        validators=_range(1, MAX_HEARTBEAT_SECONDS),
        help_text="How often an idle database connection is exercised so firewalls keep it open, "
        "1–3600 seconds (default 300).",
    )
    persistent_room_timeout = models.FloatField(
        "Timeout value for persistent chat rooms (minutes)",
        default=0,
        validators=_range(0, MAX_ROOM_TIMEOUT_MINUTES),
        help_text="Minutes a persistent room may stay without occupants before the Text Conference Manager "
        "unloads it from memory; it stays in the database and loads again on the next join. 0 = never; "
        "fractions allowed (tests and demos use short timeouts).",
    )
    enable_system_administrators = models.BooleanField(
        "Enable Group Chat System Administrators",
        default=False,
        help_text="When on, the users listed under Messaging > Group Chat System Administrators are group chat "
        "system administrators of this cluster. Set on that page.",
    )

    # --- 4.2 Rooms -------------------------------------------------------------------------
    max_rooms = models.PositiveIntegerField(
        "Maximum number of rooms allowed",
        default=5500,
        validators=_range(1, TC_ROOM_LIMIT),
        help_text="Rooms (ad hoc plus persistent) a node hosts, 1–16500.",
    )

    # --- 4.2 Member ------------------------------------------------------------------------
    members_only_default = models.BooleanField("Rooms are for members only by default", default=False)
    only_moderators_invite = models.BooleanField(
        "Only moderators can invite people to members-only rooms", default=True
    )
    owners_change_members_only = models.BooleanField(
        "Room owners can change whether or not rooms are for members only", default=True
    )
    owners_change_only_moderators_invite = models.BooleanField(
        "Room owners can change whether or not only moderators can invite people to members-only rooms",
        default=True,
    )
    users_add_themselves_as_members = models.BooleanField("Users can add themselves to rooms as members", default=False)
    owners_change_users_add_themselves = models.BooleanField(
        "Room owners can change whether users can add themselves to rooms as members", default=False
    )

    # --- 4.2 Availability ------------------------------------------------------------------
    absent_members_visible = models.BooleanField(
        "Members and administrators who are not in a room are still visible in the room",
        default=True,
        help_text="Jabber requires this.",
    )
    owners_change_absent_members_visible = models.BooleanField(
        "Room owners can change whether or not members and administrators who are not in a room "
        "are still visible in the room",
        default=True,
    )
    backwards_compatible = models.BooleanField("Rooms are backwards-compatible with older clients", default=False)
    owners_change_backwards_compatible = models.BooleanField(
        "Room owners can change whether or not rooms are backwards-compatible with older clients", default=False
    )
    anonymous_default = models.BooleanField(
        "Rooms are anonymous by default", default=False, help_text="Jabber chat fails in anonymous rooms."
    )
    owners_change_anonymous = models.BooleanField(
        "Room owners can change whether or not rooms are anonymous", default=False
    )

    # --- 4.2 Occupancy ---------------------------------------------------------------------
    max_users_per_room = models.PositiveIntegerField(
        "How many users can be in a room at one time",
        default=1000,
        validators=_range(1, MAX_OCCUPANTS),
        help_text="1–10000; default 1000.",
    )
    max_hidden_users_per_room = models.PositiveIntegerField(
        "How many hidden users can be in a room at one time",
        default=1000,
        validators=_range(0, MAX_OCCUPANTS),
        help_text="0–10000; default 1000.",
    )
    default_max_occupancy = models.PositiveIntegerField(
        "Default maximum occupancy for a room",
        default=50,
        validators=_range(1, MAX_OCCUPANTS),
        help_text="Occupancy a new room starts with; at most the number of users a room can hold at one time.",
    )
    owners_change_max_occupancy = models.BooleanField(
        "Room owners can change default maximum occupancy for a room", default=True
    )

    # --- 4.2 Chat message ------------------------------------------------------------------
    private_message_min_level = models.CharField(
        "Lowest participation level a user can have to send a private message from within the room",
        max_length=16,
        choices=ParticipationLevel.choices,
        default=ParticipationLevel.VISITOR,
    )
    owners_change_private_message_level = models.BooleanField(
        "Room owners can change the lowest participation level a user can have to send a private "
        "message from within the room",
        default=True,
    )
    change_subject_min_level = models.CharField(
        "Lowest participation level a user can have to change a room's subject",
        max_length=16,
        choices=SUBJECT_LEVELS,
        default=ParticipationLevel.PARTICIPANT,
    )
    owners_change_subject_level = models.BooleanField(
        "Room owners can change the lowest participation level a user can have to change a room's subject",
        default=False,
    )
    strip_xhtml = models.BooleanField("Remove all XHTML formatting from messages", default=False)
    owners_change_xhtml = models.BooleanField("Room owners can change XHTML formatting setting", default=False)
    invite_min_level = models.CharField(
        "Lowest participation level a user can have to invite others to the room",
        max_length=16,
        choices=ParticipationLevel.choices,
        default=ParticipationLevel.PARTICIPANT,
    )
    owners_change_invite_level = models.BooleanField(
        "Room owners can change the lowest participation level a user can have to invite others to the room",
        default=False,
    )

    # --- 4.2 Moderated ---------------------------------------------------------------------
    moderated_default = models.BooleanField("Rooms are moderated by default", default=False)
    owners_change_moderated = models.BooleanField(
        "Room owners can change whether rooms are moderated by default", default=True
    )

    # --- 4.2 History -----------------------------------------------------------------------
    history_max = models.PositiveIntegerField(
        "Maximum number of messages that can be retrieved from the archive",
        default=100,
        validators=_range(0, MAX_HISTORY),
        help_text="0–10000; default 100.",
    )
    history_default = models.PositiveIntegerField(
        "Number of messages in chat history displayed by default",
        default=15,
        validators=_range(0, MAX_HISTORY),
        help_text="Messages sent to a user who joins a room; at most the archive maximum (15–50 recommended).",
    )
    owners_change_history = models.BooleanField(
        "Room owners can change the number of messages displayed in chat history", default=False
    )

    updated_at = models.DateTimeField(auto_now=True, help_text="When the console last saved these settings.")

    class Meta:
        verbose_name = "group chat and persistent chat settings"
        verbose_name_plural = "group chat and persistent chat settings"
        constraints = [
            models.CheckConstraint(
                condition=Q(default_max_occupancy__lte=F("max_users_per_room")),
                name="%(app_label)s_%(class)s_occupancy_within_room_limit",
                violation_error_message=OCCUPANCY_MESSAGE,
            ),
            models.CheckConstraint(
                condition=Q(max_persistent_rooms__lte=F("max_rooms")),
                name="%(app_label)s_%(class)s_persistent_rooms_within_room_limit",
                violation_error_message=PERSISTENT_ROOMS_MESSAGE,
            ),
            models.CheckConstraint(
                condition=Q(history_default__lte=F("history_max")),
                name="%(app_label)s_%(class)s_history_within_archive_max",
                violation_error_message=HISTORY_MESSAGE,
            ),
        ]

    def __str__(self) -> str:
        return f"Group chat and persistent chat settings of {self.cluster}"

    def clean(self) -> None:
        errors = {}
        if (
            self.default_max_occupancy is not None
            and self.max_users_per_room is not None
            and self.default_max_occupancy > self.max_users_per_room
        ):
            errors["default_max_occupancy"] = OCCUPANCY_MESSAGE
        if (
            self.history_default is not None
            and self.history_max is not None
            and self.history_default > self.history_max
        ):
            errors["history_default"] = HISTORY_MESSAGE
        # Only between values within their own ranges: an out-of-range value has its own message.
        rooms = (self.max_persistent_rooms, self.max_rooms)
        if all(1 <= (value or 0) <= TC_ROOM_LIMIT for value in rooms) and rooms[0] > rooms[1]:
            errors["max_persistent_rooms"] = PERSISTENT_ROOMS_MESSAGE
        if errors:
            raise ValidationError(errors)

    @classmethod
    def for_cluster(cls, cluster: Cluster) -> ChatSettings:
        """The cluster's settings, created with the documented defaults the first time."""
        return cls.objects.get_or_create(cluster=cluster)[0]

    @classmethod
    def for_node(cls, node: Node) -> ChatSettings:
        """The settings the node's Text Conference Manager enforces (its cluster's)."""
        return cls.for_cluster(node.cluster)

    @classmethod
    def peek(cls, cluster: Cluster) -> ChatSettings:
        """The cluster's settings without writing: an unsaved row of defaults if none exists."""
        return cls.objects.filter(cluster=cluster).first() or cls(cluster=cluster)

    def reset_to_defaults(self) -> None:
        """Set every setting back to its documented default (Set to Default); does not save."""
        for field in self._meta.concrete_fields:
            # Group Chat System Administrators has its own page and keeps its switch.
            if field.name in {"id", "cluster", "updated_at", "enable_system_administrators"}:
                continue
            setattr(self, field.attname, field.get_default())


SETTING_GROUPS: list[tuple[str, list[str]]] = [
    (
        "Persistent Chat",
        [
            "auto_manage_aliases",
            "enable_persistent_chat",
            "limit_room_creation_to_home_cluster",
            "archive_joins_and_exits",
            "archive_room_messages",
            "only_admins_create_persistent",
            "max_persistent_rooms",
            "db_connections",
            "db_heartbeat_interval",
            "persistent_room_timeout",
        ],
    ),
    ("Rooms", ["max_rooms"]),
    (
        "Member",
        [
            "members_only_default",
            "only_moderators_invite",
            "owners_change_members_only",
            "owners_change_only_moderators_invite",
            "users_add_themselves_as_members",
            "owners_change_users_add_themselves",
        ],
    ),
    (
        "Availability",
        [
            "absent_members_visible",
            "owners_change_absent_members_visible",
            "backwards_compatible",
            "owners_change_backwards_compatible",
            "anonymous_default",
            "owners_change_anonymous",
        ],
    ),
    (
        "Occupancy",
        ["max_users_per_room", "max_hidden_users_per_room", "default_max_occupancy", "owners_change_max_occupancy"],
    ),
    (
        "Chat Message",
        [
            "private_message_min_level",
            "owners_change_private_message_level",
            "change_subject_min_level",
            "owners_change_subject_level",
            "strip_xhtml",
            "owners_change_xhtml",
            "invite_min_level",
            "owners_change_invite_level",
        ],
    ),
    ("Moderated", ["moderated_default", "owners_change_moderated"]),
    ("History", ["history_max", "history_default", "owners_change_history"]),
]
SETTING_FIELDS = [name for _, names in SETTING_GROUPS for name in names]
