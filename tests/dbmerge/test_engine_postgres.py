"""The PostgreSQL merge engine against real databases: the DESIGN.md merge rules, row by row."""

from __future__ import annotations

import datetime as dt
import logging
from contextlib import contextmanager

import pytest

from dbmerge.engines import AlreadyMerged, MergeCancelled, MergeError, MergeHooks, plan
from dbmerge.engines import postgres as engine
from dbmerge.engines.base import NO_LONGER_OURS
from tests.dbmerge.conftest import T0, fill_generated

LOBBY = "lobby@conf.example.com"
LONG_BODY = "Grüße 🌍 " * 600  # well over 4000 characters


@contextmanager
def sources_unchanged(*sources):
    """Sources are only read: every row of every tc_* table (and xcp_sequence) of each is
    the same after the block as before it."""
    before = {source.name: source.rows() for source in sources}
    yield
    for source in sources:
        assert source.rows() == before[source.name], f"{source.name} was changed by the merge"


def fill_nulls_and_unicode(a, b):
    """Rows with NULL in every nullable column (only tc_msgarchive has any), Unicode in every
    text column and bodies over 4000 characters, in both sources, archive ids colliding."""
    a.room("ünïcode@conf.example.com", creator="ÿves@example.com", subject="Ünïcödé ✓", next_msg_id=2)
    a.message("ünïcode@conf.example.com", 1, 0, LONG_BODY)
    a.member("ünïcode@conf.example.com", "zoë@example.com", reason="причина")
    a.archive(200, body=None)  # body_string, message_string, body_text, message_text, subject: NULL
    a.archive(201, body="x", body_text=LONG_BODY, message_text="<m>" + LONG_BODY + "</m>", subject="Тема 主题")
    b.archive(200, room="ünïcode@conf.example.com", sender="ÿves@example.com", body="日本語のメッセージ")
    b.archive(202, body=None, subject="只有主题")
    b.timelog("zoë@example.com", "E", 9)


def fill_two_sources(a, b):
    """Two per-node databases: a room in both, colliding archive ids, members in both."""
    a.room(LOBBY, subject="from A", next_msg_id=4)
    b.room(LOBBY, subject="from B", next_msg_id=3)
    a.room("a-only@conf.example.com", subject="A only", kind="ad-hoc")
    b.room("b-only@conf.example.com", subject="B only")
    for i in (1, 2, 3):
        a.message(LOBBY, i, i, f"A says {i}")
    for i in (1, 2):
        b.message(LOBBY, i, 30 + i, f"B says {i}")  # B's room saw the latest message
    a.member(LOBBY, "alice@example.com", role="moderator")
    b.member(LOBBY, "alice@example.com", role="participant")
    b.member(LOBBY, "bob@example.com")
    for i in (1, 2, 3, 4):
        a.archive(i, body=f"a{i}")
    for i in (3, 4, 5, 6):
        b.archive(i, body=f"b{i}", sender="bob@example.com")
    a.sequence(5)
    b.sequence(7)
    a.timelog("alice@example.com", "E", 1)
    b.timelog("bob@example.com", "E", 2)
    b.timelog("bob@example.com", "L", 3)


def test_merge_into_empty_destination_holds_the_union_with_colliding_ids_moved(chat_db):
    a, b, target = chat_db(), chat_db(), chat_db()
    fill_two_sources(a, b)

    with sources_unchanged(a, b):
        report = engine.merge(target.engine, [a.engine, b.engine], hooks=MergeHooks(), job_id=41)

    rows = target.rows()
    assert [(r[0], r[2], r[3], r[6], r[7]) for r in rows["tc_rooms"]] == [
        ("a-only@conf.example.com", "A only", "ad-hoc", 1, 1),
        ("b-only@conf.example.com", "B only", "persistent", 1, 1),
        # B's room saw the latest message: its fields win; next_msg_id past the largest id.
        (LOBBY, "from B", "persistent", 1, 6),
    ]
    # A has more messages, so B's are renumbered after A's within the room.
    assert [(r[0], r[3]) for r in rows["tc_messages"]] == [
        (1, "A says 1"),
        (2, "A says 2"),
        (3, "A says 3"),
        (4, "B says 1"),
        (5, "B says 2"),
    ]
    # Members: the union; alice is in both and keeps the row of B (latest message).
    assert [(r[1], r[2]) for r in rows["tc_users"]] == [
        ("alice@example.com", "participant"),
        ("bob@example.com", "participant"),
    ]
    # Archive: A's ids kept; B's 3 and 4 collide and move past the largest id (6); 5, 6 kept.
    assert [(r[0], r[8]) for r in rows["tc_msgarchive"]] == [
        (1, "a1"),
        (2, "a2"),
        (3, "a3"),
        (4, "a4"),
        (5, "b5"),
        (6, "b6"),
        (7, "b3"),
        (8, "b4"),
    ]
    assert rows["xcp_sequence"] == [("tc_message_id", 9)]
    assert len(rows["tc_timelog"]) == 3

    assert report.tables["tc_msgarchive"].ids_remapped == 2
    assert report.tables["tc_users"].duplicates_removed == 1
    assert [
        (room.room_jid, room.messages_renumbered, room.members, room.next_msg_id) for room in report.shared_rooms
    ] == [(LOBBY, 2, 2, 6)]
    assert report.shared_rooms[0].fields_from == b.name


