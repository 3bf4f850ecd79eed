"""What every service a node agent runs looks like.

The agent owns the life cycle (start, stop, health) and reports the observed state; each
service does its own work. The XCP Router and the Text Conference Manager live in
``messaging.chat``; the Server Recovery Manager in ``topology``.
"""

from __future__ import annotations

import abc

# How long a service may take to start or stop before the agent reports it Not Running.
START_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0


class ServiceStartError(Exception):
    """A service could not start; the message is the reason shown in the Control Center.

    ``database_failure`` marks a start that failed on the service's external database
    (unreachable, or its schema invalid): the peer's SRM then fails the node over for
    Database Failure rather than Critical Service Down (reference 1.5).
    """

    def __init__(self, message: str, *, database_failure: bool = False) -> None:
        super().__init__(message)
        self.database_failure = database_failure


class NodeService(abc.ABC):
    """A service hosted by a node agent, run on the agent's asyncio loop."""

    #: The product's service name, e.g. "Cisco XCP Text Conference Manager".
    name: str = ""

    @abc.abstractmethod
    async def start(self) -> None:
        """Start the service; raise ServiceStartError with a readable reason on failure."""

    @abc.abstractmethod
    async def stop(self) -> None:
        """Stop the service and release what it holds (ports, connections)."""

    @abc.abstractmethod
    def is_running(self) -> bool:
        """Whether the service is working right now (checked every reconcile interval)."""

    async def refresh_hosting(self) -> None:  # noqa: B027 (optional: only services that serve rooms)
        """Re-read which rooms this node serves now; called only for a service registered as
        following the room hosting (``topology.agent.registry.register``)."""

    def fence(self, reason: str) -> None:  # noqa: B027 (optional: only services that serve users)
        """Stop serving: the node's lease ran out (``topology.agent.lease``); ``reason`` says why."""

    def unfence(self) -> None:  # noqa: B027 (optional: only services that serve users)
        """Serve again: a heartbeat got through and the room hosting was re-read."""

    def users_moved(self) -> None:  # noqa: B027 (optional: only services that serve users)
        """The Server Recovery Manager saw a transition of this node or its peer: users may be
        served by another node now. Called on the agent's loop; must not block."""
