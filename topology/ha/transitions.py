"""The SRM's state transitions of a presence redundancy group (reference 1.4–1.6).

Every function here is one transition and one database transaction: it locks the group's
row first (on SQLite the IMMEDIATE transaction takes the write lock up front), re-reads both
nodes and checks the states the transition starts from, so two SRMs racing can never both
take over and no room is ever assigned to two nodes. Every state change goes through
``GroupState.set``, which records it as an ``HATransition``.

One return convention: True when the transition was made, False (nothing changed) when the
group no longer allows it. ``topology.ha.decisions`` chooses which transition to make,
``topology.ha.actions`` makes the ones administrators ask for. Plain module: no HTTP, no
asyncio; the node agent's SRM and the tests call it alike.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from topology.alarms import raise_alarm
from topology.catalog import ControlAction, ServiceName
from topology.choices import BOTH_FAILED_FROM, FAILOVER_STATES, FALLBACK_FROM, TAKE_OVER_FROM, HAReason, HAState
from topology.models import (
    AlarmName,
    EndUser,
    HATransition,
    Node,
    RedundancyGroup,
    Service,
)

log = logging.getLogger(__name__)


@dataclass
class GroupState:
    """A group and its two members, read and locked inside one transition.

    ``group`` is None only for a node in no group: its state changes with no transition to
    record (``set_ha_not_enabled``).
    """

    group: RedundancyGroup | None
    node: Node
    peer: Node | None
    recorded_by: int | None

    def set(self, node: Node, state: HAState, reason: HAReason) -> None:
        """Change ``node``'s state and record the transition (no-op when unchanged)."""
        if node.ha_state == state and node.ha_reason == reason:
            return
        now = timezone.now()
        if self.group is not None:
            HATransition.objects.create(
                group=self.group,
                node=node,
                at=now,
                from_state=node.ha_state,
                to_state=state,
                reason=reason,
                recorded_by_id=self.recorded_by,
            )
        log.info("%s: %s -> %s (%s)", node, node.ha_state, state, reason)
        node.ha_state, node.ha_reason, node.ha_state_changed_at = state, reason, now
        node.save(update_fields=["ha_state", "ha_reason", "ha_state_changed_at"])

    def alarm(self, name: AlarmName, from_node: Node, to_node: Node | None, reason: HAReason) -> None:
        raise_alarm(name, self.group, from_node, to_node, reason)


def lock_group(node_id: int, recorded_by: int | None = None) -> GroupState | None:
    """Lock the group of ``node_id`` and read both members; None if the node is in no group."""
    group_id = Node.objects.filter(pk=node_id).values_list("redundancy_group_id", flat=True).first()
    if group_id is None:
        return None
    group = RedundancyGroup.objects.select_for_update().get(pk=group_id)
    members = {n.pk: n for n in Node.objects.select_for_update().filter(redundancy_group=group)}
    node = members.pop(node_id, None)
    if node is None:  # moved out of the group meanwhile
        return None
    peer = next(iter(members.values()), None)
    return GroupState(group, node, peer, recorded_by)


def set_own_state(node_id: int, state: HAState, reason: HAReason, *, only_from: set[HAState] | None = None) -> bool:
    """A node's SRM changes its own state (Initializing → Normal, Failed Over …)."""
    with transaction.atomic():
        locked = lock_group(node_id, recorded_by=node_id)
        if locked is None or (only_from is not None and locked.node.ha_state not in only_from):
            return False
        locked.set(locked.node, state, reason)
        return True


def take_over(
    backup_id: int,
    failed_id: int,
    *,
    reason: HAReason,
    failed_state: HAState = HAState.FAILED_OVER_CRITICAL_SERVICES_NOT_RUNNING,
    failed_reason: HAReason | None = None,
    failed_from: set[HAState] = TAKE_OVER_FROM,
    recorded_by: int | None = None,
) -> bool:
    """The backup takes over the failed node's users and rooms: first half of a failover.

    Automatic (the failed node goes Failed Over with Critical Services Not Running) or on
    admin request (it goes Failing Over, and Idle once its critical services are stopped).
    Made only if HA is on, the backup is Normal and the failed node is still in one of
    ``failed_from``. ``recorded_by`` is the node whose SRM makes it (default the backup).
    """
    with transaction.atomic():
        locked = lock_group(backup_id, recorded_by=recorded_by or backup_id)
        if locked is None or locked.peer is None or locked.peer.pk != failed_id or not locked.group.ha_enabled:
            return False
        backup, failed = locked.node, locked.peer
        if backup.ha_state != HAState.NORMAL or failed.ha_state not in failed_from:
            return False
        locked.set(failed, failed_state, failed_reason or reason)
        locked.set(backup, HAState.TAKING_OVER, reason)
        failed.rooms_hosted_by, failed.rooms_moving = backup, False
        failed.save(update_fields=["rooms_hosted_by", "rooms_moving"])
        EndUser.objects.filter(assigned_node=failed).update(active_node=backup)
        locked.alarm(AlarmName.SRM_FAILOVER, failed, backup, reason)
        return True


