"""End users and the node each one is assigned to (reference section 3)."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models
from django.urls import reverse

from topology.choices import FAILOVER_STATES
from topology.models.topology import Node

jid_validator = RegexValidator(
    r"^[^@\s/\"&'<>:]+@[A-Za-z0-9.-]+$",
    "Enter a JID in the form name@domain, such as andy@example.com.",
)
user_id_validator = RegexValidator(
    r"^[A-Za-z0-9._-]{1,64}$", "Use letters, digits, dot, underscore and dash, at most 64 characters."
)


class EndUser(models.Model):
    """An IM and Presence end user and the node that hosts them.

    ``assigned_node`` is the user's home node, set by the administrator or by the cluster's
    User Assignment Mode. ``active_node`` is written by the Server Recovery Manager: the
    backup node serving the user while the home node is failed over, empty otherwise.
    """

    user_id = models.CharField("User ID", max_length=64, unique=True, validators=[user_id_validator])
    jid = models.CharField("IM address (JID)", max_length=255, unique=True, validators=[jid_validator])
    display_name = models.CharField(max_length=128, blank=True)
    assigned_node = models.ForeignKey(
        "topology.Node",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="assigned_users",
        help_text="The user's home node; users sign in there.",
    )
    active_node = models.ForeignKey(
        "topology.Node",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="backup_users",
        editable=False,
        help_text="Backup node serving the user during a failover; written by the Server "
        "Recovery Manager, empty when the home node serves the user.",
    )

    class Meta:
        ordering = ["user_id"]
        verbose_name = "end user"

    def __str__(self) -> str:
        return self.display_name or self.user_id

    def get_absolute_url(self) -> str:
        return reverse("topology:user_edit", args=[self.pk])

    def clean(self) -> None:
        # Reference 1.3: end users cannot be added to a cluster while any of its nodes is failed over.
        if not self._state.adding or self.assigned_node_id is None:
            return
        cluster_id = Node.objects.filter(pk=self.assigned_node_id).values_list("cluster_id", flat=True).first()
        failed = Node.objects.filter(cluster_id=cluster_id, ha_state__in=FAILOVER_STATES).order_by("name").first()
        if failed is not None:
            raise ValidationError(
                {
                    "assigned_node": f"End users cannot be added to cluster {failed.cluster} while {failed} is "
                    f"{failed.get_ha_state_display()}; fall back first, then add the user."
                }
            )

    @property
    def serving_node(self):
        """The node serving the user now: the backup during a failover, else the home node."""
        return self.active_node or self.assigned_node
