"""The Server Recovery Manager's decisions: what a node's SRM does in each state of its node.

One function per state, named after it, each checkable against the reference's state table
(sections 1.4–1.6); ``DECISIONS`` maps the state to its function. A function makes at most a
transition of ``topology.ha.transitions``; when that transition needs this node's Text
Conference Manager to load or unload rooms first, it returns the follow-up to call with
whether that worked. The states with no function wait for someone else:

- Idle: the peer's Fallback (manual or automatic, ``running_in_backup_mode``);
- Running in Failed Mode: the administrator's Recover (``topology.ha.actions``);
- Backup Activated: never entered here (the product's auto-recovery rows).

Plain module: no HTTP and no asyncio; ``topology.ha.monitor.RecoveryManager`` calls it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from topology.choices import BOTH_FAILED_FROM, FALLBACK_FROM, TAKE_OVER_FROM, HAReason, HAState
from topology.ha import transitions

if TYPE_CHECKING:
    from topology.ha.monitor import RecoveryManager
    from topology.models import Node, ServiceParameters

FollowUp = Callable[[bool], object]


@dataclass(frozen=True)
class Look:
    """What a node's SRM sees in one tick: its node, the peer, the timers, and since when a
    critical service of its node is down (None if all run)."""

    srm: RecoveryManager
    node: Node
    peer: Node
    params: ServiceParameters
    ha_enabled: bool
    now: datetime
    down_since: datetime | None

    @property
    def node_id(self) -> int:
        return self.srm.node_id

    def down_for_the_delay(self) -> bool:
        """A critical service of the node has been down for the critical service delay."""
        return self.down_since is not None and self.now - self.down_since >= seconds(self.params.critical_service_delay)


def seconds(value: float) -> timedelta:
    return timedelta(seconds=value)


def unknown(look: Look) -> FollowUp | None:
    """Unknown: HA was just enabled, the SRM starts initializing."""
    if look.ha_enabled:
        transitions.set_own_state(look.node_id, HAState.INITIALIZING, HAReason.INITIALIZATION)
    return None


def initializing(look: Look) -> FollowUp | None:
    """Initializing → Normal once the node's critical services run and its TC hosts its rooms;
    Running in Failed Mode on both nodes when they have not run for the critical service delay
    (counted from the start of the initialization) and neither have the peer's.

    Initializing means "the SRM service is starting": after Recover the SRM that is about to
    be restarted leaves the initialization to the restarted one.
    """
    if not look.ha_enabled or look.srm.restart_pending():
        return None
    if look.down_since is None:
        return lambda ok: (
            ok
            and transitions.set_own_state(
                look.node_id, HAState.NORMAL, HAReason.NORMAL, only_from={HAState.INITIALIZING}
            )
        )
    _fail_if_both_down(look)
    return None


def normal(look: Look) -> FollowUp | None:
    """Normal: take the peer over when its heartbeat or a critical service has been lost long
    enough (automatic failover; the peer goes Failed Over…, this node Taking Over).

    A node whose own critical services are down cannot take anybody over: see
    ``_fail_if_both_down``.
    """
    if not look.ha_enabled or look.peer.ha_state not in TAKE_OVER_FROM:
        return None
    if look.down_since is None:
        verdict = look.srm.peer_verdict(look.peer, look.params, look.now)
        if verdict is not None and transitions.take_over(
            look.node_id, look.peer.pk, reason=verdict.reason, failed_reason=verdict.failed_reason
        ):
            return look.srm.finish_take_over
    else:
        _fail_if_both_down(look)
    return None


def taking_over(look: Look) -> FollowUp | None:
    """Taking Over → Running in Backup Mode once the TC loaded the peer's rooms (Running in
    Failed Mode, Take Over Users Failed, if it could not)."""
    _idle_silent_peer(look)
    return look.srm.finish_take_over


def running_in_backup_mode(look: Look) -> FollowUp | None:
    """Running in Backup Mode: hand the peer back when HA was switched off or automatic fallback
    is due (Falling Back); Running in Failed Mode when this node's own critical services die."""
    _idle_silent_peer(look)
    if not look.ha_enabled:
        if look.peer.ha_state in FALLBACK_FROM and look.peer.agent_reporting:
            transitions.begin_fallback(look.peer.pk, HAReason.HA_NOT_ENABLED)
    elif look.down_for_the_delay():
        transitions.fail_backup(look.node_id, HAReason.CRITICAL_SERVICE_DOWN)
    elif _automatic_fallback_due(look):
        transitions.begin_fallback(look.peer.pk, HAReason.AUTOMATIC_FALLBACK)
    return None