def finish_take_over(backup_id: int, rooms_loaded: bool) -> bool:
    """Second half of a failover, once the backup's TC loaded the peer's rooms (or failed to)."""
    with transaction.atomic():
        locked = lock_group(backup_id, recorded_by=backup_id)
        if locked is None or locked.node.ha_state != HAState.TAKING_OVER:
            return False
        if rooms_loaded:
            locked.set(locked.node, HAState.RUNNING_IN_BACKUP_MODE, HAReason(locked.node.ha_reason))
        else:
            _both_failed(locked, HAReason.TAKE_OVER_USERS_FAILED)
        return True


def begin_fallback(home_id: int, reason: HAReason, *, recorded_by: int | None = None) -> bool:
    """Taking Back / Falling Back: the backup is to release the home node's rooms.

    Made only if the home node is Idle or Failed Over and its peer Running in Backup Mode.
    ``recorded_by`` is the node whose SRM makes it (default the home node).
    """
    with transaction.atomic():
        locked = lock_group(home_id, recorded_by=recorded_by or home_id)
        if locked is None or locked.peer is None:
            return False
        home, backup = locked.node, locked.peer
        if home.ha_state not in FALLBACK_FROM or backup.ha_state != HAState.RUNNING_IN_BACKUP_MODE:
            return False
        locked.set(home, HAState.TAKING_BACK, reason)
        locked.set(backup, HAState.FALLING_BACK, reason)
        home.rooms_moving = True
        home.save(update_fields=["rooms_moving"])
        return True


def release_rooms(backup_id: int, rooms_unloaded: bool) -> bool:
    """The falling-back node has unloaded its peer's rooms: hand rooms and users back, go Normal."""
    with transaction.atomic():
        locked = lock_group(backup_id, recorded_by=backup_id)
        if locked is None or locked.node.ha_state != HAState.FALLING_BACK:
            return False
        if not rooms_unloaded:
            _both_failed(locked, HAReason.TAKE_BACK_USERS_FAILED)
            return True
        Node.objects.filter(rooms_hosted_by=locked.node).update(rooms_hosted_by=None)
        EndUser.objects.filter(active_node=locked.node).update(active_node=None)
        locked.set(locked.node, HAState.NORMAL, HAReason.NORMAL)
        return True


def reclaim_rooms(home_id: int) -> bool:
    """The taking-back node's rooms are released by the peer: they are its own again."""
    with transaction.atomic():
        locked = lock_group(home_id, recorded_by=home_id)
        if locked is None or locked.node.ha_state != HAState.TAKING_BACK or locked.node.rooms_hosted_by_id:
            return False
        locked.node.rooms_moving = False
        locked.node.save(update_fields=["rooms_moving"])
        return True


def finish_take_back(home_id: int, rooms_loaded: bool) -> bool:
    """The taking-back node's TC loaded its own rooms again (Normal), or failed to (both Failed Mode)."""
    with transaction.atomic():
        locked = lock_group(home_id, recorded_by=home_id)
        if locked is None or locked.node.ha_state != HAState.TAKING_BACK:
            return False
        if rooms_loaded:
            fallback_reason = HAReason(locked.node.ha_reason)
            locked.set(locked.node, HAState.NORMAL, HAReason.NORMAL)
            locked.alarm(AlarmName.SRM_FALLBACK, locked.peer or locked.node, locked.node, fallback_reason)
        else:
            _both_failed(locked, HAReason.TAKE_BACK_USERS_FAILED)
        return True


def fail_backup(backup_id: int, reason: HAReason) -> bool:
    """The backup lost its own critical services while serving its peer: both Running in Failed Mode."""
    with transaction.atomic():
        locked = lock_group(backup_id, recorded_by=backup_id)
        if locked is None or locked.node.ha_state != HAState.RUNNING_IN_BACKUP_MODE:
            return False
        _both_failed(locked, reason)
        return True