def test_destination_that_is_a_source_keeps_its_rows_and_gains_the_other(chat_db):
    a, b = chat_db(), chat_db()
    fill_two_sources(a, b)

    with sources_unchanged(b):
        report = engine.merge(a.engine, [a.engine, b.engine])

    rows = a.rows()
    assert [r[0] for r in rows["tc_msgarchive"]] == [1, 2, 3, 4, 5, 6, 7, 8]
    assert [(r[0], r[3]) for r in rows["tc_messages"]][-2:] == [(4, "B says 1"), (5, "B says 2")]
    assert len(rows["tc_rooms"]) == 3
    assert any("The destination is" in note for note in report.notes)


def test_destination_with_rooms_of_its_own_keeps_them_and_renumbers_the_smaller_side(chat_db):
    a, b, target = chat_db(), chat_db(), chat_db()
    fill_two_sources(a, b)
    target.room(LOBBY, subject="from target", next_msg_id=2)
    target.message(LOBBY, 1, 0, "target says 1")
    target.archive(1, body="t1")

    with sources_unchanged(a, b):
        engine.merge(target.engine, [a.engine, b.engine])

    rows = target.rows()
    # target (1 message) < A (3): the target's message is renumbered after A's; then B (2 < 4) after those.
    assert [(r[0], r[3]) for r in rows["tc_messages"]] == [
        (1, "A says 1"),
        (2, "A says 2"),
        (3, "A says 3"),
        (4, "target says 1"),
        (5, "B says 1"),
        (6, "B says 2"),
    ]
    assert sorted(r[8] for r in rows["tc_msgarchive"]) == sorted(["t1", "a1", "a2", "a3", "a4", "b3", "b4", "b5", "b6"])
    assert len({r[0] for r in rows["tc_msgarchive"]}) == 9
    assert rows["xcp_sequence"][0][1] > max(r[0] for r in rows["tc_msgarchive"])


def test_unicode_long_bodies_and_nulls_in_every_nullable_column_arrive_unchanged(chat_db):
    a, b, target = chat_db(), chat_db(), chat_db()
    fill_nulls_and_unicode(a, b)
    lobby = f"{LOBBY}/alice"

    with sources_unchanged(a, b):
        engine.merge(target.engine, [a.engine, b.engine])

    rows = target.rows()

    def at(**delta):
        return T0 + dt.timedelta(**delta)

    assert rows["tc_msgarchive"] == [
        # msg_id, to_jid, from_jid, nick_jid, sent_date, msg_type, body_len, message_len,
        # body_string, message_string, body_text, message_text, subject
        (200, LOBBY, "alice@example.com", lobby, at(seconds=200), "g", 0, 40, None, None, None, None, None),
        (201, LOBBY, "alice@example.com", lobby, at(seconds=201), "g", 1, 41, "x", "<message>x</message>",
         LONG_BODY, "<m>" + LONG_BODY + "</m>", "Тема 主题"),
        (202, LOBBY, "alice@example.com", lobby, at(seconds=202), "g", 0, 40, None, None, None, None, "只有主题"),
        # B's 200 collided with A's and moved past the largest id in use (202).
        (203, "ünïcode@conf.example.com", "ÿves@example.com", "ünïcode@conf.example.com/ÿves", at(seconds=200),
         "g", 9, 49, "日本語のメッセージ", "<message>日本語のメッセージ</message>", None, None, None),
    ]  # fmt: skip
    assert rows["tc_messages"] == [(1, "ünïcode@conf.example.com", T0, LONG_BODY)]
    assert rows["tc_rooms"] == [
        ("ünïcode@conf.example.com", "ÿves@example.com", "Ünïcödé ✓", "persistent", "<x>Ünïcödé ✓</x>",
         "<s>Ünïcödé ✓</s>", 1, 2),
    ]  # fmt: skip
    assert rows["tc_users"] == [
        ("ünïcode@conf.example.com", "zoë@example.com", "participant", "member", "ünïcode@conf.example.com/zoë",
         "причина", "admin@example.com"),
    ]  # fmt: skip
    assert rows["tc_timelog"] == [("zoë@example.com", f"{LOBBY}/zoë", "E", at(minutes=9))]
    assert rows["xcp_sequence"] == [("tc_message_id", 204)]


