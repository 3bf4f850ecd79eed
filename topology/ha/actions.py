"""The Server Action buttons of a presence redundancy group (reference 1.3): which ones each
state offers, why one cannot be carried out now, and carrying out the pending requests.

The group page and its POST view ask ``available_actions`` and ``action_refusal``; an SRM of
the group calls ``apply_server_actions`` on every tick. Plain module: no HTTP.
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from topology.choices import FALLBACK_FROM, HAReason, HAState
from topology.ha import transitions
from topology.ha.transitions import GroupState, lock_group
from topology.models import Node, ServerAction, ServerActionName, ServerActionStatus


def offered_actions(node: Node, peer: Node | None, ha_enabled: bool) -> list[ServerActionName]:
    """The Server Action buttons the reference offers for ``node`` in its current state (1.3).

    Recover stays offered with HA off: a group left Running in Failed Mode needs it to get out.
    """
    if peer is None:
        return []
    if node.ha_state == HAState.RUNNING_IN_FAILED_MODE:
        return [ServerActionName.RECOVER]
    if not ha_enabled:
        return []
    if node.ha_state == HAState.NORMAL and peer.ha_state == HAState.NORMAL:
        return [ServerActionName.FAILOVER]
    if node.ha_state in FALLBACK_FROM and peer.ha_state == HAState.RUNNING_IN_BACKUP_MODE:
        return [ServerActionName.FALLBACK]
    return []


def action_refusal(action: str, node: Node, peer: Node | None, ha_enabled: bool) -> str | None:
    """Why ``action`` on ``node`` cannot be carried out now, or None if it can.

    Failover and Fallback move users between the two nodes, which takes both nodes' agents:
    the node's own SRM stops or starts its critical services, the peer's TC loads or unloads
    the rooms. With either agent silent the request would leave a node half-way (Failing Over
    for good), so it is refused with the reason instead.
    """
    label = ServerActionName(action).label
    if action not in offered_actions(node, peer, ha_enabled):
        return f"{label} is not offered while {node} is {node.get_ha_state_display()}."
    if action == ServerActionName.RECOVER:
        return None
    if not node.agent_reporting:
        if action == ServerActionName.FAILOVER:
            return (
                f"{label} of {node} refused: its node agent is not reporting, so it cannot hand its users over. "
                f"The Server Recovery Manager of {peer} fails it over by itself once its heartbeat times out."
            )
        return (
            f"{label} of {node} refused: its node agent is not reporting; "
            f"start it first (manage.py run_node {node.name})."
        )
    if not peer.agent_reporting:
        what = f"take over {node}'s users" if action == ServerActionName.FAILOVER else f"hand {node}'s users back"
        return (
            f"{label} of {node} refused: the node agent of {peer} is not reporting, so it could not {what}; "
            f"start it first (manage.py run_node {peer.name})."
        )
    return None


def available_actions(node: Node, peer: Node | None, ha_enabled: bool) -> tuple[list[ServerActionName], list[str]]:
    """The buttons to show for ``node``, and the reasons for the offered ones that cannot run now."""
    buttons, reasons = [], []
    for action in offered_actions(node, peer, ha_enabled):
        refusal = action_refusal(action, node, peer, ha_enabled)
        if refusal is None:
            buttons.append(action)
        else:
            reasons.append(refusal)
    return buttons, reasons


def apply_server_actions(node_id: int) -> int:
    """Carry out the pending Server Actions of ``node_id``'s group; returns how many were handled.

    Any SRM of the group may do it: the claim happens under the group lock, so each request
    is carried out once.
    """
    handled = 0
    with transaction.atomic():
        locked = lock_group(node_id, recorded_by=node_id)
        if locked is None:
            return 0
        for request in ServerAction.objects.filter(group=locked.group, status=ServerActionStatus.PENDING):
            result = _apply(locked, request)
            request.status = ServerActionStatus.REFUSED if result.startswith("Refused") else ServerActionStatus.APPLIED
            request.result, request.handled_at = result, timezone.now()
            request.save(update_fields=["status", "result", "handled_at"])
            handled += 1
    return handled


def _apply(locked: GroupState, request: ServerAction) -> str:
    members = {n.pk: n for n in (locked.node, locked.peer) if n is not None}
    target = members.get(request.node_id)
    if target is None:
        return "Refused: the node is no longer in this group."
    peer = next((n for pk, n in members.items() if pk != target.pk), None)
    refusal = action_refusal(request.action, target, peer, locked.group.ha_enabled)
    if refusal is not None:
        return f"Refused: {refusal}"
    if request.action == ServerActionName.FAILOVER:
        # The target fails over to its peer: Failing Over, and Idle once its SRM stopped its
        # critical services (``decisions.failing_over``).
        made = transitions.take_over(
            peer.pk,
            target.pk,
            reason=HAReason.ON_ADMIN_REQUEST,
            failed_state=HAState.FAILING_OVER,
            failed_from={HAState.NORMAL},
            recorded_by=locked.recorded_by,
        )
        return f"{target} began failing over to {peer}." if made else f"Refused: {target} cannot fail over now."
    if request.action == ServerActionName.FALLBACK:
        made = transitions.begin_fallback(target.pk, HAReason.ON_ADMIN_REQUEST, recorded_by=locked.recorded_by)
        return (
            f"{target} began taking back its users and rooms from {peer}."
            if made
            else f"Refused: {target} cannot fall back now."
        )
    # Recover: restart both SRMs from a clean slate.
    transitions.recover(target.pk)
    return f"{target} and {peer} began initializing again: both Server Recovery Managers restarted."
