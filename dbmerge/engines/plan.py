# ruff: noqa: S608 -- SQL is assembled from the schema module's constant names; values are bind parameters.
"""The merge, step by step, the same for every database type (DESIGN.md, "Database merge").

Each source that is not the destination itself is folded into the destination in turn:
its small tables (rooms, members, sequence) and per-room message statistics are staged in
the destination, and every decision (which rooms are shared, which rows are exact duplicates,
which side is renumbered, by how much, which archive ids collide) is taken there in SQL. The
messages of rooms with history on both sides are staged too (so that identical messages are
dropped before anything is renumbered); every other history row streams straight into place,
colliding archive ids moved in the source's SELECT and the moved rows found identical to the
destination's deleted again. All of it happens in one destination transaction; the caller
commits only when every step succeeded.
"""

from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from dbmerge.engines import sqlbuild as q
from dbmerge.engines.base import REPORT_TABLES, AlreadyMerged, MergeError, MergeHooks, MergeReport, MovedIds, SharedRoom
from messaging.tc.schema import Dialect

logger = logging.getLogger("dbmerge.engine")

# The report lists at most this many shared rooms by name (it always gives their number).
REPORT_ROOMS = 500
# The report lists at most this many runs of moved archive ids (it always gives their number).
REPORT_RUNS = 500
# More runs of colliding archive ids than this and the id map is too large for one SELECT.
MAX_ID_RUNS = 200_000
# About this many colliding archive rows are compared first, to choose how the others go.
DUPLICATE_SAMPLE = 1000
# When at least this share of the sample are exact duplicates, the colliding rows are staged
# and only those that are not duplicates inserted: writing a row into the archive and deleting
# it again costs more than staging it. Below it (most merges: ids collide, rows differ), the
# rows stream straight into place and the few duplicates are deleted after.
STAGE_DUPLICATE_SHARE = 0.25
PROGRESS_TABLES = ("tc_rooms", "tc_users", "tc_messages", "tc_msgarchive", "tc_timelog")


class SourceSide(ABC):
    """A source database, read in one consistent snapshot."""

    label: str
    fingerprint: str

    @abstractmethod
    def query(self, statement: q.Statement) -> list[tuple]: ...


class DestinationSide(ABC):
    """The destination database, written in one transaction."""

    label: str
    fingerprint: str
    dialect: Dialect

    @abstractmethod
    def execute(self, text: str, params: dict | None = None) -> int: ...

    @abstractmethod
    def query(self, text: str, params: dict | None = None) -> list[tuple]: ...

    @abstractmethod
    def prepare(self) -> list[str]:
        """Install what is missing (TC schema, merge record), create the staging tables and
        lock the TC tables; return notes for the report."""

    @abstractmethod
    def clear_staging(self) -> None: ...

    # Whether colliding archive rows can be staged and only those that are not duplicates
    # inserted (``sqlbuild.insert_staged_archive``, PostgreSQL).
    stages_archive = False

    def analyze(self, table: str) -> None:  # noqa: B027 -- optional: only where the planner needs it
        """Refresh the planner's statistics of a staging table just filled."""

    def insert_staged_archive(self, runs: list[tuple[int, int, int]]) -> int:
        """Insert the staged colliding archive rows that are not exact duplicates, moved by
        ``runs``; return how many (only where ``stages_archive``)."""
        raise NotImplementedError

    def delete_moved_duplicates(self, runs: list[tuple[int, int, int]]) -> int:
        """Delete the incoming archive rows just moved by ``runs`` (lowest id, highest id, shift)
        that are exact duplicates of the destination's row at their original id; return how many."""
        return self.execute(**_st(q.delete_moved_duplicates(self.dialect, runs)))


class Transport(ABC):
    """Moves the rows of a source SELECT into a destination table."""

    name: str

    @abstractmethod
    def transfer(
        self, source: SourceSide, statement: q.Statement, into: q.StagedColumns, on_rows=lambda rows: None
    ) -> int:
        """Return the number of rows written; call ``on_rows(rows so far)`` between batches."""