def test_copy_and_dblink_methods_give_identical_destinations(chat_db):
    a, b, by_copy, by_dblink = chat_db(), chat_db(), chat_db(), chat_db()
    fill_two_sources(a, b)
    fill_nulls_and_unicode(a, b)
    a.archive(100, body="long", body_text=LONG_BODY)
    by_dblink.execute("CREATE EXTENSION dblink")

    with sources_unchanged(a, b):
        copy_report = engine.merge(by_copy.engine, [a.engine, b.engine], method="copy")
        dblink_report = engine.merge(by_dblink.engine, [a.engine, b.engine], method="dblink")

    rows = by_copy.rows()
    assert rows == by_dblink.rows()
    # What the comparison covers: NULLs, Unicode and long bodies arrived by both methods.
    archive = {r[0]: r for r in rows["tc_msgarchive"]}
    assert archive[200][8:] == (None, None, None, None, None)
    assert archive[201][10:] == (LONG_BODY, "<m>" + LONG_BODY + "</m>", "Тема 主题")
    assert [r[3] for r in rows["tc_messages"] if r[1] == "ünïcode@conf.example.com"] == [LONG_BODY]
    assert "日本語のメッセージ" in {r[8] for r in rows["tc_msgarchive"]}
    assert copy_report.tables == dblink_report.tables
    assert dblink_report.method == "dblink"


def test_the_same_merge_cannot_be_applied_twice(chat_db):
    a, b, target = chat_db(), chat_db(), chat_db()
    fill_two_sources(a, b)
    engine.merge(target.engine, [a.engine, b.engine], job_id=5)
    after_first = target.rows()

    refused = r"already holds the merge of these two sources \(job 5, "
    with sources_unchanged(a, b), pytest.raises(AlreadyMerged, match=refused):
        engine.merge(target.engine, [b.engine, a.engine], job_id=6)
    assert target.rows() == after_first


def test_cancelling_mid_merge_leaves_the_destination_untouched(chat_db):
    a, b, target = chat_db(), chat_db(), chat_db()
    fill_two_sources(a, b)
    target.room("keep@conf.example.com")
    before = target.rows()
    seen = []
    hooks = MergeHooks(
        progress=lambda table, done, total: seen.append(table), should_cancel=lambda: "tc_messages" in seen
    )
    hooks.poll_seconds = 0

    with sources_unchanged(a, b), pytest.raises(MergeCancelled, match="the destination was left as it was"):
        engine.merge(target.engine, [a.engine, b.engine], hooks=hooks)
    assert target.rows() == before
    assert not has_merge_record(target)


def has_merge_record(database) -> bool:
    with database.factory.connect(database.name) as conn:
        return conn.execute("SELECT to_regclass('imp_merge_record')").fetchone()[0] is not None


@pytest.mark.parametrize("method", ["copy", "dblink"])
def test_a_merge_whose_job_was_given_up_is_not_committed_and_the_destination_stays_as_it_was(chat_db, method):
    a, b = chat_db(), chat_db()
    target = destination_for(chat_db, method)
    fill_two_sources(a, b)
    target.room("keep@conf.example.com")
    before = target.rows()
    asked = []

    def still_ours() -> bool:  # as the runner answers once the stale job check failed the job
        asked.append(True)
        return False

    with sources_unchanged(a, b), pytest.raises(MergeError) as raised:
        engine.merge(target.engine, [a.engine, b.engine], method=method, hooks=MergeHooks(still_ours=still_ours))
    assert str(raised.value) == NO_LONGER_OURS
    assert asked == [True]  # asked once, after every step, just before the commit
    assert target.rows() == before
    assert not has_merge_record(target)


