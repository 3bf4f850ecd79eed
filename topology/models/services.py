"""Services of a node: desired state written by the console, observed state by the node agent.

A Control Center action is a change of the desired-state fields (``activated``,
``desired_state``, ``request_number``, ``request_action``), which the audit trail records
with who asked; the node agent carries out each numbered request once and writes the
observed fields back.
"""

from __future__ import annotations

from datetime import timedelta

from django.db import models, transaction
from django.db.models import F, Q
from django.db.models.signals import post_save
from django.dispatch import receiver
from django.utils import timezone

from topology.catalog import (
    CATALOG,
    STARTING_ACTIONS,
    STOPPING_ACTIONS,
    ControlAction,
    DesiredState,
    ServiceKind,
    ServiceName,
    ServiceStatus,
    dependents_of,
)

# How long the Control Center waits for a node agent to carry out a request before it says so.
CONTROL_TIMEOUT = timedelta(seconds=30)


class Service(models.Model):
    """One service of one node, as the Control Center shows it."""

    node = models.ForeignKey("topology.Node", on_delete=models.CASCADE, related_name="services")
    name = models.CharField("Service Name", max_length=64, choices=ServiceName.choices)

    # Desired state, written by the console.
    activated = models.BooleanField(
        default=True,
        help_text="Feature services only: a service must be activated (Service Activation) before "
        "the Control Center can start it; activating starts it. Network services are always activated.",
    )
    desired_state = models.CharField(
        max_length=16,
        choices=DesiredState.choices,
        default=DesiredState.STARTED,
        help_text="What the console asked for; the node agent starts or stops the service to match.",
    )
    request_number = models.PositiveIntegerField(
        default=0,
        help_text="Incremented by the console for every Start, Stop, Restart, Activate or Deactivate; the "
        "node agent carries out each number once.",
    )
    request_action = models.CharField(
        max_length=16, choices=ControlAction.choices, blank=True, help_text="The latest action asked for."
    )
    requested_at = models.DateTimeField(null=True, blank=True, help_text="When the latest action was asked for.")

    # Observed state, written by the node agent.
    status = models.CharField(
        max_length=16,
        choices=ServiceStatus.choices,
        default=ServiceStatus.STOPPED,
        editable=False,
        help_text="Status as the node agent last observed it.",
    )
    status_reason = models.CharField(
        max_length=500,
        blank=True,
        editable=False,
        help_text="Why the service is not running (the error of a failed start), written by the node agent.",
    )
    database_failure = models.BooleanField(
        default=False,
        editable=False,
        help_text="Written by the node agent: the service is Not Running because its external database failed "
        "(unreachable or schema invalid), which the peer's SRM reports as Database Failure.",
    )
    status_changed_at = models.DateTimeField(
        null=True,
        blank=True,
        editable=False,
        help_text="When the node agent saw the status change; the SRM measures the critical service delay from here.",
    )
    started_at = models.DateTimeField(
        null=True, blank=True, editable=False, help_text="When the running service started (Start Time)."
    )
    handled_request_number = models.PositiveIntegerField(
        default=0, editable=False, help_text="The last request number the node agent carried out."
    )

    class Meta:
        ordering = ["node__name", "name"]
        verbose_name = "service"
        constraints = [
            models.UniqueConstraint(fields=["node", "name"], name="%(app_label)s_%(class)s_unique_node_service"),
            models.CheckConstraint(
                condition=Q(handled_request_number__lte=F("request_number")),
                name="%(app_label)s_%(class)s_handled_not_ahead_of_requested",
            ),
        ]
        permissions = [("control_services", "Can start, stop, restart and activate services")]

    def __str__(self) -> str:
        return f"{self.get_name_display()} on {self.node}"

    @property
    def entry(self):
        return CATALOG[self.name]

    @property
    def kind(self) -> ServiceKind:
        return self.entry.kind

    @property
    def group(self) -> str:
        return self.entry.group

    @property
    def running(self) -> bool:
        return self.status == ServiceStatus.STARTED

    @property
    def up_time(self) -> timedelta | None:
        if self.status != ServiceStatus.STARTED or self.started_at is None:
            return None
        return timezone.now() - self.started_at

    @property
    def wants_running(self) -> bool:
        return self.activated and self.desired_state == DesiredState.STARTED

    @property
    def request_pending(self) -> bool:
        """A request the agent has not carried out yet, or whose outcome is not observed yet."""
        if self.handled_request_number < self.request_number:
            return True
        if self.request_action in STARTING_ACTIONS:
            return self.status in (ServiceStatus.STOPPED, ServiceStatus.STARTING, ServiceStatus.STOPPING)
        if self.request_action:
            return self.status in (ServiceStatus.STARTING, ServiceStatus.STOPPING)
        return False

    @property
    def request_timed_out(self) -> bool:
        return bool(self.request_pending and self.requested_at and timezone.now() - self.requested_at > CONTROL_TIMEOUT)

    @property
    def legend(self) -> str:
        """The Control Center's legend beside a stopped service (reference 8)."""
        if not self.activated:
            return "Service not activated"
        if self.desired_state == DesiredState.STOPPED and self.status == ServiceStatus.STOPPED:
            return "Commanded out of service"
        return self.status_reason

    def request(self, action: ControlAction) -> list[Service]:
        """Record an administrator's action; the node agent carries it out.

        Stopping a service stops the services that depend on it too, as their own Stop
        requests (reference 8: Stop then Start of the XCP Router does not bring the other
        XCP services back; they are started by hand). A Restart keeps them wanted: the agent
        restarts the running ones with it. Returns the dependent services stopped with it.
        """
        stopped_with_it: list[Service] = []
        with transaction.atomic():
            fresh = Service.objects.select_for_update().get(pk=self.pk)
            if action == ControlAction.ACTIVATE:
                fresh.activated, fresh.desired_state = True, DesiredState.STARTED
            elif action == ControlAction.DEACTIVATE:
                fresh.activated, fresh.desired_state = False, DesiredState.STOPPED
            elif action == ControlAction.STOP:
                fresh.desired_state = DesiredState.STOPPED
            else:
                fresh.desired_state = DesiredState.STARTED
            fresh._record(action)
            if action in STOPPING_ACTIONS:
                dependents = Service.objects.select_for_update().filter(
                    node_id=fresh.node_id,
                    name__in=dependents_of(fresh.name),
                    desired_state=DesiredState.STARTED,
                )
                for dependent in dependents:
                    dependent.desired_state = DesiredState.STOPPED
                    dependent._record(ControlAction.STOP)
                    stopped_with_it.append(dependent)
        self.refresh_from_db()
        return stopped_with_it

    def _record(self, action: ControlAction) -> None:
        """Save the desired-state fields with a new request number (inside ``request``'s transaction)."""
        self.request_number += 1
        self.request_action = action
        self.requested_at = timezone.now()
        self.save(update_fields=["activated", "desired_state", "request_number", "request_action", "requested_at"])


def ensure_services(node) -> None:
    """Create the node's service rows that do not exist yet (every catalog service)."""
    existing = set(Service.objects.filter(node=node).values_list("name", flat=True))
    Service.objects.bulk_create(
        [Service(node=node, name=name) for name in CATALOG if name not in existing], ignore_conflicts=True
    )


@receiver(post_save, sender="topology.Node", dispatch_uid="topology.services.node_services")
def _create_node_services(sender, instance, created: bool, raw: bool = False, **kwargs) -> None:
    """Every new node gets its catalog of services, activated and asked to run."""
    if created and not raw:
        ensure_services(instance)