@dataclass
class _Progress:
    hooks: MergeHooks
    totals: dict[str, int]
    done: dict[str, int] = field(default_factory=dict)

    def reporter(self, table: str):
        base = self.done.get(table, 0)

        def on_rows(rows: int) -> None:
            self.done[table] = base + min(rows, self.totals[table] - base)
            self.hooks.checkpoint(table, self.done[table], self.totals[table])

        return on_rows

    def finish(self, table: str, rows: int, base: int) -> None:
        self.done[table] = min(base + rows, self.totals[table])
        self.hooks.checkpoint(table, self.done[table], self.totals[table], force=True)


def merge(
    destination: DestinationSide,
    sources: list[SourceSide],
    transport: Transport,
    hooks: MergeHooks,
    job_id: int,
) -> MergeReport:
    """Merge ``sources`` (two of them) into ``destination``; the caller commits on success."""
    started = time.monotonic()
    dialect = destination.dialect
    report = MergeReport(method=transport.name, sources=[s.label for s in sources])
    if sources[0].fingerprint == sources[1].fingerprint:
        raise MergeError(
            f"{sources[0].label} and {sources[1].label} are the same database; choose two different sources."
        )
    report.notes += destination.prepare()

    pair = "|".join(sorted(s.fingerprint for s in sources))
    lookup = q.merge_record_lookup(dialect)
    earlier = destination.query(lookup.text, {"pair": pair})
    if earlier:
        job, when = earlier[0]
        raise AlreadyMerged(
            f"{destination.label} already holds the merge of these two sources (job {job}, {when:%Y-%m-%d %H:%M} UTC); "
            "the same merge cannot be applied twice."
        )

    for table in REPORT_TABLES:
        report.destination_rows[table] = destination.query(f"SELECT COUNT(*) FROM {table}")[0][0]
    incoming = []
    for source in sources:
        if source.fingerprint == destination.fingerprint:
            report.notes.append(f"The destination is {source.label}: its rows stay as they are and the other is added.")
        else:
            incoming.append(source)
    own_rows = report.destination_rows["tc_rooms"] + report.destination_rows["tc_msgarchive"]
    if own_rows and len(incoming) == 2:
        report.notes.append("The destination was not empty: its own rows are kept and merged like a third source.")

    counts = {}
    for source in incoming:
        row = source.query(q.source_counts_select())[0]
        counts[source.fingerprint] = dict(zip(q.SOURCE_COUNT_TABLES, row[:6], strict=True))
        counts[source.fingerprint]["archive_range"] = (row[6], row[7])
        for table in q.SOURCE_COUNT_TABLES:
            report.tables[table].read += counts[source.fingerprint][table]
    progress = _Progress(hooks, {t: sum(counts[s.fingerprint][t] for s in incoming) for t in PROGRESS_TABLES})
    for table in PROGRESS_TABLES:
        hooks.progress(table, 0, progress.totals[table])

    for source in incoming:
        logger.info("Merging %s into %s.", source.label, destination.label)
        _fold(destination, source, transport, progress, report, counts[source.fingerprint])
        destination.clear_staging()

    destination.execute(**_st(q.sequence_insert_if_missing(dialect)))
    destination.execute(**_st(q.sequence_past_every_id(dialect)))
    report.sequence_new_id = destination.query(
        "SELECT new_id FROM xcp_sequence WHERE name_id = " + q.ph(dialect, "name"), {"name": "tc_message_id"}
    )[0][0]
    record = q.merge_record_insert(dialect)
    destination.execute(
        record.text,
        {
            "job_id": job_id,
            "source_pair": pair,
            "source_1": sources[0].label[:512],
            "source_2": sources[1].label[:512],
            "merged_at": datetime.now(UTC),
        },
    )
    report.seconds = time.monotonic() - started
    logger.info(
        "Merge ready to commit: %s rows written in %.1f s (%.0f rows/s).",
        report.rows_written,
        report.seconds,
        report.rows_per_second,
    )
    return report


def _st(statement: q.Statement) -> dict:
    return {"text": statement.text, "params": statement.params}