def test_two_names_for_one_database_are_refused(chat_db):
    a, target = chat_db(), chat_db()
    same = engine.PostgresDatabase("the same, by another name", {**a.engine.conninfo, "host": "localhost"})
    with pytest.raises(MergeError, match="are the same database; choose two different sources"):
        engine.merge(target.engine, [a.engine, same])


def test_destination_without_tc_tables_gets_the_schema_installed(chat_db):
    a, b = chat_db(), chat_db()
    fill_two_sources(a, b)
    empty = chat_db(schema=False)

    with sources_unchanged(a, b):
        report = engine.merge(empty.engine, [a.engine, b.engine])

    assert len(empty.rows()["tc_msgarchive"]) == 8
    assert report.notes[0] == f"{empty.name} held no TC tables; the TC schema was installed in it."


def test_progress_reports_every_table_up_to_its_total(chat_db):
    a, b, target = chat_db(), chat_db(), chat_db()
    fill_two_sources(a, b)
    last = {}
    engine.merge(
        target.engine, [a.engine, b.engine], hooks=MergeHooks(progress=lambda t, d, n: last.update({t: (d, n)}))
    )
    assert last == {
        "tc_rooms": (4, 4),
        "tc_users": (3, 3),
        "tc_messages": (5, 5),
        "tc_msgarchive": (8, 8),
        "tc_timelog": (3, 3),
    }


def test_interleaved_archive_ids_move_each_colliding_run_past_the_largest(chat_db):
    a, b, target = chat_db(), chat_db(), chat_db()
    for i in (1, 3, 5, 7):
        a.archive(i, body=f"a{i}")
    for i in (2, 3, 4, 5, 10):
        b.archive(i, body=f"b{i}")

    with sources_unchanged(a, b):
        report = engine.merge(target.engine, [a.engine, b.engine])

    archive = {r[8]: r[0] for r in target.rows()["tc_msgarchive"]}
    assert archive == {"a1": 1, "a3": 3, "a5": 5, "a7": 7, "b2": 2, "b4": 4, "b10": 10, "b3": 11, "b5": 12}
    assert report.tables["tc_msgarchive"].ids_remapped == 2
    assert target.rows()["xcp_sequence"] == [("tc_message_id", 13)]


def test_a_source_holding_every_id_of_its_range_moves_the_runs_the_destination_holds_in_it(chat_db):
    """b's ids are 2 to 7 without a gap, so its ids are not staged: the runs are those of the
    destination's ids between 2 and 7 (3, then 5 and 6), the same as comparing every id."""
    a, b, target = chat_db(), chat_db(), chat_db()
    for i in (1, 3, 5, 6, 9):
        a.archive(i, body=f"a{i}")
    for i in range(2, 8):
        b.archive(i, body=f"b{i}")

    report = engine.merge(target.engine, [a.engine, b.engine])

    archive = {r[8]: r[0] for r in target.rows()["tc_msgarchive"]}
    assert archive == {
        **{f"a{i}": i for i in (1, 3, 5, 6, 9)},
        **{"b2": 2, "b4": 4, "b7": 7, "b3": 10, "b5": 11, "b6": 12},
    }
    assert [(m.low, m.high, m.to_low, m.to_high, m.rows) for m in report.moved_ids] == [
        (3, 3, 10, 10, 1),
        (5, 6, 11, 12, 2),
    ]
    assert report.tables["tc_msgarchive"].ids_remapped == 3


# --- Exact duplicates: a row identical in every column (NULLs equal) is kept once -----------


def destination_for(chat_db, method: str):
    target = chat_db()
    if method == "dblink":
        target.execute("CREATE EXTENSION dblink")
    return target


# Colliding archive rows take one of two ways, by the share of duplicates in a sample (both
# must give the same rows): staged, and only those that are not duplicates inserted; or
# streamed into place, and the duplicates deleted after.
ARCHIVE_WAYS = {"staged": 0.0, "streamed": 2.0}


