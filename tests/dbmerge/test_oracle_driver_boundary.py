# ruff: noqa: S608 -- expected SQL text of the builder, compared as strings.
"""The Oracle engine at the python-oracledb driver boundary.

No Oracle server can run here, so these tests replace the *connection* with a recorder and
check what the engine asks of the driver: array fetch in batches, executemany per batch,
SQL from the shared builder. This is the only mock in the merge suites.
"""

from __future__ import annotations

from dbmerge.engines import oracle, sqlbuild
from dbmerge.engines.sqlbuild import Statement
from messaging.tc.schema import Dialect


class RecordingCursor:
    def __init__(self, rows=()):
        self.rows = list(rows)
        self.arraysize = 100
        self.calls = []

    def execute(self, text, params=None):
        self.calls.append(("execute", text, params))

    def fetchmany(self, size):
        self.calls.append(("fetchmany", size))
        batch, self.rows = self.rows[:size], self.rows[size:]
        return batch

    def executemany(self, text, rows):
        self.calls.append(("executemany", text, list(rows)))


class Side:
    def __init__(self, cursor):
        self.conn = self
        self._cursor = cursor
        self.label = "db"
        self.fingerprint = "x"

    def cursor(self):
        return self._cursor


def test_array_transport_fetches_and_inserts_in_batches_of_the_batch_size():
    rows = [(i, f"room{i}", None) for i in range(25)]
    read, write = RecordingCursor(rows), RecordingCursor()
    transport = oracle.ArrayTransport(Side(write), batch_rows=10)
    into = sqlbuild.StagedColumns("tc_x", (("a", "NUMBER(19)"), ("b", "VARCHAR2(10)"), ("c", "CLOB")))
    progress = []

    written = transport.transfer(Side(read), Statement("SELECT a, b, c FROM t", {}), into, progress.append)

    assert written == 25 and progress == [10, 20, 25]
    assert read.arraysize == 10 and read.prefetchrows == 11
    inserts = [call for call in write.calls if call[0] == "executemany"]
    assert [len(call[2]) for call in inserts] == [10, 10, 5]
    assert inserts[0][1] == "INSERT INTO tc_x (a, b, c) VALUES (:1, :2, :3)"
    assert [call[0] for call in read.calls] == ["execute", "fetchmany", "fetchmany", "fetchmany", "fetchmany"]


def test_oracle_archive_select_moves_colliding_runs_with_bind_variables_only():
    statement = sqlbuild.archive_select(Dialect.ORACLE, [(3, 4, 4), (9, 9, 2)])
    assert statement.text.startswith("SELECT s.msg_id + COALESCE(r.shift, 0), s.to_jid, ")
    assert "LEFT JOIN (SELECT :run_lo_0 AS lo, :run_hi_0 AS hi, :run_shift_0 AS shift FROM dual UNION ALL " in (
        statement.text
    )
    assert statement.params == {
        "run_lo_0": 3,
        "run_hi_0": 4,
        "run_shift_0": 4,
        "run_lo_1": 9,
        "run_hi_1": 9,
        "run_shift_1": 2,
    }


def test_oracle_drops_moved_archive_rows_identical_to_the_original_with_nulls_equal_and_clobs_by_dbms_lob():
    statement = sqlbuild.delete_moved_duplicates(Dialect.ORACLE, [(3, 4, 4)])
    assert statement.params == {"run_lo_0": 3, "run_hi_0": 4, "run_shift_0": 4}
    same = sqlbuild.same_row(Dialect.ORACLE, sqlbuild.TC_MSGARCHIVE, "o", "n", skip=("msg_id",))
    assert statement.text == (
        "DELETE FROM tc_msgarchive n WHERE EXISTS (SELECT 1 FROM "
        "(SELECT :run_lo_0 AS lo, :run_hi_0 AS hi, :run_shift_0 AS shift FROM dual) r "
        "JOIN tc_msgarchive o ON o.msg_id = n.msg_id - r.shift "
        f"WHERE n.msg_id BETWEEN r.lo + r.shift AND r.hi + r.shift AND {same})"
    )
    assert same.split(" AND ")[:2] == ["o.to_jid = n.to_jid", "o.from_jid = n.from_jid"]
    assert "o.msg_id" not in same
    assert "(o.body_string = n.body_string OR (o.body_string IS NULL AND n.body_string IS NULL))" in same
    assert "(DBMS_LOB.COMPARE(o.body_text, n.body_text) = 0 OR (o.body_text IS NULL AND n.body_text IS NULL))" in same
    assert "IS NOT DISTINCT FROM" not in same


def test_oracle_sets_apart_staged_room_messages_identical_to_the_destinations_comparing_the_clob_body():
    record, remove = sqlbuild.mark_duplicate_messages(Dialect.ORACLE)
    assert record == (
        "INSERT INTO imp_stage_dups (room_jid, msg_id) SELECT s.room_jid, s.msg_id FROM imp_stage_messages s "
        "WHERE EXISTS (SELECT 1 FROM tc_messages t "
        "WHERE t.msg_id = s.msg_id AND t.room_jid = s.room_jid AND t.stamp = s.stamp "
        "AND DBMS_LOB.COMPARE(t.msg, s.msg) = 0)"
    )
    assert remove == (
        "DELETE FROM imp_stage_messages s WHERE EXISTS "
        "(SELECT 1 FROM imp_stage_dups d WHERE d.room_jid = s.room_jid AND d.msg_id = s.msg_id)"
    )


def test_oracle_room_histories_are_split_by_binding_each_shared_room():
    rooms = ["lobby@conf.example.com", "ops@conf.example.com"]
    staged = sqlbuild.messages_select(Dialect.ORACLE, rooms, staged=True)
    straight = sqlbuild.messages_select(Dialect.ORACLE, rooms, staged=False)
    join = (
        "JOIN (SELECT :room_room_jid_0 AS room_jid FROM dual UNION ALL SELECT :room_room_jid_1 AS room_jid FROM dual) o"
    )
    assert (
        staged.text
        == f"SELECT s.msg_id, s.room_jid, s.stamp, s.msg FROM tc_messages s {join} ON o.room_jid = s.room_jid"
    )
    assert straight.text == (
        f"SELECT s.msg_id, s.room_jid, s.stamp, s.msg FROM tc_messages s LEFT {join} ON o.room_jid = s.room_jid "
        "WHERE o.room_jid IS NULL"
    )
    assert staged.params == {"room_room_jid_0": rooms[0], "room_room_jid_1": rooms[1]}


def test_oracle_member_merge_uses_merge_with_update_where_for_the_latest_side():
    text = sqlbuild.merge_users(Dialect.ORACLE)
    assert text.startswith("MERGE INTO tc_users t USING ")
    assert "WHEN MATCHED THEN UPDATE SET role = s.role" in text and "WHERE s.latest = 'S' WHEN NOT MATCHED" in text


def test_oracle_settings_come_from_the_external_database_entry(db):
    from messaging.models import ExternalDatabase

    entry = ExternalDatabase(
        database_name="TCMADB", db_type="oracle", username="tc", hostname="ora.example.com", port=1521
    )
    entry.set_password("secret")
    entry.save()
    settings = oracle.database_settings(entry)
    assert settings.params == {
        "user": "tc",
        "password": "secret",
        "host": "ora.example.com",
        "port": 1521,
        "service_name": "TCMADB",
    }
