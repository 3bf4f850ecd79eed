"""Group Chat Server Alias Mapping (Messaging > Group Chat Server Alias Mapping, reference 4.4)."""

from __future__ import annotations

import re

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models.functions import Lower
from django.urls import reverse

from messaging.models.chat_settings import ChatSettings
from topology.models.topology import Node, hostname_validator

ALIAS_IS_DOMAIN_MESSAGE = (
    "A group chat server alias cannot be the IM and Presence domain ({domain}); use e.g. chat.{domain}."
)
ALIAS_TAKEN_MESSAGE = "The alias {alias} is already used by {node}; aliases must be unique across the cluster."


def system_alias(node) -> str:
    """The system-generated primary alias of a node: conference-<node>-<Cluster ID>.<domain>."""
    cluster = node.cluster
    return f"conference-{node.pk}-{cluster.cluster_id}.{cluster.domain}".lower()


_SYSTEM_ALIAS = re.compile(r"^conference-(?P<node>\d+)-(?P<rest>.+)$")


class ChatAlias(models.Model):
    """A group chat server alias of a chat node: rooms are addressed as room@<alias>.

    Administrators add these by hand; when the cluster's "System automatically manages
    primary group chat server aliases" is turned off, the console copies each node's system
    alias into a row here (primary) so rooms addressed by it keep their home.
    """

    alias = models.CharField(
        "Group Chat Server Alias",
        max_length=253,
        validators=[hostname_validator],
        help_text="A DNS-style name, e.g. chat.example.com; unique across the cluster, not the IM and Presence domain.",
    )
    node = models.ForeignKey(
        "topology.Node", on_delete=models.CASCADE, related_name="chat_aliases", verbose_name="Server Name"
    )
    is_primary = models.BooleanField(
        "Primary",
        default=False,
        help_text="The alias new rooms of this node are created under; at most one per node.",
    )

    class Meta:
        ordering = ["node__name", "-is_primary", "alias"]
        verbose_name = "group chat server alias"
        verbose_name_plural = "group chat server aliases"
        constraints = [
            models.UniqueConstraint(
                Lower("alias"),
                name="%(app_label)s_%(class)s_unique_alias",
                violation_error_message="This group chat server alias is already in use.",
            ),
            models.UniqueConstraint(
                fields=["node"],
                condition=models.Q(is_primary=True),
                name="%(app_label)s_%(class)s_unique_primary_per_node",
                violation_error_message="A node has at most one primary group chat server alias.",
            ),
        ]

    def __str__(self) -> str:
        return self.alias

    def get_absolute_url(self) -> str:
        return reverse("messaging:chatalias_edit", args=[self.pk])

    def clean(self) -> None:
        if not self.alias or not self.node_id:
            return
        self.alias = self.alias.strip().lower()
        domain = self.node.cluster.domain.lower()
        if self.alias == domain:
            raise ValidationError({"alias": ALIAS_IS_DOMAIN_MESSAGE.format(domain=domain)})
        owner = node_for_alias(self.alias, exclude_alias_pk=self.pk)
        if owner is not None and not (owner.pk == self.node_id and self.alias == system_alias(owner)):
            raise ValidationError({"alias": ALIAS_TAKEN_MESSAGE.format(alias=self.alias, node=owner)})


def node_for_alias(domain: str, exclude_alias_pk: int | None = None) -> Node | None:
    """The node that answers to ``domain`` (the part of a room JID after ``@``), or None."""
    domain = domain.strip().lower()
    mapped = ChatAlias.objects.filter(alias=domain).select_related("node__cluster")
    if exclude_alias_pk is not None:
        mapped = mapped.exclude(pk=exclude_alias_pk)
    found = mapped.first()
    if found is not None:
        return found.node
    match = _SYSTEM_ALIAS.match(domain)
    if match is None:
        return None
    node = Node.objects.select_related("cluster").filter(pk=int(match["node"])).first()
    if node is None or system_alias(node) != domain or not ChatSettings.peek(node.cluster).auto_manage_aliases:
        return None
    return node