@pytest.mark.parametrize("way", ARCHIVE_WAYS)
@pytest.mark.parametrize("method", ["copy", "dblink"])
def test_an_archive_row_identical_in_both_sources_is_kept_once_and_counted_as_a_duplicate(
    chat_db, method, way, monkeypatch
):
    monkeypatch.setattr(plan, "STAGE_DUPLICATE_SHARE", ARCHIVE_WAYS[way])
    a, b = chat_db(), chat_db()
    target = destination_for(chat_db, method)
    a.archive(1, body="a1")
    a.archive(2, body="same in both")
    a.archive(3, body="a3")
    a.archive(4, body=None)  # body_string, message_string, body_text, message_text, subject all NULL
    b.archive(2, body="same in both")
    b.archive(3, body="b3")  # same id, different row: kept, id moved
    b.archive(4, body=None)
    b.archive(5, body="b5")

    with sources_unchanged(a, b):
        report = engine.merge(target.engine, [a.engine, b.engine], method=method)

    assert [(r[0], r[8]) for r in target.rows()["tc_msgarchive"]] == [
        (1, "a1"),
        (2, "same in both"),
        (3, "a3"),
        (4, None),
        (5, "b5"),
        (7, "b3"),  # B's 2, 3, 4 collided and were moved to 6, 7, 8; the identical 6 and 8 dropped
    ]
    figures = report.tables["tc_msgarchive"]
    assert (figures.read, figures.written, figures.duplicates_removed, figures.ids_remapped) == (8, 6, 2, 1)
    assert target.rows()["xcp_sequence"] == [("tc_message_id", 8)]


@pytest.mark.parametrize(("offset", "staged"), [(0, True), (60, False)])
def test_colliding_archive_rows_that_are_mostly_duplicates_are_staged_and_never_written(
    chat_db, caplog, offset, staged
):
    """b repeats a's archive (offset 0: every colliding row is an exact duplicate) or holds
    rows of its own under the same ids (offset 60: sent a minute later, none is)."""
    a, b, target = chat_db(), chat_db(), chat_db()
    fill_generated(a, 3000, rooms=7)
    fill_generated(b, 3000, rooms=7, offset=offset)

    with caplog.at_level(logging.INFO, logger="dbmerge.engine"):
        report = engine.merge(target.engine, [a.engine, b.engine])

    messages = [record.getMessage() for record in caplog.records]
    sampled = [m for m in messages if m.endswith(f"sampled colliding archive rows of {b.name} are exact duplicates.")]
    same, _, total = sampled[0].split()[:3]
    assert int(total) > 100 and int(same) == (int(total) if staged else 0)
    assert (
        f"Many colliding archive rows of {b.name} are exact duplicates: they are staged and only the others written."
        in messages
    ) is staged
    figures = report.tables["tc_msgarchive"]
    duplicates = 3000 if staged else 0
    assert (figures.written, figures.duplicates_removed, figures.ids_remapped) == (
        6000 - duplicates,
        duplicates,
        3000 - duplicates,
    )
    assert len(target.rows()["tc_msgarchive"]) == 6000 - duplicates

    # A duplicate is never written to be deleted again: the destination's archive takes no
    # more pages than the 3000 rows of a, as a holds them (written and deleted, b's would double it).
    pages = {}
    for side in (a, target):
        with side.factory.connect(side.name) as conn:
            pages[side] = conn.execute("SELECT pg_relation_size('tc_msgarchive') / 8192").fetchone()[0]
    assert pages[target] <= pages[a] + 1 if staged else pages[target] >= 2 * pages[a] - 1


@pytest.mark.parametrize("keyed", [True, False], ids=["archive-keyed", "archive-without-key"])
def test_staged_archive_rows_are_compared_by_key_or_without_one_alike(chat_db, keyed):
    """The staged rows are looked up by msg_id where the destination's archive has an index on
    it, and joined by hash where it has none: the same rows either way."""
    a, b, target = chat_db(), chat_db(), chat_db()
    fill_generated(a, 3000, rooms=7)
    fill_generated(b, 3000, rooms=7)
    fill_generated(target, 1000, rooms=7, offset=60)
    if not keyed:
        target.execute("ALTER TABLE tc_msgarchive DROP CONSTRAINT tc_msgarchive_pkey")

    report = engine.merge(target.engine, [a.engine, b.engine])

    figures = report.tables["tc_msgarchive"]
    # a's 1 to 1000 collide with the target's own rows (a minute apart: none identical) and
    # move. b repeats a: its 1001 to 3000 are exact duplicates of a's rows at their ids, staged
    # and dropped; its 1 to 1000 differ from the target's rows at theirs and move.
    assert (figures.written, figures.duplicates_removed, figures.ids_remapped) == (4000, 2000, 2000)
    archive = target.rows()["tc_msgarchive"]
    assert len(archive) == len({row[0] for row in archive}) == 5000


