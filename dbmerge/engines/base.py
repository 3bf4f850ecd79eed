"""What every merge engine shares: errors, callbacks, the report."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

# Tables in the order they are reported; tc_rooms and tc_users are small and staged,
# the three history tables are streamed straight into place.
REPORT_TABLES = ("tc_rooms", "tc_users", "tc_messages", "tc_msgarchive", "tc_timelog", "xcp_sequence")


class MergeError(Exception):
    """An expected reason the merge cannot go on; the message is shown to the administrator."""


class AlreadyMerged(MergeError):
    """The destination's merge record shows these sources were merged into it before."""


class MergeCancelled(MergeError):
    """The administrator cancelled the job; the destination was left as it was."""


CANCELLED_REASON = "Cancelled by the administrator; the destination was left as it was."
logger = logging.getLogger("dbmerge.engine")


NO_LONGER_OURS = (
    "The job is no longer Merging (it was marked failed or cancelled while the merge ran), so the merge "
    "was not committed; the destination was left as it was."
)


@dataclass
class MergeHooks:
    """How an engine reports progress and learns of a cancellation.

    ``progress(table, done, total)`` is called between batches; ``should_cancel()`` is asked
    at most every ``poll_seconds`` and stops the merge (rolling the destination back) when
    it answers True. ``still_ours()`` is asked once, just before the destination commits:
    a job given up meanwhile (marked failed by the stale job check) must not be committed.

    A merge spends most of its time inside single statements (one COPY, one set-based step
    on the destination), where no checkpoint is reached. So an engine registers with
    ``on_interrupt`` how to cancel the statement each of its connections is running, and
    another thread (the runner's heartbeat) calls ``interrupt()`` when Cancel is pressed:
    the running statement fails at once, and the engine, seeing ``cancelled``, ends with
    MergeCancelled instead of a database error.
    """

    progress: Callable[[str, int, int], None] = lambda table, done, total: None
    should_cancel: Callable[[], bool] = lambda: False
    still_ours: Callable[[], bool] = lambda: True
    poll_seconds: float = 1.0
    _last_poll: float = field(default=0.0, repr=False)
    _cancelled: threading.Event = field(default_factory=threading.Event, repr=False)
    _interrupters: list[Callable[[], None]] = field(default_factory=list, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def on_interrupt(self, cancel: Callable[[], None]) -> Callable[[], None]:
        """Register ``cancel`` (cancels what one connection is running); returns a function
        that unregisters it, for when the connection closes."""
        with self._lock:
            self._interrupters.append(cancel)

        def forget() -> None:
            with self._lock:
                if cancel in self._interrupters:
                    self._interrupters.remove(cancel)

        return forget

    def interrupt(self) -> None:
        """Mark the merge cancelled and cancel every registered connection's statement.

        Safe to call from another thread, and again: a statement started in the instant
        between the engine's last look at the flag and the first call is cancelled by the next.
        """
        self._cancelled.set()
        with self._lock:
            cancels = list(self._interrupters)
        for cancel in cancels:
            try:
                cancel()
            except Exception as exc:  # a connection closing meanwhile: nothing left to cancel
                logger.debug("Cancelling a statement failed: %s", exc)

    def raise_if_cancelled(self) -> None:
        if self.cancelled:
            raise MergeCancelled(CANCELLED_REASON)

    def due(self) -> bool:
        now = time.monotonic()
        if now - self._last_poll >= self.poll_seconds:
            self._last_poll = now
            return True
        return False

    def checkpoint(self, table: str, done: int, total: int, force: bool = False) -> None:
        """Report progress and honour a cancellation, if due (or ``force``)."""
        self.raise_if_cancelled()
        if force or self.due():
            self.progress(table, done, total)
            if self.should_cancel():
                self._cancelled.set()
                raise MergeCancelled(CANCELLED_REASON)

    def confirm_commit(self) -> None:
        """Raise MergeError (the caller then rolls back) unless the job may still commit."""
        if not self.still_ours():
            raise MergeError(NO_LONGER_OURS)


@dataclass
class TableFigures:
    read: int = 0
    written: int = 0
    duplicates_removed: int = 0
    ids_remapped: int = 0


@dataclass
class SharedRoom:
    """A room present in both sides of a merge step, and how it was merged."""

    room_jid: str
    messages_kept_ids: int
    messages_renumbered: int
    renumbered_side: str
    fields_from: str
    members: int
    next_msg_id: int


@dataclass
class MovedIds:
    """A run of incoming tc_msgarchive ids already used in the destination, and where it moved."""

    source: str
    low: int
    high: int
    to_low: int
    to_high: int
    rows: int


@dataclass
class MergeReport:
    """What a merge did (or, with ``preview``, would do); stored on the job and shown on its page."""

    method: str
    sources: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    tables: dict[str, TableFigures] = field(default_factory=lambda: {name: TableFigures() for name in REPORT_TABLES})
    shared_rooms: list[SharedRoom] = field(default_factory=list)
    destination_rows: dict[str, int] = field(default_factory=dict)
    moved_ids: list[MovedIds] = field(default_factory=list)
    sequence_new_id: int = 0
    seconds: float = 0.0
    preview: bool = False

    @property
    def rows_written(self) -> int:
        return sum(figures.written for figures in self.tables.values())

    @property
    def rows_per_second(self) -> float:
        return self.rows_written / self.seconds if self.seconds else 0.0

    def as_dict(self) -> dict:
        data = asdict(self)
        data["rows_written"] = self.rows_written
        data["rows_per_second"] = round(self.rows_per_second, 1)
        return data
