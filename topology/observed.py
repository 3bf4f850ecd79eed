"""Observed service state of a node, as its node agent reports it.

Other apps (Verify HA settings, merge validation) ask here, so they never depend on how the
agent stores what it observes.
"""

from __future__ import annotations

from topology.models import Node

TEXT_CONFERENCE_MANAGER = "Cisco XCP Text Conference Manager"


def service_running(node: Node, service: str) -> bool | None:
    """True if the node agent reports ``service`` running, False if stopped, None if unknown.

    Unknown means the node agent is not reporting; callers count it as not passed.
    """
    # Node agents do not report per-service state yet, so every service is unknown.
    return None
