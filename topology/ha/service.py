"""Cisco Server Recovery Manager as a service of the node agent: runs the monitor's ticks."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

from topology.agent.base import NodeService
from topology.agent.db import db
from topology.catalog import ServiceName
from topology.ha.monitor import RecoveryManager

if TYPE_CHECKING:
    from topology.agent.node_agent import NodeAgent
    from topology.models import Node

log = logging.getLogger(__name__)


class ServerRecoveryManager(NodeService):
    """Watches the peer and this node; fails over, falls back and recovers (reference 1.6)."""

    name = ServiceName.SERVER_RECOVERY_MANAGER.label

    def __init__(self, node: Node, agent: NodeAgent) -> None:
        self.node = node
        self.agent = agent
        self.manager = RecoveryManager(node.pk)
        self._task: asyncio.Task | None = None
        self._states: tuple | None = None  # the group's states after the last tick

    async def start(self) -> None:
        await db(self.manager.initialize)
        self._task = asyncio.create_task(self._run(), name="srm")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def is_running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def _run(self) -> None:
        while True:
            interval = 1.0
            try:
                follow_up = await db(self.manager.tick)
                if follow_up is not None:
                    ok = await self.agent.sync_room_hosting(force=True)
                    await db(follow_up, ok)
                states = await db(self.manager.group_states)
                if states != self._states:
                    # A transition, made by this tick (after its rooms were loaded) or seen in the
                    # config DB: users may have moved, so the node's router checks them now.
                    self._states = states
                    self.agent.users_moved()
                interval = await db(self.manager.interval)
            except asyncio.CancelledError:
                raise
            except Exception:  # the config DB busy or away: try again next tick
                log.exception("Server Recovery Manager tick failed")
            await asyncio.sleep(interval)
