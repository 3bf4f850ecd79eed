"""Benchmark of the PostgreSQL merge engine against a raw psql COPY (FORMAT BINARY) pipe.

    .venv/bin/python bench/merge.py --rows 100000

Builds two sources of N tc_msgarchive rows each (plus N/2 room messages, N/5 time log rows,
N/2000 rooms with members), then times in one run:
  (a) the merge through the engine (COPY method) in a child process, with its peak RSS;
  (b) psql "COPY ... TO STDOUT (FORMAT BINARY)" | psql "COPY ... FROM STDIN (FORMAT BINARY)"
      of the same tables of both sources into identical, empty schemas;
  (c) the merge through the engine with the dblink method, in a child process.
Prints a/b, c/b, rows per second and peak RSS. Uses the local PostgreSQL (PGHOST, PGPORT,
PGUSER, default 127.0.0.1:5432 postgres); drops what it created.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402

from messaging.tc.schema import TABLES, Dialect, install_statements  # noqa: E402

PG = {
    "host": os.environ.get("PGHOST", "127.0.0.1"),
    "port": int(os.environ.get("PGPORT", "5432")),
    "user": os.environ.get("PGUSER", "postgres"),
}


def admin():
    return psycopg.connect(dbname="postgres", autocommit=True, **PG)


def create(name: str, schema: bool = True) -> None:
    with admin() as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    if schema:
        with psycopg.connect(dbname=name, **PG) as conn:
            for statement in install_statements(Dialect.POSTGRES):
                conn.execute(statement)


def fill(name: str, rows: int, node: str) -> None:
    """Both sources use the same ids and rooms (as two per-node databases do), but their
    messages differ (``node`` is in every body), so no row is an exact duplicate."""
    rooms = max(rows // 2000, 10)
    with psycopg.connect(dbname=name, **PG) as conn:
        conn.execute(
            "INSERT INTO tc_rooms SELECT 'room' || g || '@conf.example.com', 'owner@example.com', 'Room ' || g, "
            "'persistent', '<x/>', '<s/>', 1, %s FROM generate_series(1, %s) g",
            (rows, rooms),
        )
        conn.execute(
            "INSERT INTO tc_users SELECT 'room' || (g %% %s + 1) || '@conf.example.com', "
            "'user' || g || '@example.com', "
            "'participant', 'member', 'room/nick' || g, '', 'admin@example.com' FROM generate_series(1, %s) g",
            (rooms, rooms * 20),
        )
        conn.execute(
            "INSERT INTO tc_msgarchive SELECT g, 'room' || (g %% %s + 1) || '@conf.example.com', "
            "'user' || (g %% 997) || '@example.com', 'room' || (g %% %s + 1) || '@conf.example.com/nick', "
            "timestamp '2024-01-01' + g * interval '1 second', 'g', 60, 200, "
            "'A chat message of a realistic length on ' || %s || ', number ' || g || ', with a little more text.', "
            "'<message type=\"groupchat\"><body>A chat message of a realistic length on ' || %s || ', number ' || g "
            "|| '</body></message>', NULL, NULL, NULL FROM generate_series(1, %s) g",
            (rooms, rooms, node, node, rows),
        )
        conn.execute(
            "INSERT INTO tc_messages SELECT g, 'room' || (g %% %s + 1) || '@conf.example.com', "
            "timestamp '2024-01-01' + g * interval '1 second', "
            "'<message type=\"groupchat\"><body>history of ' || %s || ' ' || g || '</body></message>' "
            "FROM generate_series(1, %s) g",
            (rooms, node, rows // 2),
        )
        conn.execute(
            "INSERT INTO tc_timelog SELECT 'user' || (g %% 997) || '@example.com', 'room/nick', "
            "CASE WHEN g %% 2 = 0 THEN 'E' ELSE 'L' END, timestamp '2024-01-01' + g * interval '1 second' "
            "FROM generate_series(1, %s) g",
            (rows // 5,),
        )
        conn.execute("UPDATE xcp_sequence SET new_id = %s", (rows + 1,))
    with psycopg.connect(dbname=name, autocommit=True, **PG) as conn:
        conn.execute("VACUUM ANALYZE")


def child(method: str, target: str, sources: list[str]) -> None:
    """Run in a child process: the engine's merge, timed, printing JSON."""
    from dbmerge.engines import postgres as engine

    def db(name):
        return engine.PostgresDatabase(name, {**PG, "dbname": name})

    started = time.monotonic()
    report = engine.merge(db(target), [db(s) for s in sources], method=method)
    seconds = time.monotonic() - started
    rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"seconds": seconds, "rows": report.rows_written, "rss_mb": rss_kb / 1024}))


def run_child(method: str, target: str, sources: list[str]) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", method, target, *sources], check=True, capture_output=True, text=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def raw_pipe(sources: list[str], targets: list[str]) -> float:
    env = {**os.environ, "PGHOST": PG["host"], "PGPORT": str(PG["port"]), "PGUSER": PG["user"]}
    started = time.monotonic()
    for source, target in zip(sources, targets, strict=True):
        for table in TABLES:
            if table.name == "xcp_sequence":
                continue
            out = subprocess.Popen(
                ["psql", "-qAt", "-d", source, "-c", f"COPY {table.name} TO STDOUT (FORMAT BINARY)"],
                stdout=subprocess.PIPE,
                env=env,
            )
            subprocess.run(
                ["psql", "-qAt", "-d", target, "-c", f"COPY {table.name} FROM STDIN (FORMAT BINARY)"],
                stdin=out.stdout,
                check=True,
                env=env,
            )
            out.stdout.close()
            out.wait()
    return time.monotonic() - started


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3], sys.argv[4:])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000, help="tc_msgarchive rows per source")
    parser.add_argument("--skip-dblink", action="store_true")
    args = parser.parse_args()
    tag = uuid.uuid4().hex[:6]
    names = {k: f"imp_bench_{k}_{tag}" for k in ("s1", "s2", "copy", "dblink", "raw1", "raw2")}
    try:
        for name in names.values():
            create(name)
        fill(names["s1"], args.rows, "imp-1a")
        fill(names["s2"], args.rows, "imp-1b")
        with psycopg.connect(dbname=names["dblink"], autocommit=True, **PG) as conn:
            conn.execute("CREATE EXTENSION dblink")
        sources = [names["s1"], names["s2"]]

        engine = run_child("copy", names["copy"], sources)
        raw = raw_pipe(sources, [names["raw1"], names["raw2"]])
        dblink = None if args.skip_dblink else run_child("dblink", names["dblink"], sources)

        rows = engine["rows"]
        print(f"rows per source (tc_msgarchive): {args.rows}; rows written in total: {rows}")
        print(
            f"(a) engine, COPY binary: {engine['seconds']:.2f} s, {rows / engine['seconds']:.0f} rows/s, "
            f"peak RSS {engine['rss_mb']:.1f} MB"
        )
        print(f"(b) raw psql COPY (FORMAT BINARY) pipe: {raw:.2f} s, {rows / raw:.0f} rows/s")
        if dblink:
            print(
                f"(c) engine, dblink: {dblink['seconds']:.2f} s, {rows / dblink['seconds']:.0f} rows/s, "
                f"peak RSS {dblink['rss_mb']:.1f} MB"
            )
        print(f"a/b = {engine['seconds'] / raw:.2f}" + (f"; c/b = {dblink['seconds'] / raw:.2f}" if dblink else ""))
    finally:
        with admin() as conn:
            for name in names.values():
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