def falling_back(look: Look) -> FollowUp | None:
    """Falling Back → Normal once the TC unloaded the peer's rooms and gave its users back."""
    return lambda ok: transitions.release_rooms(look.node_id, ok)


def taking_back(look: Look) -> FollowUp | None:
    """Taking Back → Normal once the peer released the rooms and this TC loaded them; Running in
    Failed Mode, Start of Critical Services Failed, if its critical services do not start."""
    if look.down_since is not None and look.srm.take_back_failed(look.node, look.params, look.now):
        transitions.fail_take_back(look.node_id)
    elif look.down_since is None and transitions.reclaim_rooms(look.node_id):
        return lambda ok: transitions.finish_take_back(look.node_id, ok)
    return None


def failing_over(look: Look) -> FollowUp | None:
    """Failing Over → Idle once the node agent has stopped the critical services (manual failover)."""
    if look.down_since is not None:
        transitions.set_own_state(
            look.node_id, HAState.IDLE, HAReason(look.node.ha_reason), only_from={HAState.FAILING_OVER}
        )
    return None


def failed_over_critical_services_not_running(look: Look) -> FollowUp | None:
    """Failed Over with Critical Services Not Running → Failed Over once they run again
    (Fallback is offered from there)."""
    if look.down_since is None:
        transitions.set_own_state(
            look.node_id,
            HAState.FAILED_OVER,
            HAReason(look.node.ha_reason),
            only_from={HAState.FAILED_OVER_CRITICAL_SERVICES_NOT_RUNNING},
        )
    return None


def failed_over(look: Look) -> FollowUp | None:
    """Failed Over → Failed Over with Critical Services Not Running, Critical Service Down, when
    a critical service stops again."""
    if look.down_since is not None:
        transitions.set_own_state(
            look.node_id,
            HAState.FAILED_OVER_CRITICAL_SERVICES_NOT_RUNNING,
            HAReason.CRITICAL_SERVICE_DOWN,
            only_from={HAState.FAILED_OVER},
        )
    return None


DECISIONS: dict[HAState, Callable[[Look], FollowUp | None]] = {
    HAState.UNKNOWN: unknown,
    HAState.INITIALIZING: initializing,
    HAState.NORMAL: normal,
    HAState.TAKING_OVER: taking_over,
    HAState.RUNNING_IN_BACKUP_MODE: running_in_backup_mode,
    HAState.FALLING_BACK: falling_back,
    HAState.TAKING_BACK: taking_back,
    HAState.FAILING_OVER: failing_over,
    HAState.FAILED_OVER_CRITICAL_SERVICES_NOT_RUNNING: failed_over_critical_services_not_running,
    HAState.FAILED_OVER: failed_over,
}


def decide(look: Look) -> FollowUp | None:
    """The decision of the node's state, if it has one."""
    decision = DECISIONS.get(HAState(look.node.ha_state))
    return decision(look) if decision is not None else None


def _fail_if_both_down(look: Look) -> None:
    """Critical services down for the delay on both nodes (Normal or Initializing): neither can
    take the other over, so the group fails, both Running in Failed Mode, Critical Service Down
    (reference 1.2, 1.5), until Recover; whichever node's services come back first does not take
    the other over meanwhile. A peer whose heartbeat was lost does not count: when its agent
    comes back it initializes and, its services running, takes this node over."""
    if not look.down_for_the_delay() or look.peer.ha_state not in BOTH_FAILED_FROM:
        return
    verdict = look.srm.peer_verdict(look.peer, look.params, look.now)
    if verdict is not None and verdict.services_down:
        transitions.fail_both(look.node_id, HAReason.CRITICAL_SERVICE_DOWN)


def _idle_silent_peer(look: Look) -> None:
    """A peer failing over on admin request whose agent went silent will not go Idle by itself."""
    if look.peer.ha_state != HAState.FAILING_OVER:
        return
    last_seen = look.peer.last_heartbeat or look.srm.started_at
    if look.now - last_seen >= seconds(look.params.heartbeat_timeout):
        transitions.idle_silent_peer(look.node_id)


def _automatic_fallback_due(look: Look) -> bool:
    peer, params = look.peer, look.params
    return (
        params.enable_automatic_fallback
        and peer.ha_state == HAState.FAILED_OVER
        and peer.agent_reporting
        and peer.ha_state_changed_at is not None
        and look.now - peer.ha_state_changed_at >= seconds(params.automatic_fallback_delay)
    )
