"""What the Server Recovery Manager records: state transitions, alarms, and the Server Action
requests administrators make on a presence redundancy group's page."""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from topology.choices import HAReason, HAState


class HATransition(models.Model):
    """One change of a node's HA state, written by an SRM in the transaction that made it."""

    group = models.ForeignKey(
        "topology.RedundancyGroup", on_delete=models.CASCADE, related_name="transitions", editable=False
    )
    node = models.ForeignKey("topology.Node", on_delete=models.CASCADE, related_name="transitions", editable=False)
    at = models.DateTimeField(default=timezone.now, editable=False, db_index=True)
    from_state = models.CharField(max_length=32, choices=HAState.choices, editable=False)
    to_state = models.CharField(max_length=32, choices=HAState.choices, editable=False)
    reason = models.CharField(max_length=32, choices=HAReason.choices, editable=False)
    recorded_by = models.ForeignKey(
        "topology.Node",
        on_delete=models.SET_NULL,
        null=True,
        related_name="+",
        editable=False,
        help_text="The node whose SRM made the transition.",
    )

    class Meta:
        ordering = ["-at", "-pk"]
        verbose_name = "HA transition"

    def __str__(self) -> str:
        change = f"{self.get_from_state_display()} → {self.get_to_state_display()}"
        return f"{self.node}: {change} ({self.get_reason_display()})"


class AlarmName(models.TextChoices):
    """SRM alarms (reference 9.3). The reference names no fallback alarm: ``SRMFallback`` is
    imp-admin's own, raised when a fallback brings a node's users and rooms home."""

    SRM_FAILOVER = "UC_SRM-2-SRMFailover", "UC_SRM-2-SRMFailover"
    SRM_FAILED = "UC_SRM-2-SRMFailed", "UC_SRM-2-SRMFailed"
    SRM_FALLBACK = "SRMFallback", "SRMFallback"


class HAAlarm(models.Model):
    """An alarm raised by a Server Recovery Manager, shown on the dashboard."""

    name = models.CharField(max_length=64, choices=AlarmName.choices, editable=False)
    raised_at = models.DateTimeField(default=timezone.now, editable=False, db_index=True)
    group = models.ForeignKey(
        "topology.RedundancyGroup", on_delete=models.CASCADE, related_name="alarms", editable=False
    )
    from_node = models.ForeignKey(
        "topology.Node", on_delete=models.CASCADE, related_name="+", editable=False, help_text="FromNode"
    )
    to_node = models.ForeignKey(
        "topology.Node", on_delete=models.CASCADE, null=True, related_name="+", editable=False, help_text="ToNode"
    )
    reason = models.CharField(max_length=32, choices=HAReason.choices, editable=False)

    class Meta:
        ordering = ["-raised_at", "-pk"]
        verbose_name = "HA alarm"

    def __str__(self) -> str:
        return self.text

    @property
    def text(self) -> str:
        if self.to_node_id:
            return f"{self.name}: FromNode {self.from_node} ToNode {self.to_node} Reason {self.get_reason_display()}"
        return f"{self.name}: Node {self.from_node} Reason {self.get_reason_display()}"


class ServerActionName(models.TextChoices):
    """The Server Action buttons of a presence redundancy group (reference 1.3)."""

    FAILOVER = "failover", "Failover"
    FALLBACK = "fallback", "Fallback"
    RECOVER = "recover", "Recover"


class ServerActionStatus(models.TextChoices):
    PENDING = "pending", "Waiting for the Server Recovery Manager"
    APPLIED = "applied", "Carried out"
    REFUSED = "refused", "Refused"


FINISHED_ACTION_STATUSES = {ServerActionStatus.APPLIED, ServerActionStatus.REFUSED}


class ServerAction(models.Model):
    """A Failover, Fallback or Recover an administrator asked for; an SRM of the group carries it out.

    The row is the desired state: the audit trail records who asked, the SRM that claims it
    records the outcome.
    """

    group = models.ForeignKey("topology.RedundancyGroup", on_delete=models.CASCADE, related_name="server_actions")
    node = models.ForeignKey(
        "topology.Node", on_delete=models.CASCADE, related_name="server_actions", help_text="The node acted on."
    )
    action = models.CharField(max_length=16, choices=ServerActionName.choices)
    requested_at = models.DateTimeField(default=timezone.now)
    status = models.CharField(
        max_length=16,
        choices=ServerActionStatus.choices,
        default=ServerActionStatus.PENDING,
        editable=False,
        help_text="Written by the SRM that claims the request.",
    )
    result = models.CharField(max_length=500, blank=True, editable=False, help_text="What the SRM did, or why not.")
    handled_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-requested_at", "-pk"]
        verbose_name = "server action"
        constraints = [
            models.UniqueConstraint(
                fields=["group"],
                condition=Q(status="pending"),
                name="%(app_label)s_%(class)s_one_pending_per_group",
                violation_error_message="A server action is already waiting for this group's Server Recovery Manager.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_action_display()} {self.node}"


class AlarmRecipient(models.Model):
    """An e-mail address every SRM alarm is also sent to (System > Alarm Recipients)."""

    email = models.EmailField("E-mail address", unique=True)
    description = models.CharField(max_length=128, blank=True, help_text="Who this is, e.g. the on-call rota.")
    enabled = models.BooleanField(default=True, help_text="Untick to stop the alarm e-mails without losing the entry.")

    class Meta:
        ordering = ["email"]
        verbose_name = "alarm recipient"

    def __str__(self) -> str:
        return self.email

    def get_absolute_url(self) -> str:
        return reverse("topology:alarmrecipient_edit", args=[self.pk])
