# ruff: noqa: S608 -- the only SQL built from strings uses constant fragments; values are bind parameters.
"""Benchmark of the PostgreSQL merge engine against a raw psql COPY (FORMAT BINARY) pipe.

    .venv/bin/python bench/merge.py --rows 100000

Builds two sources of N tc_msgarchive rows each (plus N/2 room messages, N/5 time log rows,
N/2000 rooms with members), then times in one run:
  (a) the merge through the engine (COPY method) into an empty destination, in a child
      process, with its peak RSS;
  (b) psql "COPY ... TO STDOUT (FORMAT BINARY)" | psql "COPY ... FROM STDIN (FORMAT BINARY)"
      of the same tables of each source into identical, empty schemas (b1 + b2, per source);
  (c) the merge through the engine with the dblink method, in a child process;
  (i) the merge of two more sources of N rows each into a destination that already holds a
      merged history of the same size (a copy of the result of (a)); half of each new source's
      rows are exact duplicates of rows of the first two (as a re-exported per-node database);
      its baseline is b, the same amount of data piped raw;
  (ii) the merge into a destination that is source 1 (a copy of it, taken as its own source):
      only source 2 is moved, so its baseline is b2, source 2 piped raw.
Each timed case starts after a CHECKPOINT, so none pays for what came before it.
Prints a/b, c/b, i/b, ii/b2, rows per second, peak RSS and the machine's load average. Uses
the local PostgreSQL (PGHOST, PGPORT, PGUSER, default 127.0.0.1:5432 postgres); drops what it
created.
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


def fill(name: str, rows: int, node: str, twin: str | None = None) -> None:
    """Both sources use the same ids and rooms (as two per-node databases do), but their
    messages differ (``node`` is in every body), so no row is an exact duplicate. With
    ``twin``, the rows of even number carry ``twin`` instead of ``node``: they are identical
    to those of the source filled with ``node=twin``."""
    rooms = max(rows // 2000, 10)
    label = "CASE WHEN g %% 2 = 0 THEN %s ELSE %s END" if twin else "%s"
    labels = (twin, node) if twin else (node,)
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
            f"'A chat message of a realistic length on ' || {label} || ', number ' || g "
            "|| ', with a little more text.', "
            f"'<message type=\"groupchat\"><body>A chat message of a realistic length on ' || {label} "
            "|| ', number ' || g || '</body></message>', NULL, NULL, NULL FROM generate_series(1, %s) g",
            (rooms, rooms, *labels, *labels, rows),
        )
        conn.execute(
            "INSERT INTO tc_messages SELECT g, 'room' || (g %% %s + 1) || '@conf.example.com', "
            "timestamp '2024-01-01' + g * interval '1 second', "
            f"'<message type=\"groupchat\"><body>history of ' || {label} || ' ' || g || '</body></message>' "
            "FROM generate_series(1, %s) g",
            (rooms, *labels, rows // 2),
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


def copy_of(name: str, template: str) -> None:
    """A new database holding what ``template`` holds (a file copy, no client in between;
    from PostgreSQL 15 on, FILE_COPY says so: the default WAL_LOG writes the copy to the WAL)."""
    with admin() as conn:
        strategy = " STRATEGY FILE_COPY" if conn.info.server_version >= 150000 else ""
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"{strategy}')


def checkpoint() -> None:
    """Before each timed case: no case pays for the dirty pages and WAL of what came before it
    (filling the sources, the previous case), each starts from the same state."""
    with admin() as conn:
        conn.execute("CHECKPOINT")


def child(method: str, target: str, sources: list[str]) -> None:
    """Run in a child process: the engine's merge, timed, printing JSON."""
    from dbmerge.engines import postgres as engine

    def db(name):
        return engine.PostgresDatabase(name, {**PG, "dbname": name})

    if os.environ.get("MERGE_TRACE"):  # every destination statement with its time, on stderr
        import logging

        logging.basicConfig(level=logging.DEBUG, format="%(relativeCreated)8.0f ms %(message)s")
        logging.getLogger("psycopg").setLevel(logging.WARNING)
    started = time.monotonic()
    report = engine.merge(db(target), [db(s) for s in sources], method=method)
    seconds = time.monotonic() - started
    rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"seconds": seconds, "rows": report.rows_written, "rss_mb": rss_kb / 1024}))