def _fold(
    destination: DestinationSide,
    source: SourceSide,
    transport: Transport,
    progress: _Progress,
    report: MergeReport,
    counts: dict,
) -> None:
    dialect = destination.dialect
    tables = report.tables

    def stream(table: str, statement: q.Statement, into: q.StagedColumns) -> int:
        base = progress.done.get(table, 0)
        rows = transport.transfer(source, statement, into, progress.reporter(table))
        progress.finish(table, rows, base)
        return rows

    # 1. Stage the small tables and the per-room statistics of the source.
    stream("tc_rooms", q.plain_select(q.TC_ROOMS, dialect), q.table_columns(q.TC_ROOMS, dialect, q.STAGE_ROOMS))
    stream("tc_users", q.plain_select(q.TC_USERS, dialect), q.table_columns(q.TC_USERS, dialect, q.STAGE_USERS))
    transport.transfer(
        source, q.plain_select(q.XCP_SEQUENCE, dialect), q.table_columns(q.XCP_SEQUENCE, dialect, q.STAGE_SEQUENCE)
    )
    transport.transfer(source, q.room_stats_select(dialect), q.room_stats_columns(dialect))
    destination.execute(q.shared_rooms_insert())

    # 2. Room histories. Rooms with messages on one side only stream straight into place; the
    # others are staged, their messages identical to the destination's dropped, and the side
    # with fewer messages of its own renumbered after the other's.
    both = [row[0] for row in destination.query(f"SELECT room_jid FROM {q.STAGE_SHARED} WHERE t_n > 0 AND s_n > 0")]
    messages = q.table_columns(q.TC_MESSAGES, dialect)
    tables["tc_messages"].written += stream("tc_messages", q.messages_select(dialect, both, staged=False), messages)
    if both:
        staged = stream(
            "tc_messages",
            q.messages_select(dialect, both, staged=True),
            q.table_columns(q.TC_MESSAGES, dialect, q.STAGE_MESSAGES),
        )
        destination.analyze(q.STAGE_MESSAGES)
        marking = q.mark_duplicate_messages(dialect)
        duplicates = destination.execute(marking[0])
        if duplicates:
            for statement in marking[1:]:
                destination.execute(statement)
            # Without statistics the planner would expect no duplicate and compare every
            # destination message with every one (a nested loop) in the anti-joins below.
            destination.analyze(q.STAGE_DUPS)
            destination.execute(q.SHARED_OWN_INCOMING)
            destination.execute(q.SHARED_OWN_DESTINATION)
        tables["tc_messages"].duplicates_removed += duplicates
        tables["tc_messages"].written += staged - duplicates
    destination.execute(q.SHARED_DECIDE)
    destination.execute(q.SHARED_SHIFT)
    shared = destination.query(
        f"SELECT room_jid, renumber, shift, latest, t_n, s_n, COALESCE(dups, 0) FROM {q.STAGE_SHARED} ORDER BY room_jid"
    )
    renumbered_here = destination.execute(q.RENUMBER_DESTINATION_ROOMS[0])
    if renumbered_here:
        destination.execute(q.RENUMBER_DESTINATION_ROOMS[1])
    if both:
        destination.execute(q.insert_staged_messages())
    tables["tc_messages"].ids_remapped += renumbered_here + sum(row[5] for row in shared if row[1] == "S")

    # 3. The archive: ids in use are moved past the largest id in use; exact duplicates dropped.
    _merge_archive(destination, source, transport, stream, report, counts)

    # 4. Join and leave events, appended as they are.
    tables["tc_timelog"].written += stream(
        "tc_timelog", q.plain_select(q.TC_TIMELOG, dialect), q.table_columns(q.TC_TIMELOG, dialect)
    )

    # 5. Rooms, members, sequence rows from the staging tables.
    tables["tc_rooms"].written += destination.execute(q.insert_new_rooms())
    destination.execute(q.update_rooms_from_latest(dialect))
    destination.execute(q.NEXT_MSG_ID_UPDATE)
    tables["tc_rooms"].duplicates_removed += len(shared)
    members_before = destination.query("SELECT COUNT(*) FROM tc_users")[0][0]
    staged_users = destination.query(f"SELECT COUNT(*) FROM {q.STAGE_USERS}")[0][0]
    destination.execute(q.merge_users(dialect))
    new_members = destination.query("SELECT COUNT(*) FROM tc_users")[0][0] - members_before
    tables["tc_users"].written += new_members
    tables["tc_users"].duplicates_removed += staged_users - new_members
    staged_sequences = destination.query(f"SELECT COUNT(*) FROM {q.STAGE_SEQUENCE}")[0][0]
    new_sequences = destination.query(
        f"SELECT COUNT(*) FROM {q.STAGE_SEQUENCE} s WHERE NOT EXISTS "
        "(SELECT 1 FROM xcp_sequence t WHERE t.name_id = s.name_id)"
    )[0][0]
    destination.execute(q.merge_sequence(dialect))
    tables["xcp_sequence"].written += new_sequences
    tables["xcp_sequence"].duplicates_removed += staged_sequences - new_sequences

    _report_shared(destination, source, shared, report)


