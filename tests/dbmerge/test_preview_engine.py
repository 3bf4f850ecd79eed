"""Merge preview in the PostgreSQL engine: the same merge, on temporary copies of the
destination in a read-only transaction, rolled back. Its report must equal the report of the
real merge that follows, and it must write nothing anywhere."""

from __future__ import annotations

from dataclasses import asdict

import psycopg
import pytest

from dbmerge.engines import postgres as engine
from tests.dbmerge.conftest import fill_generated
from tests.dbmerge.test_engine_postgres import LOBBY, fill_two_sources, has_merge_record, sources_unchanged

# Figures that differ by nature between a preview and the merge after it.
NOT_FIGURES = ("seconds", "preview")


def figures(report) -> dict:
    data = asdict(report)
    for name in NOT_FIGURES:
        data.pop(name)
    return data


def preview_then_merge(target, sources) -> tuple[dict, dict]:
    before = target.rows()
    with sources_unchanged(*[s for s in sources if s is not target]):
        preview = engine.merge(target.engine, [s.engine for s in sources], preview=True)
        assert preview.preview
        assert target.rows() == before, "the preview wrote into the destination"
        report = engine.merge(target.engine, [s.engine for s in sources])
    assert not report.preview
    return figures(preview), figures(report)


def test_preview_into_an_empty_destination_reports_what_the_merge_then_does(chat_db):
    a, b, target = chat_db(), chat_db(), chat_db()
    fill_two_sources(a, b)

    preview, report = preview_then_merge(target, [a, b])

    assert preview == report
    assert report["moved_ids"] == [
        {"source": b.name, "low": 3, "high": 4, "to_low": 7, "to_high": 8, "rows": 2},
    ]
    assert [room["room_jid"] for room in report["shared_rooms"]] == [LOBBY]
    assert report["destination_rows"]["tc_msgarchive"] == 0


def test_preview_into_a_destination_holding_a_merged_history_with_duplicates_matches_the_merge(chat_db):
    a, b, c, d, target = (chat_db() for _ in range(5))
    fill_generated(a, 3000, rooms=7)
    fill_generated(b, 3000, rooms=7, offset=3000)
    engine.merge(target.engine, [a.engine, b.engine])
    # Two more per-node databases: c repeats a's history (exact duplicates), d has its own.
    fill_generated(c, 3000, rooms=7)
    fill_generated(d, 2000, rooms=9, offset=9000)

    preview, report = preview_then_merge(target, [c, d])

    assert preview == report
    assert report["tables"]["tc_msgarchive"]["duplicates_removed"] == 3000
    assert report["tables"]["tc_messages"]["duplicates_removed"] == 1500
    assert report["destination_rows"]["tc_msgarchive"] == 6000
    assert report["moved_ids"] and report["shared_rooms"]


def test_preview_where_the_destination_is_a_source_matches_the_merge(chat_db):
    a, b = chat_db(), chat_db()
    fill_two_sources(a, b)

    preview, report = preview_then_merge(a, [a, b])

    assert preview == report
    assert report["tables"]["tc_msgarchive"]["written"] == 4


def test_preview_of_a_destination_without_tc_tables_installs_nothing(chat_db):
    a, b, target = chat_db(), chat_db(), chat_db(schema=False)
    fill_two_sources(a, b)

    report = engine.merge(target.engine, [a.engine, b.engine], preview=True)

    assert report.tables["tc_msgarchive"].written == 8
    with target.factory.connect(target.name) as conn:
        assert conn.execute("SELECT to_regclass('tc_rooms')").fetchone()[0] is None
    assert not has_merge_record(target)


def test_the_server_refuses_a_write_to_a_real_table_during_a_preview(chat_db):
    """The read-only transaction is the guarantee, not the care of the code: a write that
    escaped the temporary copies would fail."""
    target = chat_db()
    destination = engine.PreviewDestination(target.engine)
    try:
        destination.prepare()
        destination.execute("INSERT INTO tc_timelog VALUES ('x@example.com', 'n', 'E', now())")  # the copy
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            destination.execute("INSERT INTO public.tc_timelog VALUES ('x@example.com', 'n', 'E', now())")
    finally:
        destination.conn.close()
    assert target.rows()["tc_timelog"] == []
