"""The services a node agent runs, as the Control Center lists them (reference section 8).

Only services that do real work here are listed: the XCP Router (the chat port), the Text
Conference Manager (persistent chat rooms) and the Server Recovery Manager (failover and
fallback). Their states and the actions an administrator can ask for sit beside them.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import models


class ServiceName(models.TextChoices):
    """A service of an IM and Presence node, in the product's own words."""

    XCP_ROUTER = "xcp_router", "Cisco XCP Router"
    TEXT_CONFERENCE_MANAGER = "xcp_text_conference_manager", "Cisco XCP Text Conference Manager"
    SERVER_RECOVERY_MANAGER = "server_recovery_manager", "Cisco Server Recovery Manager"


class ServiceKind(models.TextChoices):
    """The two Control Center windows."""

    FEATURE = "feature", "Feature Services"
    NETWORK = "network", "Network Services"


class ServiceStatus(models.TextChoices):
    """Observed status of a service, as its node agent reports it (reference 8)."""

    STARTED = "started", "Started"
    STARTING = "starting", "Starting"
    STOPPING = "stopping", "Stopping"
    STOPPED = "stopped", "Stopped"
    NOT_RUNNING = "not_running", "Not Running"


RUNNING_STATUSES = {ServiceStatus.STARTED}
TRANSITIONAL_STATUSES = {ServiceStatus.STARTING, ServiceStatus.STOPPING}
DOWN_STATUSES = {ServiceStatus.STOPPED, ServiceStatus.NOT_RUNNING}


class DesiredState(models.TextChoices):
    """What the console asked for a service; the node agent makes it so."""

    STARTED = "started", "Started"
    STOPPED = "stopped", "Stopped"


class ControlAction(models.TextChoices):
    """A Control Center or Service Activation request."""

    START = "start", "Start"
    STOP = "stop", "Stop"
    RESTART = "restart", "Restart"
    ACTIVATE = "activate", "Activate"
    DEACTIVATE = "deactivate", "Deactivate"


# Actions after which the service should run, and after which it should not.
STARTING_ACTIONS = {ControlAction.START, ControlAction.RESTART, ControlAction.ACTIVATE}
STOPPING_ACTIONS = {ControlAction.STOP, ControlAction.DEACTIVATE}


@dataclass(frozen=True)
class CatalogEntry:
    """How the Control Center shows a service and how the agent orders it."""

    name: ServiceName
    kind: ServiceKind
    group: str
    depends_on: tuple[ServiceName, ...] = ()

    @property
    def activatable(self) -> bool:
        """Feature services are activated before they can be started; network services are not."""
        return self.kind == ServiceKind.FEATURE


IM_AND_PRESENCE_SERVICES = "IM and Presence Services"

# In start order: a service comes after the services it depends on.
CATALOG: dict[str, CatalogEntry] = {
    entry.name: entry
    for entry in (
        CatalogEntry(ServiceName.XCP_ROUTER, ServiceKind.NETWORK, IM_AND_PRESENCE_SERVICES),
        CatalogEntry(
            ServiceName.TEXT_CONFERENCE_MANAGER,
            ServiceKind.FEATURE,
            IM_AND_PRESENCE_SERVICES,
            depends_on=(ServiceName.XCP_ROUTER,),
        ),
        CatalogEntry(ServiceName.SERVER_RECOVERY_MANAGER, ServiceKind.NETWORK, IM_AND_PRESENCE_SERVICES),
    )
}
START_ORDER: tuple[ServiceName, ...] = tuple(ServiceName(name) for name in CATALOG)

# Services the SRM may watch (reference 2.1); the default list is the reference use case's.
CRITICAL_SERVICE_CHOICES = [
    (ServiceName.TEXT_CONFERENCE_MANAGER.value, ServiceName.TEXT_CONFERENCE_MANAGER.label),
    (ServiceName.XCP_ROUTER.value, ServiceName.XCP_ROUTER.label),
]


def default_critical_services() -> list[str]:
    return [ServiceName.TEXT_CONFERENCE_MANAGER.value, ServiceName.XCP_ROUTER.value]


def dependents_of(name: str) -> list[ServiceName]:
    """Services that need ``name`` running (stopped with it, restarted with it)."""
    return [entry.name for entry in CATALOG.values() if name in entry.depends_on]