Stream = Callable[[str, q.Statement, q.StagedColumns], int]


def _merge_archive(
    destination: DestinationSide,
    source: SourceSide,
    transport: Transport,
    stream: Stream,
    report: MergeReport,
    counts: dict,
) -> None:
    """Colliding ids are moved past the largest id in use, and a colliding row identical (but
    for the id) to the destination's row at its id, an exact duplicate, is kept once.

    Either the rows stream straight into place, ids moved in the source's SELECT, and the
    duplicates are deleted again; or, when a sample shows many duplicates, the colliding rows
    are staged and only those that are not duplicates inserted. Both give the same rows."""
    dialect = destination.dialect
    figures = report.tables["tc_msgarchive"]
    runs, every_id = _colliding_runs(destination, source, transport, counts)
    moves = [(lo, hi, shift) for lo, hi, shift, _ in runs]
    colliding = sum(n for _, _, _, n in runs)
    staged = (
        colliding > 0
        and destination.stages_archive
        and _duplicate_share(destination, source, colliding, every_id) >= STAGE_DUPLICATE_SHARE
    )
    if staged:
        logger.info(
            "Many colliding archive rows of %s are exact duplicates: they are staged and only the others written.",
            source.label,
        )
        written = 0
        if colliding < counts["tc_msgarchive"]:
            written += stream(
                "tc_msgarchive",
                q.archive_select(dialect, moves, part="others"),
                q.table_columns(q.TC_MSGARCHIVE, dialect),
            )
        stream(
            "tc_msgarchive",
            q.archive_select(dialect, moves, part="colliding"),
            q.table_columns(q.TC_MSGARCHIVE, dialect, q.STAGE_ARCHIVE),
        )
        destination.analyze(q.STAGE_ARCHIVE)
        inserted = destination.insert_staged_archive(moves)
        written += inserted
        duplicates = colliding - inserted
    else:
        written = stream("tc_msgarchive", q.archive_select(dialect, moves), q.table_columns(q.TC_MSGARCHIVE, dialect))
        duplicates = destination.delete_moved_duplicates(moves) if runs else 0
        written -= duplicates
    if colliding:
        logger.info(
            "%s archive ids of %s collide with the destination's: %s rows were moved, %s exact duplicates dropped.",
            colliding,
            source.label,
            colliding - duplicates,
            duplicates,
        )
    figures.written += written
    figures.ids_remapped += colliding - duplicates
    for lo, hi, shift, rows in runs:
        if len(report.moved_ids) == REPORT_RUNS:
            note = f"Only the first {REPORT_RUNS} runs of moved archive ids are listed."
            if note not in report.notes:
                report.notes.append(note)
            break
        report.moved_ids.append(MovedIds(source.label, lo, hi, lo + shift, hi + shift, rows))
    figures.duplicates_removed += duplicates


