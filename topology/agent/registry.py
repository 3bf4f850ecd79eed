"""The services a node agent can run: each app registers its own when Django starts.

An app's ``AppConfig.ready`` calls ``register`` with the service's catalog name, the dotted
path of its class and how to build it: ``messaging`` registers the XCP Router and the Text
Conference Manager, ``topology`` the Server Recovery Manager. The class is imported when the
service first starts, so a node without it reports the service Not Running with the reason
instead of failing to start at all. The agent knows services only through their registration.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from topology.agent.base import NodeService, ServiceStartError
from topology.catalog import ServiceName

if TYPE_CHECKING:
    from topology.agent.node_agent import NodeAgent

Build = Callable[[type[NodeService], "NodeAgent"], NodeService]


@dataclass(frozen=True)
class Registration:
    """How the node agent builds one service, and what it tells it."""

    path: str
    build: Build
    follows_room_hosting: bool = False


REGISTRY: dict[ServiceName, Registration] = {}


def register(name: ServiceName, path: str, build: Build, *, follows_room_hosting: bool = False) -> None:
    """Make ``name`` runnable by node agents.

    ``path`` is ``"module.Class"``; ``build(cls, agent)`` returns a new, not yet started
    instance for the agent's node. A service that ``follows_room_hosting`` serves rooms: the
    agent calls its ``refresh_hosting()`` whenever the rooms this node must serve change.
    """
    REGISTRY[name] = Registration(path, build, follows_room_hosting)


def follows_room_hosting(name: str) -> bool:
    found = REGISTRY.get(ServiceName(name))
    return found is not None and found.follows_room_hosting


def build_service(name: ServiceName, agent: NodeAgent) -> NodeService:
    """A new, not yet started instance of ``name`` for ``agent``'s node."""
    found = REGISTRY.get(name)
    if found is None:
        raise ServiceStartError(f"{name.label} is not installed on this node (no application registers it).")
    module_name, _, class_name = found.path.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as exc:
        raise ServiceStartError(f"{name.label} is not installed on this node ({found.path}: {exc}).") from exc
    return found.build(cls, agent)
