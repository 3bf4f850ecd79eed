"""A node's lease: its right to host rooms, renewed with each heartbeat in the config DB.

The node agent renews the lease each time its heartbeat is committed, for the self-fence
period (the heartbeat timeout less the self-fence margin), counted from the moment the
heartbeat was *sent*: a renewal that takes long shortens the lease, never lengthens it.
Measured on the monotonic clock, so a change of the wall clock neither extends nor cuts it.

The peer may take the node's rooms over once the node's heartbeat is older than the
heartbeat timeout; the lease runs out at least the margin earlier, so the node has stopped
serving its rooms before that (Patroni's leader key; docs/operations.md, "Fencing").
"""

from __future__ import annotations

import time


class Lease:
    """The node agent's lease. ``held()`` is what the Text Conference Manager asks before it
    accepts a post; an agent with fencing off (``enforced=False``) always holds it."""

    def __init__(self, *, enforced: bool = True) -> None:
        self.enforced = enforced
        self._valid_until: float | None = None
        self.renewed_at: float | None = None

    def renew(self, sent_at: float, period: float) -> None:
        """A heartbeat sent at ``sent_at`` (``time.monotonic()``) was committed."""
        self.renewed_at = sent_at
        valid_until = sent_at + period
        if self._valid_until is None or valid_until > self._valid_until:
            self._valid_until = valid_until

    def held(self, now: float | None = None) -> bool:
        if not self.enforced:
            return True
        now = time.monotonic() if now is None else now
        return self._valid_until is not None and now < self._valid_until

    def age(self) -> float | None:
        """Seconds since the last renewal was sent (None before the first)."""
        return None if self.renewed_at is None else time.monotonic() - self.renewed_at