def fail_both(node_id: int, reason: HAReason) -> bool:
    """Critical services are down on both nodes of the group, so neither can take the other
    over: both Running in Failed Mode (reference 1.2, 1.5); Recover follows.

    Made only if HA is on and both nodes are still Normal or Initializing: a peer that took
    this node over meanwhile (its services back in time) keeps the failover it made.
    """
    with transaction.atomic():
        locked = lock_group(node_id, recorded_by=node_id)
        if locked is None or locked.peer is None or not locked.group.ha_enabled:
            return False
        if locked.node.ha_state not in BOTH_FAILED_FROM or locked.peer.ha_state not in BOTH_FAILED_FROM:
            return False
        _both_failed(locked, reason)
        return True


def fail_take_back(home_id: int) -> bool:
    """The home node's critical services did not start while it took its users back: both nodes
    Running in Failed Mode, Start of Critical Services Failed (reference 1.5); Recover follows."""
    with transaction.atomic():
        locked = lock_group(home_id, recorded_by=home_id)
        if locked is None or locked.node.ha_state != HAState.TAKING_BACK:
            return False
        _both_failed(locked, HAReason.START_OF_CRITICAL_SERVICES_FAILED)
        return True


def idle_silent_peer(backup_id: int) -> bool:
    """The peer was failing over on admin request when its node agent stopped reporting: with no
    agent its services are not running, so the backup's SRM finishes the peer's side (Idle)
    instead of leaving it Failing Over."""
    with transaction.atomic():
        locked = lock_group(backup_id, recorded_by=backup_id)
        if locked is None or locked.peer is None or locked.peer.ha_state != HAState.FAILING_OVER:
            return False
        locked.set(locked.peer, HAState.IDLE, HAReason(locked.peer.ha_reason))
        return True


def _both_failed(locked: GroupState, reason: HAReason) -> None:
    for node in (locked.node, locked.peer):
        if node is not None:
            locked.set(node, HAState.RUNNING_IN_FAILED_MODE, reason)
    locked.alarm(AlarmName.SRM_FAILED, locked.node, None, reason)


def recover(node_id: int) -> bool:
    """Recover: both nodes back to their own rooms and users, and both SRMs restarted."""
    with transaction.atomic():
        locked = lock_group(node_id, recorded_by=node_id)
        if locked is None:
            return False
        for node in (locked.node, locked.peer):
            if node is None:
                continue
            locked.set(node, HAState.INITIALIZING, HAReason.INITIALIZATION)
            node.rooms_hosted_by, node.rooms_moving = None, False
            node.save(update_fields=["rooms_hosted_by", "rooms_moving"])
            EndUser.objects.filter(assigned_node=node).update(active_node=None)
            srm = Service.objects.filter(node=node, name=ServiceName.SERVER_RECOVERY_MANAGER).first()
            if srm is not None:
                srm.request(ControlAction.RESTART)
        return True


def set_ha_not_enabled(node_id: int) -> bool:
    """HA is off on the group (or the node has no group): the state the CLI shows for it.

    Not while the node is part of a failover in its group: its users and rooms (or its peer's)
    go home first, by a fallback the SRMs carry out (``topology.ha.decisions``), so switching
    HA off strands nobody. A node that left its group (or whose peer left) has nobody to fall
    back with: it takes its own users and rooms back and gives back any it served for others.
    """
    with transaction.atomic():
        locked = lock_group(node_id, recorded_by=node_id)
        if locked is not None and locked.peer is not None:
            node, peer = locked.node, locked.peer
            if (
                node.ha_state in FAILOVER_STATES
                or node.rooms_hosted_by_id is not None
                or node.rooms_moving
                or peer.rooms_hosted_by_id == node.pk
            ):
                return False
        else:
            node = Node.objects.select_for_update().get(pk=node_id)
            if node.rooms_hosted_by_id is not None or node.rooms_moving:
                node.rooms_hosted_by, node.rooms_moving = None, False
                node.save(update_fields=["rooms_hosted_by", "rooms_moving"])
            Node.objects.filter(rooms_hosted_by=node).update(rooms_hosted_by=None, rooms_moving=False)
            EndUser.objects.filter(assigned_node=node).update(active_node=None)
            EndUser.objects.filter(active_node=node).update(active_node=None)
            locked = GroupState(node.redundancy_group, node, None, recorded_by=node_id)
        if node.ha_state == HAState.UNKNOWN and node.ha_reason == HAReason.HA_NOT_ENABLED:
            return False
        locked.set(node, HAState.UNKNOWN, HAReason.HA_NOT_ENABLED)
        return True
