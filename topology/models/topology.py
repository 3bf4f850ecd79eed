"""Clusters, IM and Presence nodes and presence redundancy groups (reference sections 1 and 3)."""

from __future__ import annotations

from datetime import timedelta

from django.apps import apps
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models, transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from topology import database_rule
from topology.choices import ERROR_STATES, FAILOVER_STATES, HAReason, HAState, NodeRole, UserAssignmentMode

MAX_NODES_PER_CLUSTER = 6
MAX_GROUPS_PER_CLUSTER = 3

# How old a heartbeat may be before the console says the agent is not reporting, when
# the group's own SRM parameters are not at hand (a page listing many nodes).
AGENT_REPORTING_WINDOW = timedelta(seconds=60)

GROUP_NAME_MESSAGE = "Use only letters, digits, underscore (_) and dash (-), at most 128 characters."
GROUP_DESCRIPTION_MESSAGE = 'The description cannot contain any of these characters: " % & \\ < >'
SAME_NODE_TWICE_MESSAGE = "Server 1 and Server 2 must be two different IM and Presence nodes."
HA_NEEDS_TWO_NODES_MESSAGE = "High availability needs two nodes in the group; choose Server 2 first."

group_name_validator = RegexValidator(r"^[A-Za-z0-9_-]{1,128}$", GROUP_NAME_MESSAGE)
# Validator messages are %-formatted by Django, hence the doubled percent sign.
group_description_validator = RegexValidator(
    r'["%&\\<>]', GROUP_DESCRIPTION_MESSAGE.replace("%", "%%"), inverse_match=True
)
cluster_id_validator = RegexValidator(
    r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$",
    "Use lower-case letters, digits and dashes (not at the start or end), at most 63 characters.",
)
hostname_validator = RegexValidator(
    r"^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$",
    "Enter a host name or FQDN: letters, digits, dashes and dots, such as imp-1a.example.com.",
)