@pytest.mark.parametrize("method", ["copy", "dblink"])
def test_identical_room_messages_are_kept_once_and_only_the_others_renumbered(chat_db, method):
    a, b = chat_db(), chat_db()
    target = destination_for(chat_db, method)
    for side in (a, b):
        side.room(LOBBY, next_msg_id=3)
        side.message(LOBBY, 1, 1, "said before the copy 1")
        side.message(LOBBY, 2, 2, "said before the copy 2")
    a.message(LOBBY, 3, 3, "A says 3")
    a.message(LOBBY, 4, 4, "A says 4")
    b.message(LOBBY, 3, 5, "B says 3")

    with sources_unchanged(a, b):
        report = engine.merge(target.engine, [a.engine, b.engine], method=method)

    assert [(r[0], r[3]) for r in target.rows()["tc_messages"]] == [
        (1, "said before the copy 1"),
        (2, "said before the copy 2"),
        (3, "A says 3"),
        (4, "A says 4"),
        (5, "B says 3"),  # B has fewer messages of its own: renumbered after A's
    ]
    figures = report.tables["tc_messages"]
    assert (figures.read, figures.written, figures.duplicates_removed, figures.ids_remapped) == (7, 5, 2, 1)
    room = report.shared_rooms[0]
    assert (room.messages_kept_ids, room.messages_renumbered, room.renumbered_side, room.next_msg_id) == (
        4,
        1,
        b.name,
        6,
    )


def test_when_the_destination_side_is_renumbered_its_messages_identical_to_the_incoming_stay_in_place(chat_db):
    a, b, target = chat_db(), chat_db(), chat_db()
    for side in (a, b):
        side.message(LOBBY, 1, 1, "said before the copy 1")
        side.message(LOBBY, 2, 2, "said before the copy 2")
    a.message(LOBBY, 3, 3, "A says 3")
    b.message(LOBBY, 3, 5, "B says 3")
    b.message(LOBBY, 4, 6, "B says 4")

    with sources_unchanged(a, b):
        report = engine.merge(target.engine, [a.engine, b.engine])

    assert [(r[0], r[3]) for r in target.rows()["tc_messages"]] == [
        (1, "said before the copy 1"),
        (2, "said before the copy 2"),
        (3, "B says 3"),
        (4, "B says 4"),
        (5, "A says 3"),  # A (already in the destination) has fewer of its own: renumbered after B's
    ]
    figures = report.tables["tc_messages"]
    assert (figures.written, figures.duplicates_removed, figures.ids_remapped) == (5, 2, 1)
    assert report.shared_rooms[0].renumbered_side == "destination so far"


def test_a_room_whose_incoming_messages_are_all_duplicates_gains_none_beside_a_room_without_any(chat_db):
    a, b, target = chat_db(), chat_db(), chat_db()
    other = "other@conf.example.com"
    for side in (a, b):
        side.message(LOBBY, 1, 1, "said before the copy 1")
        side.message(LOBBY, 2, 2, "said before the copy 2")
    for i in (1, 2, 3):
        a.message(other, i, i, f"A says {i}")
    b.message(other, 1, 9, "B says 1")

    report = engine.merge(target.engine, [a.engine, b.engine])

    messages = target.rows()["tc_messages"]
    assert [(r[0], r[3]) for r in messages if r[1] == LOBBY] == [
        (1, "said before the copy 1"),
        (2, "said before the copy 2"),
    ]
    assert [(r[0], r[3]) for r in messages if r[1] == other] == [
        (1, "A says 1"),
        (2, "A says 2"),
        (3, "A says 3"),
        (4, "B says 1"),  # B's only message, renumbered after A's
    ]
    figures = report.tables["tc_messages"]
    assert (figures.read, figures.written, figures.duplicates_removed, figures.ids_remapped) == (8, 6, 2, 1)
    rooms = {room.room_jid: room for room in report.shared_rooms}
    assert (rooms[LOBBY].messages_kept_ids, rooms[LOBBY].messages_renumbered, rooms[LOBBY].renumbered_side) == (
        2,
        0,
        "none",
    )
    assert (rooms[other].messages_kept_ids, rooms[other].messages_renumbered, rooms[other].renumbered_side) == (
        3,
        1,
        b.name,
    )


