"""Group Chat Server Alias Mapping (Messaging > Group Chat Server Alias Mapping, reference 4.4)."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models.functions import Lower
from django.urls import reverse

from topology.models.topology import hostname_validator

ALIAS_IS_DOMAIN_MESSAGE = (
    "A group chat server alias cannot be the IM and Presence domain ({domain}); use e.g. chat.{domain}."
)
ALIAS_TAKEN_MESSAGE = "The alias {alias} is already used by {node}; aliases must be unique across the cluster."


def system_alias(node) -> str:
    """The system-generated primary alias of a node: conference-<node>-<Cluster ID>.<domain>."""
    cluster = node.cluster
    return f"conference-{node.pk}-{cluster.cluster_id}.{cluster.domain}".lower()


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
        from messaging.aliases import node_for_alias

        if not self.alias or not self.node_id:
            return
        self.alias = self.alias.strip().lower()
        domain = self.node.cluster.domain.lower()
        if self.alias == domain:
            raise ValidationError({"alias": ALIAS_IS_DOMAIN_MESSAGE.format(domain=domain)})
        owner = node_for_alias(self.alias, exclude_alias_pk=self.pk)
        if owner is not None and not (owner.pk == self.node_id and self.alias == system_alias(owner)):
            raise ValidationError({"alias": ALIAS_TAKEN_MESSAGE.format(alias=self.alias, node=owner)})