class Cluster(models.Model):
    """An IM and Presence cluster: up to six nodes in up to three presence redundancy groups."""

    name = models.CharField(max_length=64, unique=True)
    cluster_id = models.CharField(
        "Cluster ID",
        max_length=63,
        unique=True,
        validators=[cluster_id_validator],
        help_text="Part of the system-generated group chat aliases, conference-{node number}-{Cluster ID}.{domain}.",
    )
    domain = models.CharField(
        max_length=253,
        validators=[hostname_validator],
        help_text="The IM and Presence domain; user JIDs and chat aliases end with it.",
    )
    description = models.CharField(max_length=128, blank=True)
    user_assignment_mode = models.CharField(
        "User Assignment Mode for Presence Server",
        max_length=20,
        choices=UserAssignmentMode.choices,
        default=UserAssignmentMode.BALANCED,
        help_text="Balanced spreads users over the nodes of each group; Active-Standby puts them "
        "on the first node of a group; None leaves assignment to the administrator.",
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("topology:cluster_edit", args=[self.pk])


class Node(models.Model):
    """An IM and Presence node. Its node agent (``manage.py run_node NAME``) is the node.

    Configuration is written by the console; the HA state, heartbeat and agent fields are
    observed state written only by the node agent and its Server Recovery Manager.
    """

    name = models.CharField(
        "Node name",
        max_length=253,
        unique=True,
        validators=[hostname_validator],
        help_text="Host name or FQDN of the node, unique across all clusters.",
    )
    ip_address = models.GenericIPAddressField("IP address", unpack_ipv4=True)
    role = models.CharField(max_length=16, choices=NodeRole.choices, default=NodeRole.SUBSCRIBER)
    cluster = models.ForeignKey(Cluster, on_delete=models.PROTECT, related_name="nodes")
    agent_host = models.GenericIPAddressField(
        "Node agent address",
        default="127.0.0.1",
        unpack_ipv4=True,
        help_text="Address the node agent listens on (its XCP Router port for chat clients).",
    )
    agent_port = models.PositiveIntegerField(
        "Node agent port",
        validators=[MinValueValidator(1024), MaxValueValidator(65535)],
        help_text="Port the node agent listens on, 1024–65535.",
    )
    xmpp_port = models.PositiveIntegerField(
        "XMPP client port",
        null=True,
        blank=True,
        validators=[MinValueValidator(1024), MaxValueValidator(65535)],
        help_text="Port of the node's XMPP client-to-server listener (RFC 6120, STARTTLS required before "
        "authentication) on the node agent address, 1024–65535; empty: no XMPP client port.",
    )
    redundancy_group = models.ForeignKey(
        "RedundancyGroup",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="members",
        editable=False,
        help_text="The presence redundancy group the node belongs to; set from the group's page.",
    )
    group_position = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        editable=False,
        help_text="1 for the group's Server 1, 2 for its Server 2.",
    )

    # Observed state, written by the node agent and its Server Recovery Manager.
    ha_state = models.CharField(
        "HA state",
        max_length=32,
        choices=HAState.choices,
        default=HAState.UNKNOWN,
        editable=False,
        help_text="Node state as last reported by the node's Server Recovery Manager.",
    )
    ha_reason = models.CharField(
        "HA reason",
        max_length=32,
        choices=HAReason.choices,
        default=HAReason.UNKNOWN,
        editable=False,
        help_text="Reason for the node state, as reported by the Server Recovery Manager.",
    )
    ha_state_changed_at = models.DateTimeField(
        null=True, blank=True, editable=False, help_text="When the SRM last changed the state."
    )
    last_heartbeat = models.DateTimeField(
        null=True, blank=True, editable=False, help_text="Last heartbeat written by the node agent."
    )
    agent_started_at = models.DateTimeField(
        null=True,
        blank=True,
        editable=False,
        help_text="When the running node agent started; cleared when it stops cleanly.",
    )
    heartbeat_expires_at = models.DateTimeField(
        null=True,
        blank=True,
        editable=False,
        help_text="Last heartbeat plus the SRM's heartbeat timeout, written by the node agent with each "
        "heartbeat; after it the node counts as not reporting. Set to the stop time on a clean stop.",
    )
    rooms_hosted_by = models.ForeignKey(
        "self",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="hosted_rooms_of",
        editable=False,
        help_text="The node whose Text Conference Manager serves this node's rooms while it is failed over; "
        "empty when the node serves its own rooms. Written by the SRM in the failover and fallback "
        "transactions.",
    )
    rooms_moving = models.BooleanField(
        default=False,
        editable=False,
        help_text="True while this node's rooms move back to it during a fallback: the backup has "
        "released them and no node serves them. Written by the SRM.",
    )

    class Meta:
        ordering = ["cluster__name", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["cluster"],
                condition=Q(role=NodeRole.PUBLISHER),
                name="%(app_label)s_%(class)s_unique_publisher_per_cluster",
                violation_error_message="A cluster has exactly one publisher.",
            ),
            models.UniqueConstraint(
                fields=["redundancy_group", "group_position"],
                name="%(app_label)s_%(class)s_unique_group_position",
            ),
            models.UniqueConstraint(
                fields=["agent_host", "agent_port"],
                name="%(app_label)s_%(class)s_unique_agent_address",
                violation_error_message="Another node's agent already listens on this address and port.",
            ),
            # Conditional, so SQLite adds it as a partial index instead of rebuilding the table,
            # which would drop the group membership triggers (migration 0003).
            models.UniqueConstraint(
                fields=["agent_host", "xmpp_port"],
                condition=Q(xmpp_port__isnull=False),
                name="%(app_label)s_%(class)s_unique_xmpp_address",
                violation_error_message="Another node's XMPP client port already uses this address and port.",
            ),
            models.CheckConstraint(
                condition=(Q(redundancy_group__isnull=True) & Q(group_position__isnull=True))
                | (Q(redundancy_group__isnull=False) & Q(group_position__in=[1, 2])),
                name="%(app_label)s_%(class)s_group_position_1_or_2",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("topology:node_detail", args=[self.pk])

    @property
    def agent_reporting(self) -> bool:
        """Whether the node agent has sent a heartbeat within its SRM's heartbeat timeout."""
        if self.heartbeat_expires_at is not None:
            return timezone.now() < self.heartbeat_expires_at
        return bool(self.last_heartbeat and timezone.now() - self.last_heartbeat < AGENT_REPORTING_WINDOW)

    @property
    def state_display(self) -> str:
        if not self.agent_reporting:
            return HAState.UNKNOWN.label
        return self.get_ha_state_display()

    @property
    def reason_display(self) -> str:
        if not self.agent_reporting:
            return "Node agent not reporting"
        return self.get_ha_reason_display()

    @property
    def state_css(self) -> str:
        """CSS class for the state: green normal, grey unknown, red failed, amber otherwise."""
        if not self.agent_reporting or self.ha_state == HAState.UNKNOWN:
            return "state-unknown"
        if self.ha_state == HAState.NORMAL:
            return "state-normal"
        if self.ha_state in ERROR_STATES or self.ha_state == HAState.FAILED_OVER_CRITICAL_SERVICES_NOT_RUNNING:
            return "state-error"
        return "state-warning"

    def clean(self) -> None:
        errors: dict[str, str] = {}
        if self.xmpp_port is not None and self.xmpp_port == self.agent_port:
            errors["xmpp_port"] = "The XMPP client port must differ from the node agent port."
        elif self.xmpp_port is not None and self.agent_host:
            clash = Node.objects.filter(agent_host=self.agent_host, agent_port=self.xmpp_port).exclude(pk=self.pk)
            if clash.exists():
                errors["xmpp_port"] = f"{clash.first()}'s node agent already listens on this port."
        if self.cluster_id:
            others = Node.objects.filter(cluster_id=self.cluster_id).exclude(pk=self.pk)
            moving_in = self._state.adding or _original(self, "cluster_id") != self.cluster_id
            if moving_in and others.count() >= MAX_NODES_PER_CLUSTER:
                errors["cluster"] = (
                    f"Cluster {self.cluster} already has {MAX_NODES_PER_CLUSTER} nodes, the most a cluster can hold."
                )
            if self.role == NodeRole.PUBLISHER:
                publisher = others.filter(role=NodeRole.PUBLISHER).first()
                if publisher:
                    errors["role"] = (
                        f"Cluster {self.cluster} already has a publisher ({publisher}); "
                        "every other node is a subscriber."
                    )
            if self.redundancy_group_id and self.redundancy_group.cluster_id != self.cluster_id:
                errors["cluster"] = (
                    f"{self} is in presence redundancy group {self.redundancy_group}, which belongs "
                    f"to cluster {self.redundancy_group.cluster}; remove it from the group first."
                )
        if errors:
            raise ValidationError(errors)


def _original(instance: models.Model, field: str):
    return type(instance).objects.filter(pk=instance.pk).values_list(field, flat=True).first()


class RedundancyGroup(models.Model):
    """A presence redundancy group (subcluster): one or two nodes that back each other up.

    Membership is held on the nodes (``Node.redundancy_group`` and ``group_position``), so
    the database itself guarantees that a node belongs to at most one group and a group
    holds at most a Server 1 and a Server 2.
    """

    name = models.CharField(max_length=128, unique=True, validators=[group_name_validator])
    description = models.CharField(max_length=128, blank=True, validators=[group_description_validator])
    cluster = models.ForeignKey(Cluster, on_delete=models.PROTECT, related_name="redundancy_groups")
    ha_enabled = models.BooleanField(
        "Enable High Availability",
        default=False,
        help_text="When on, each node's Server Recovery Manager fails its peer over when the "
        "peer's critical services stay down or its heartbeat stops.",
    )

    class Meta:
        ordering = ["cluster__name", "name"]
        verbose_name = "presence redundancy group"
        permissions = [("run_server_action", "Can fail over, fall back and recover nodes")]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("topology:group_detail", args=[self.pk])

    def servers(self) -> list[Node | None]:
        """[Server 1, Server 2], either possibly None; uses prefetched members if present."""
        by_position = {node.group_position: node for node in self.members.all()}
        return [by_position.get(1), by_position.get(2)]

    @property
    def server1(self) -> Node | None:
        return self.servers()[0]

    @property
    def server2(self) -> Node | None:
        return self.servers()[1]

    def peer_of(self, node: Node) -> Node | None:
        return next((n for n in self.servers() if n is not None and n.pk != node.pk), None)

    def clean(self) -> None:
        # A form proposing new members sets ``proposed_servers`` before validation; otherwise
        # the current members are checked (an admin action toggling HA, say).
        server1, server2 = getattr(self, "proposed_servers", None) or (self.servers() if self.pk else (None, None))
        if server1 is not None:
            self.cluster = server1.cluster
        validate_group_membership(self, server1, server2, self.ha_enabled)

    def delete_refusal(self) -> str | None:
        """Why the group cannot be deleted now (a member is failed over), or None."""
        stuck = next((node for node in self.members.all() if _in_failover(node)), None)
        if stuck is None:
            return None
        return (
            f"{self} cannot be deleted while {stuck} is {stuck.get_ha_state_display()}: users and rooms of the "
            "group are away from their home node. Fall back first (or disable High Availability, which hands "
            "them back), then delete it."
        )

    @transaction.atomic
    def delete(self, *args, **kwargs):
        """Move the members out of the group, then delete it; refused while one is failed over.

        The nodes stay, with their users and chat databases, outside any group: a node outside
        a group has no group position either (the ``group_position_1_or_2`` constraint), which
        ``SET_NULL`` alone would leave behind.
        """
        refusal = self.delete_refusal()
        if refusal:
            raise ValidationError(refusal)
        self.set_servers(None, None)
        return super().delete(*args, **kwargs)

    @transaction.atomic
    def set_servers(self, server1: Node | None, server2: Node | None) -> None:
        """Make ``server1`` and ``server2`` the group's members, releasing any others."""
        for node in Node.objects.select_for_update().filter(redundancy_group=self):
            node.redundancy_group, node.group_position = None, None
            node.save(update_fields=["redundancy_group", "group_position"])
        for position, node in ((1, server1), (2, server2)):
            if node is not None:
                node.redundancy_group, node.group_position = self, position
                node.save(update_fields=["redundancy_group", "group_position"])


def validate_group_membership(
    group: RedundancyGroup,
    server1: Node | None,
    server2: Node | None,
    ha_enabled: bool,
) -> None:
    """Check a proposed membership of ``group``; raise ValidationError keyed by form field.

    Used by the console form, the Django admin and the bulk actions alike.
    """
    errors: dict[str, list[str]] = {}

    def add(field: str, message: str) -> None:
        errors.setdefault(field, []).append(message)

    if server1 is not None and server2 is not None:
        if server1.pk == server2.pk:
            add("server2", SAME_NODE_TWICE_MESSAGE)
        elif server1.cluster_id != server2.cluster_id:
            add(
                "server2",
                f"Both servers must belong to the same cluster; {server1} is in {server1.cluster} "
                f"and {server2} is in {server2.cluster}.",
            )
    for field, node in (("server1", server1), ("server2", server2)):
        if node is not None and node.redundancy_group_id and node.redundancy_group_id != group.pk:
            add(
                field,
                f"{node} is already a member of presence redundancy group {node.redundancy_group}.",
            )
    if ha_enabled and (server1 is None or server2 is None):
        add("ha_enabled", HA_NEEDS_TWO_NODES_MESSAGE)
    if group.pk:
        current = list(Node.objects.filter(redundancy_group=group).order_by("group_position"))
        changing = [_pk(n) for n in _by_position(current)] != [_pk(server1), _pk(server2)]
        stuck = next((n for n in current if _in_failover(n)), None)
        if changing and stuck is not None:
            add(
                "server1",
                f"The servers of {group} cannot change while {stuck} is {stuck.get_ha_state_display()}: users and "
                "rooms of the group are away from their home node. Fall back first (or disable High Availability, "
                "which hands them back), then change the servers.",
            )
    cluster_id = server1.cluster_id if server1 is not None else group.cluster_id
    if cluster_id and (group._state.adding or group.cluster_id != cluster_id):
        existing = RedundancyGroup.objects.filter(cluster_id=cluster_id).exclude(pk=group.pk).count()
        if existing >= MAX_GROUPS_PER_CLUSTER:
            cluster = server1.cluster if server1 is not None else group.cluster
            add(
                "server1",
                f"Cluster {cluster} already has {MAX_GROUPS_PER_CLUSTER} presence redundancy "
                "groups, the most a cluster can hold.",
            )
    if errors:
        raise ValidationError(errors)


def chat_databases(nodes: list[Node]) -> dict[int, str]:
    """The persistent chat database assigned to each of ``nodes`` (node pk → name), if any.

    Read through the app registry: the assignment belongs to messaging, which builds on topology.
    """
    assignment = apps.get_model("messaging", "PersistentChatAssignment")
    rows = assignment.objects.filter(node__in=nodes, database__isnull=False).select_related("database")
    return {row.node_id: str(row.database) for row in rows}


def database_assignment_warning(group: RedundancyGroup) -> str | None:
    """What the group's persistent chat database assignment lacks after an HA change, if anything.

    With high availability both nodes use one database; without it each has its own. The
    change itself is allowed (the reference's task flow enables HA on nodes that still have
    their own databases, then merges them and assigns the result), so this is a warning;
    the Group Chat and Persistent Chat page enforces the rule when assignments are saved,
    and Verify High Availability Settings reports it until then.
    """
    server1, server2 = group.servers()
    if server1 is None or server2 is None:
        return None
    databases = chat_databases([server1, server2])
    return database_rule.group_warning(group, server1, server2, databases.get(server1.pk), databases.get(server2.pk))


def _pk(node: Node | None) -> int | None:
    return node.pk if node is not None else None


def _by_position(members: list[Node]) -> list[Node | None]:
    by_position = {node.group_position: node for node in members}
    return [by_position.get(1), by_position.get(2)]


def _in_failover(node: Node) -> bool:
    """Whether ``node`` is part of a failover: its users and rooms (or its peer's) are not at home."""
    return (
        node.ha_state in FAILOVER_STATES
        or node.rooms_hosted_by_id is not None
        or node.rooms_moving
        or Node.objects.filter(rooms_hosted_by=node).exists()
    )