@pytest.mark.parametrize("way", ARCHIVE_WAYS)
def test_destination_that_is_a_source_merged_with_an_overlapping_copy_of_itself_holds_every_row_once(
    chat_db, way, monkeypatch
):
    monkeypatch.setattr(plan, "STAGE_DUPLICATE_SHARE", ARCHIVE_WAYS[way])
    a, b = chat_db(), chat_db()
    for side in (a, b):  # B started as a copy of A
        side.room(LOBBY, subject="lobby", next_msg_id=3)
        side.member(LOBBY, "alice@example.com", role="moderator")
        side.message(LOBBY, 1, 1, "first")
        side.message(LOBBY, 2, 2, "second")
        side.archive(1, body="first")
        side.archive(2, body="second")
    b.member(LOBBY, "bob@example.com")
    b.message(LOBBY, 3, 3, "only in B")
    b.archive(3, body="only in B")

    with sources_unchanged(b):
        report = engine.merge(a.engine, [a.engine, b.engine])

    rows = a.rows()
    assert [(r[0], r[1], r[2]) for r in rows["tc_users"]] == [
        (LOBBY, "alice@example.com", "moderator"),
        (LOBBY, "bob@example.com", "participant"),
    ]
    assert [(r[0], r[3]) for r in rows["tc_messages"]] == [(1, "first"), (2, "second"), (3, "only in B")]
    assert [(r[0], r[8]) for r in rows["tc_msgarchive"]] == [(1, "first"), (2, "second"), (3, "only in B")]
    assert [r[0] for r in rows["tc_rooms"]] == [LOBBY]
    assert rows["xcp_sequence"] == [("tc_message_id", 4)]
    assert {name: report.tables[name].duplicates_removed for name in ("tc_users", "tc_messages", "tc_msgarchive")} == {
        "tc_users": 1,
        "tc_messages": 2,
        "tc_msgarchive": 2,
    }


def test_a_member_row_held_twice_by_a_source_without_primary_keys_becomes_one_member(chat_db):
    a, b, target = chat_db(), chat_db(), chat_db()
    a.execute("ALTER TABLE tc_users DROP CONSTRAINT tc_users_pkey")  # Cisco documents no keys
    a.member(LOBBY, "alice@example.com")
    a.member(LOBBY, "alice@example.com")
    b.member(LOBBY, "bob@example.com")

    with sources_unchanged(a, b):
        report = engine.merge(target.engine, [a.engine, b.engine])

    assert [r[1] for r in target.rows()["tc_users"]] == ["alice@example.com", "bob@example.com"]
    figures = report.tables["tc_users"]
    assert (figures.read, figures.written, figures.duplicates_removed) == (3, 2, 1)


def test_every_room_message_keeps_its_xmpp_stanza_id_through_a_merge_that_renumbers_it(chat_db):
    """The chat service's XEP-0359 stanza-id is made of room, stamp and stored stanza
    (``stanza_id_for``, notes of the XMPP work): the merge must copy them verbatim, whatever
    it does to msg_id."""
    from messaging.tc.stanzas import stanza_id_for

    a, b, target = chat_db(), chat_db(), chat_db()
    fill_two_sources(a, b)
    b.message(LOBBY, 3, 40, "<message><body>Grüße 🌍 with µs</body></message>")
    b.execute("UPDATE tc_messages SET stamp = stamp + interval '123456 microseconds' WHERE msg_id = 3")

    def ids(database) -> list[str]:
        return sorted(stanza_id_for(room, stamp, msg) for _id, room, stamp, msg in database.rows()["tc_messages"])

    expected = sorted(ids(a) + ids(b))
    report = engine.merge(target.engine, [a.engine, b.engine])

    assert report.tables["tc_messages"].ids_remapped > 0  # some msg_id did change
    assert ids(target) == expected