def _duplicate_share(
    destination: DestinationSide, source: SourceSide, colliding: int, every_id: tuple[int, int] | None
) -> float:
    """The share of exact duplicates among about DUPLICATE_SAMPLE of the colliding archive rows
    (compared in Python, all columns but the id): only chooses how the rows are merged."""
    sample = q.sample_colliding_ids(max(1, colliding // DUPLICATE_SAMPLE), within=every_id)
    ids = [row[0] for row in destination.query(sample.text, sample.params)]
    if not ids:
        return 0.0
    select = q.archive_rows_select(destination.dialect)
    incoming = {row[0]: row[1:] for row in source.query(q.Statement(select.text, {"ids": ids}))}
    held = {row[0]: row[1:] for row in destination.query(select.text, {"ids": ids})}
    same = sum(1 for msg_id, row in incoming.items() if held.get(msg_id) == row)
    share = same / len(ids)
    logger.info("%s of %s sampled colliding archive rows of %s are exact duplicates.", same, len(ids), source.label)
    return share


def _colliding_runs(
    destination: DestinationSide, source: SourceSide, transport: Transport, counts: dict
) -> tuple[list[tuple[int, int, int, int]], tuple[int, int] | None]:
    """(lo, hi, shift, rows) of each run of incoming archive ids already used in the destination;
    and (low, high) when the source holds every id from its lowest to its highest, None when its
    ids were staged to be compared."""
    low, high = counts["archive_range"]
    if not counts["tc_msgarchive"]:
        return [], None
    dialect = destination.dialect
    d_low, d_high = destination.query("SELECT MIN(msg_id), MAX(msg_id) FROM tc_msgarchive")[0]
    if d_low is None or high < d_low or low > d_high:
        return [], None
    every_id = None
    if counts["tc_msgarchive"] == high - low + 1:
        # Ids handed out by the sequence, none deleted (msg_id is the archive's key): every id
        # the destination holds in that range collides, and its runs of consecutive ids there
        # are the runs; no id of the source needs to be staged and compared.
        every_id = (low, high)
        held = destination.query(q.archive_ids_held(dialect), {"low": low, "high": high})[0][0]
        if held == high - low + 1:
            runs = [(low, high, held)]
        else:
            runs = destination.query(q.archive_id_runs(dialect), {"low": low, "high": high}) if held else []
    else:
        transport.transfer(source, q.ids_select(dialect), q.ids_columns(dialect))
        destination.analyze(q.STAGE_IDS)
        runs = destination.query(q.COLLIDING_RUNS)
    if len(runs) > MAX_ID_RUNS:
        raise MergeError(
            f"The archive ids of {source.label} interleave with the destination's in {len(runs)} runs; "
            f"at most {MAX_ID_RUNS} can be remapped in one merge."
        )
    next_free = max(high, d_high) + 1
    result = []
    for lo, hi, rows in runs:
        result.append((lo, hi, next_free - lo, rows))
        next_free += hi - lo + 1
    return result, every_id


def _report_shared(destination: DestinationSide, source: SourceSide, shared: list[tuple], report: MergeReport) -> None:
    if not shared:
        return
    # Members and next id of every shared room, in one query (not two a room).
    details = {
        room: (members, next_id or 0)
        for room, members, next_id in destination.query(
            f"SELECT x.room_jid, (SELECT COUNT(*) FROM tc_users u WHERE u.room_jid = x.room_jid), "
            f"(SELECT t.next_msg_id FROM tc_rooms t WHERE t.room_jid = x.room_jid) FROM {q.STAGE_SHARED} x"
        )
    }
    incoming, existing = source.label, "destination so far"
    for room, renumber, _shift, latest, t_n, s_n, dups in shared[:REPORT_ROOMS]:
        members, next_id = details[room]
        # t_n and s_n count each side's own messages; a duplicate is kept once, in place.
        renumbered = s_n if renumber == "S" else t_n if renumber == "T" else 0
        report.shared_rooms.append(
            SharedRoom(
                room_jid=room,
                messages_kept_ids=t_n + s_n + dups - renumbered,
                messages_renumbered=renumbered,
                renumbered_side={"S": incoming, "T": existing}.get(renumber, "none"),
                fields_from=incoming if latest == "S" else existing,
                members=members,
                next_msg_id=next_id,
            )
        )
    if len(shared) > REPORT_ROOMS:
        report.notes.append(f"{len(shared)} rooms of {source.label} were merged with rooms of the same name.")
