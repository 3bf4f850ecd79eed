"""Which class runs each service of the catalog.

The XCP Router and the Text Conference Manager come from ``messaging.chat``; they are
imported when first started, so a node without them reports the service Not Running with
the reason instead of failing to start at all.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from topology.agent.base import NodeService, ServiceStartError
from topology.catalog import ServiceName

if TYPE_CHECKING:
    from topology.agent.node_agent import NodeAgent

# service -> (module, class)
IMPLEMENTATIONS = {
    ServiceName.XCP_ROUTER: ("messaging.router.core", "XcpRouter"),
    ServiceName.TEXT_CONFERENCE_MANAGER: ("messaging.tc.service", "TextConferenceManager"),
    ServiceName.SERVER_RECOVERY_MANAGER: ("topology.ha.service", "ServerRecoveryManager"),
}


def _load(name: ServiceName):
    module_name, class_name = IMPLEMENTATIONS[name]
    try:
        return getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as exc:
        where = f"{module_name}.{class_name}"
        raise ServiceStartError(f"{name.label} is not installed on this node ({where}: {exc}).") from exc


def build_service(name: ServiceName, agent: NodeAgent) -> NodeService:
    """A new, not yet started instance of ``name`` for ``agent``'s node."""
    cls = _load(name)
    if name == ServiceName.XCP_ROUTER:
        return cls(agent.node)
    if name == ServiceName.TEXT_CONFERENCE_MANAGER:
        return cls(agent.node, agent.instances.get(ServiceName.XCP_ROUTER), agent.lease)
    return cls(agent.node, agent)