def run_child(method: str, target: str, sources: list[str]) -> dict:
    checkpoint()
    out = subprocess.run(
        [sys.executable, __file__, "--child", method, target, *sources], check=True, stdout=subprocess.PIPE, text=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def raw_pipe(sources: list[str], targets: list[str]) -> list[float]:
    """Seconds to pipe each source's tables into its target, per source."""
    env = {**os.environ, "PGHOST": PG["host"], "PGPORT": str(PG["port"]), "PGUSER": PG["user"]}
    seconds = []
    for source, target in zip(sources, targets, strict=True):
        checkpoint()
        started = time.monotonic()
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
        seconds.append(time.monotonic() - started)
    return seconds


CASES = ("copy", "dblink", "history", "source")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3], sys.argv[4:])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000, help="tc_msgarchive rows per source")
    parser.add_argument(
        "--cases",
        default=",".join(CASES),
        help="which engine runs besides (a) and (b): dblink (c), history (i), source (ii); comma-separated",
    )
    args = parser.parse_args()
    cases = set(args.cases.split(",")) | {"copy"}
    load_before = os.getloadavg()[0]
    tag = uuid.uuid4().hex[:6]
    keys = ("s1", "s2", "copy", "dblink", "raw1", "raw2", "h1", "h2", "history", "own1")
    names = {k: f"imp_bench_{k}_{tag}" for k in keys}
    try:
        for key in ("s1", "s2", "copy", "raw1", "raw2"):
            create(names[key])
        fill(names["s1"], args.rows, "imp-1a")
        fill(names["s2"], args.rows, "imp-1b")
        sources = [names["s1"], names["s2"]]
        if "history" in cases:
            for key in ("h1", "h2"):
                create(names[key])
            fill(names["h1"], args.rows, "imp-2a", twin="imp-1a")
            fill(names["h2"], args.rows, "imp-2b", twin="imp-1b")

        engine = run_child("copy", names["copy"], sources)
        raw = raw_pipe(sources, [names["raw1"], names["raw2"]])
        b = sum(raw)
        results = {}
        if "dblink" in cases:
            create(names["dblink"])
            with psycopg.connect(dbname=names["dblink"], autocommit=True, **PG) as conn:
                conn.execute("CREATE EXTENSION dblink")
            results["dblink"] = run_child("dblink", names["dblink"], sources)
        if "history" in cases:
            copy_of(names["history"], names["copy"])
            with psycopg.connect(dbname=names["history"], autocommit=True, **PG) as conn:
                conn.execute("VACUUM ANALYZE")
                held = conn.execute("SELECT COUNT(*) FROM tc_msgarchive").fetchone()[0]
            results["history"] = run_child("copy", names["history"], [names["h1"], names["h2"]])
            results["history"]["held"] = held
        if "source" in cases:
            copy_of(names["own1"], names["s1"])
            results["source"] = run_child("copy", names["own1"], [names["own1"], names["s2"]])

        rows = engine["rows"]
        print(f"rows per source (tc_msgarchive): {args.rows}; rows written in total by (a): {rows}")
        print(
            f"(a) engine, COPY binary, empty destination: {engine['seconds']:.2f} s, "
            f"{rows / engine['seconds']:.0f} rows/s, peak RSS {engine['rss_mb']:.1f} MB"
        )
        print(
            f"(b) raw psql COPY (FORMAT BINARY) pipe: {b:.2f} s (b1 {raw[0]:.2f} s + b2 {raw[1]:.2f} s), "
            f"{rows / b:.0f} rows/s"
        )
        ratios = [f"a/b = {engine['seconds'] / b:.2f}"]
        if "dblink" in results:
            c = results["dblink"]
            print(
                f"(c) engine, dblink: {c['seconds']:.2f} s, {c['rows'] / c['seconds']:.0f} rows/s, "
                f"peak RSS {c['rss_mb']:.1f} MB"
            )
            ratios.append(f"c/b = {c['seconds'] / b:.2f}")
        if "history" in results:
            i = results["history"]
            print(
                f"(i) engine, destination holding a merged history ({i['held']} archive rows): "
                f"{i['seconds']:.2f} s, {i['rows']} rows written, peak RSS {i['rss_mb']:.1f} MB"
            )
            ratios.append(f"i/b = {i['seconds'] / b:.2f}")
        if "source" in results:
            ii = results["source"]
            print(
                f"(ii) engine, destination is source 1: {ii['seconds']:.2f} s, {ii['rows']} rows written, "
                f"peak RSS {ii['rss_mb']:.1f} MB"
            )
            ratios.append(f"ii/b2 = {ii['seconds'] / raw[1]:.2f}")
        print("; ".join(ratios))
        print(f"load average (1 min): {load_before:.2f} at the start, {os.getloadavg()[0]:.2f} at the end")
    finally:
        with admin() as conn:
            for name in names.values():
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
