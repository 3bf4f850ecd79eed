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


def test_oracle_archive_rows_in_the_overlap_are_staged_and_the_rest_streamed_with_bind_variables_only():
    staged = sqlbuild.archive_select(Dialect.ORACLE, (3, 9), staged=True)
    straight = sqlbuild.archive_select(Dialect.ORACLE, (3, 9), staged=False)
    assert staged.text.startswith("SELECT s.msg_id, s.to_jid, ")
    assert staged.text.endswith(" FROM tc_msgarchive s WHERE s.msg_id BETWEEN :low AND :high")
    assert straight.text.endswith(" FROM tc_msgarchive s WHERE (s.msg_id < :low OR s.msg_id > :high)")
    assert staged.params == straight.params == {"low": 3, "high": 9}


def test_oracle_finds_identical_archive_rows_with_nulls_equal_and_clobs_compared_by_dbms_lob():
    moved = sqlbuild.insert_moved_archive(Dialect.ORACLE, 41)
    assert moved.params == {"base": 41}
    assert moved.text.startswith(
        "INSERT INTO tc_msgarchive (msg_id, to_jid, from_jid, nick_jid, sent_date, msg_type, body_len, message_len, "
        "body_string, message_string, body_text, message_text, subject) "
        "SELECT :base + ROW_NUMBER() OVER (ORDER BY s.msg_id), s.to_jid, "
    )
    same = sqlbuild.same_row(Dialect.ORACLE, sqlbuild.TC_MSGARCHIVE, "t", "s")
    assert same.split(" AND ")[:2] == ["t.msg_id = s.msg_id", "t.to_jid = s.to_jid"]
    assert "(t.body_string = s.body_string OR (t.body_string IS NULL AND s.body_string IS NULL))" in same
    assert "(DBMS_LOB.COMPARE(t.body_text, s.body_text) = 0 OR (t.body_text IS NULL AND s.body_text IS NULL))" in same
    assert "IS NOT DISTINCT FROM" not in same
    assert moved.text.endswith(
        "FROM imp_stage_archive s WHERE EXISTS (SELECT 1 FROM tc_msgarchive t WHERE t.msg_id = s.msg_id) "
        f"AND NOT EXISTS (SELECT 1 FROM tc_msgarchive t WHERE {same})"
    )


def test_oracle_flags_staged_room_messages_identical_to_the_destinations_comparing_the_clob_body():
    text = sqlbuild.mark_duplicate_messages(Dialect.ORACLE)
    assert text == (
        "UPDATE imp_stage_messages s SET dup = 'Y' WHERE EXISTS (SELECT 1 FROM tc_messages t "
        "WHERE t.msg_id = s.msg_id AND t.room_jid = s.room_jid AND t.stamp = s.stamp "
        "AND DBMS_LOB.COMPARE(t.msg, s.msg) = 0)"
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
