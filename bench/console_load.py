"""The console under load: N administrators walk every list and detail page while a merge runs.

    flock /work/bench.lock .venv/bin/python bench/console_load.py [--admins 20] [--duration 60]

Builds a throw-away config DB (SQLite, WAL) with ``manage.py load_bench_data`` (1,000 end
users, 3 redundancy groups, 10,000 persistent rooms in PostgreSQL, 1,000 merge jobs, 100,000
audit entries) and two PostgreSQL source databases for a merge, then runs two loads, each
against Django's development server (``manage.py runserver``) and against gunicorn, one after
the other in the same run:

* (i) every administrator waits ``--think`` seconds (default 1) between two pages;
* (ii) no wait, for the maximum throughput.

Each administrator logs in through the login page, then walks the pages (list pages and a
random object's detail page) in a rotating order. While each walk runs, ``manage.py
merge_external_databases`` merges the two sources into a fresh destination, writing its
progress to the config DB as a worker does (when it finishes, the next one starts, so a merge
runs throughout every walk). Prints p50/p95/max per page and requests/s for
each server side by side, the load average of the machine before and after, the CPU time
each server used per request and in cores (on a shared machine, throughput measures the CPU
share the kernel gave each server; CPU per request is what the server itself costs), the load
generator's own CPU, and how many of the machine's cores were busy: the development server is
one interpreter, so it cannot use much more than one core, whatever the machine has.

Both servers run the same settings: DEBUG off, collected static files, the same config DB.
gunicorn uses ``deploy/gunicorn.conf.py`` when it exists (its bind address overridden);
otherwise (or with ``--workers``) ``--workers`` gthread workers of ``--threads`` threads.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
PASSWORD = "bench-Admin-Password-1"
PG = {
    "host": os.environ.get("PGHOST", "127.0.0.1"),
    "port": int(os.environ.get("PGPORT", "5432")),
    "user": os.environ.get("PGUSER", "postgres"),
}

# (page name, path or a function of the ids giving one)
LIST_PAGES = [
    ("Home", "/"),
    ("Presence Topology", "/system/topology/"),
    ("Redundancy Groups", "/system/redundancy-groups/"),
    ("Clusters", "/system/clusters/"),
    ("Nodes", "/system/nodes/"),
    ("Users", "/system/users/"),
    ("Users page 10", "/system/users/?page=10"),
    ("Service Parameters", "/system/service-parameters/"),
    ("Alarm Recipients", "/system/alarm-recipients/"),
    ("Control Center Feature", "/serviceability/control-center/feature/"),
    ("Control Center Network", "/serviceability/control-center/network/"),
    ("Service Activation", "/serviceability/service-activation/"),
    ("Group Chat Settings", "/messaging/group-chat/"),
    ("Alias Mapping", "/messaging/group-chat/aliases/"),
    ("Group Chat Admins", "/messaging/group-chat/administrators/"),
    ("External Databases", "/messaging/external-databases/"),
    ("Merge Jobs", "/messaging/jobs/"),
    ("Room Report", "/messaging/rooms/"),
    ("Room Report page 20", "/messaging/rooms/?page=20"),
    ("Audit Trail", "/audit/"),
    ("Audit Trail page 100", "/audit/?page=100"),
]
DETAIL_PAGES = [
    ("Cluster detail", lambda ids, rng: f"/system/clusters/{rng.choice(ids['clusters'])}/"),
    ("Node detail", lambda ids, rng: f"/system/nodes/{rng.choice(ids['nodes'])}/"),
    ("Group detail", lambda ids, rng: f"/system/redundancy-groups/{rng.choice(ids['groups'])}/"),
    ("User detail", lambda ids, rng: f"/system/users/{rng.choice(ids['users'])}/"),
    ("External DB detail", lambda ids, rng: f"/messaging/external-databases/{rng.choice(ids['databases'])}/"),
    ("Merge Job detail", lambda ids, rng: f"/messaging/jobs/merge/{rng.choice(ids['jobs'])}/"),
    ("Room detail", lambda ids, rng: "/messaging/rooms/{}/{}/".format(*rng.choice(ids["rooms"]))),
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def load_average() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


# --- the data set --------------------------------------------------------------------------


class Bench:
    def __init__(self, args) -> None:
        self.args = args
        self.keep = bool(args.data_dir)
        self.var = Path(args.data_dir) if args.data_dir else Path(tempfile.mkdtemp(prefix="imp-console-bench-"))
        self.var.mkdir(parents=True, exist_ok=True)
        state = self.var / "bench-tag"
        self.reuse = state.exists()
        if not self.reuse:
            state.write_text(uuid.uuid4().hex[:6])
        self.tag = state.read_text().strip()
        self.prefix = f"imp_bench_{self.tag}_"
        self.env = dict(
            os.environ,
            IMP_VAR_DIR=str(self.var),
            DJANGO_SETTINGS_MODULE="imp_admin.settings",
            SECRET_KEY="bench-only-secret-key-" + self.tag * 6,
            DEBUG="0",
            SECURE_SSL_REDIRECT="0",
            SESSION_COOKIE_SECURE="0",
            CSRF_COOKIE_SECURE="0",
            SECURE_HSTS_SECONDS="0",
            ALLOWED_HOSTS="127.0.0.1,localhost",
            LOG_LEVEL="WARNING",
            PYTHONUNBUFFERED="1",
        )
        self.databases: list[str] = []
        self.destinations: list[str] = []  # dropped after every run, even with --data-dir

    def manage(self, *arguments: str, **kwargs) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "manage.py", *arguments], cwd=ROOT, env=self.env, check=True, text=True, **kwargs
        )

    def prepare(self) -> dict:
        started = time.monotonic()
        self.manage("migrate", "-v0")
        self.manage("collectstatic", "--noinput", "-v0")
        if self.reuse:
            print(f"reusing the data set in {self.var}")
            return self.ids()
        output = self.manage(
            "load_bench_data",
            "--admin-password",
            PASSWORD,
            "--admins",
            str(self.args.admins),
            "--database-prefix",
            self.prefix,
            capture_output=True,
        ).stdout
        print(output.rstrip())
        print(f"config DB migrated and loaded in {time.monotonic() - started:.1f} s")
        self.databases += [f"{self.prefix}subcluster{n}" for n in (1, 2, 3)]
        self.manage("shell", "-c", MERGE_SOURCES.format(prefix=self.prefix, messages=self.args.merge_messages))
        self.databases += [f"{self.prefix}source_a", f"{self.prefix}source_b"]
        return self.ids()

    def ids(self) -> dict:
        script = (
            "import json\n"
            "from topology.models import Cluster, Node, RedundancyGroup, EndUser\n"
            "from messaging.models import ExternalDatabase\n"
            "from dbmerge.models import MergeJob\n"
            "print(json.dumps({'clusters': list(Cluster.objects.values_list('pk', flat=True)),"
            "'nodes': list(Node.objects.values_list('pk', flat=True)),"
            "'groups': list(RedundancyGroup.objects.values_list('pk', flat=True)),"
            "'users': list(EndUser.objects.values_list('pk', flat=True)),"
            "'databases': list(ExternalDatabase.objects.values_list('pk', flat=True)),"
            "'chat_databases': list(ExternalDatabase.objects.filter(database_name__contains='subcluster')"
            ".values_list('pk', 'database_name')),"
            "'jobs': list(MergeJob.objects.values_list('pk', flat=True))}))\n"
        )
        import json

        output = self.manage("shell", "-c", script, capture_output=True).stdout
        ids = json.loads(output.strip().splitlines()[-1])
        rooms = []
        for index, (pk, _name) in enumerate(ids["chat_databases"]):
            for n in range(0, 3300, 37):
                rooms.append((pk, f"room{n:05d}@conference-{index + 1}-bench.example.com"))
        ids["rooms"] = rooms
        return ids

    def start_merge(self, label: str) -> subprocess.Popen:
        destination = f"{self.prefix}dest_{label}_{uuid.uuid4().hex[:4]}"
        self.manage("shell", "-c", MERGE_DESTINATION.format(name=destination))
        self.destinations.append(destination)
        return subprocess.Popen(
            [
                sys.executable,
                "manage.py",
                "merge_external_databases",
                "--type",
                "postgres",
                "--source-1",
                f"{self.prefix}source_a",
                "--source-2",
                f"{self.prefix}source_b",
                "--target",
                destination,
            ],
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def cleanup(self) -> None:
        import psycopg
        from psycopg import sql

        dropped = self.destinations if self.keep else self.databases + self.destinations
        with psycopg.connect(dbname="postgres", autocommit=True, **PG) as conn:
            for name in dropped:
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        if not self.keep:
            shutil.rmtree(self.var, ignore_errors=True)


MERGE_SOURCES = (
    """
from messaging.demo import _fill_history, _register
from messaging.dbcheck.install import install_schema
import os
admin = {{"host": "{host}", "port": {port}, "user": "{user}", "password": None}}
for side in ("a", "b"):
    database = _register(admin, "{prefix}source_" + side)
    assert install_schema(database).ok
    _fill_history({{**admin, "dbname": database.database_name}}, f"conference-{{side}}.example.com",
                  "user0000@example.com", {messages})
""".replace("{host}", PG["host"])
    .replace("{port}", str(PG["port"]))
    .replace("{user}", PG["user"])
)

MERGE_DESTINATION = (
    """
from messaging.demo import _register
_register({{"host": "{host}", "port": {port}, "user": "{user}", "password": None}}, "{name}")
""".replace("{host}", PG["host"])
    .replace("{port}", str(PG["port"]))
    .replace("{user}", PG["user"])
)


class Merges:
    """Keeps a merge running for the whole walk: when one finishes, the next starts into a new
    destination, so every page of the walk is served while a merge job runs."""

    def __init__(self, bench: Bench, label: str) -> None:
        self.bench, self.label = bench, label
        self.finished = 0
        self.stopping = threading.Event()
        self.current: subprocess.Popen | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stopping.is_set():
            self.current = self.bench.start_merge(f"{self.label}_{self.finished}")
            if self.stopping.is_set():  # stop() came while this one was starting
                stop(self.current)
                break
            self.current.communicate()
            if self.current.returncode != 0 and not self.stopping.is_set():
                raise SystemExit(f"the merge failed (exit {self.current.returncode})")
            if not self.stopping.is_set():
                self.finished += 1

    def stop(self) -> None:
        self.stopping.set()
        if self.current is not None:
            stop(self.current)
        self.thread.join(60)


# --- the servers ---------------------------------------------------------------------------


def start_server(kind: str, bench: Bench, port: int, args) -> subprocess.Popen:
    log = (bench.var / f"{kind}.log").open("w")
    if kind == "runserver":
        command = [sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"]
    else:
        command = [str(Path(sys.executable).with_name("gunicorn"))]
        config = ROOT / "deploy" / "gunicorn.conf.py"
        if config.exists() and not args.workers:
            command += ["-c", str(config)]
        else:
            # Threads as well as processes: the pages wait on the config DB and on PostgreSQL
            # (room report), and on a machine shared with other work a worker's threads keep
            # its share of the CPU.
            command += [
                "--workers",
                str(args.workers or 2),
                "--threads",
                str(args.threads),
                "--worker-class",
                "gthread",
            ]
        command += ["--bind", f"127.0.0.1:{port}", "imp_admin.wsgi:application"]
    # A session of its own, as a service runs: the kernel's scheduler (autogroup) then shares
    # the CPU between the server and the load generator's 20 threads as between two programs.
    process = subprocess.Popen(
        command, cwd=ROOT, env=bench.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                return process
        except requests.RequestException:
            pass
        if process.poll() is not None:
            break
        time.sleep(0.2)
    process.kill()
    raise SystemExit(f"{kind} did not start; see {log.name}:\n{Path(log.name).read_text()[-3000:]}")


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


# --- the administrators --------------------------------------------------------------------


@dataclass
class Results:
    times: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    lock: threading.Lock = field(default_factory=threading.Lock)
    generator_cpu: float = 0.0  # CPU seconds of this load generator during the walk
    machine_cpu: float = 0.0  # CPU seconds of the whole machine during the walk

    def add(self, page: str, seconds: float, ok: bool) -> None:
        with self.lock:
            self.times[page].append(seconds)
            if not ok:
                self.errors[page] += 1

    @property
    def count(self) -> int:
        return sum(len(v) for v in self.times.values())


def login(base: str, username: str) -> requests.Session:
    session = requests.Session()
    page = session.get(f"{base}/login/", timeout=30)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    response = session.post(
        f"{base}/login/",
        data={"username": username, "password": PASSWORD, "csrfmiddlewaretoken": token},
        headers={"Referer": f"{base}/login/"},
        timeout=30,
        allow_redirects=False,
    )
    if response.status_code != 302:
        raise SystemExit(f"login of {username} failed: HTTP {response.status_code}")
    return session


def administrator(
    session: requests.Session, base: str, number: int, ids: dict, think: float, until: float, results: Results
) -> None:
    rng = random.Random(number)
    pages = [(name, (lambda p: lambda ids, rng: p)(path)) for name, path in LIST_PAGES] + DETAIL_PAGES
    position = number * 3 % len(pages)
    while time.monotonic() < until:
        name, make = pages[position % len(pages)]
        position += 1
        url = base + make(ids, rng)
        started = time.perf_counter()
        try:
            response = session.get(url, timeout=30)
            ok = response.status_code == 200
        except requests.RequestException:
            ok = False
        results.add(name, time.perf_counter() - started, ok)
        if think:
            time.sleep(think * rng.uniform(0.8, 1.2))


def server_cpu_seconds(pid: int) -> float:
    """CPU time (user + system, every thread) of a server and its child processes (gunicorn's
    workers), from /proc: what the server cost, whatever share of the machine it was given."""

    def stat(path: Path) -> list[str]:
        return path.read_text().rsplit(")", 1)[1].split()  # fields from the 3rd (state) on

    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = stat(entry / "stat")
        except (OSError, IndexError):
            continue  # gone meanwhile
        if int(entry.name) == pid:  # utime, stime, and cutime, cstime: its children that ended
            total += sum(int(value) for value in fields[11:15])  # (gunicorn's recycled workers)
        elif int(fields[1]) == pid:  # fields[1]: the parent's pid
            total += int(fields[11]) + int(fields[12])  # utime, stime in clock ticks
    return total / os.sysconf("SC_CLK_TCK")


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine has been busy (every core, everything but idle and iowait)."""
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def walk(
    base: str, ids: dict, admins: int, think: float, duration: float, server_pid: int
) -> tuple[Results, float, float]:
    """Log every administrator in first (password hashing is not what is measured), then walk.

    Returns the results, the walk's seconds and the server's CPU seconds during the walk."""
    sessions: dict[int, requests.Session] = {}

    def sign_in(number: int) -> None:
        sessions[number] = login(base, f"bench-admin-{number:02d}")

    logins = [threading.Thread(target=sign_in, args=(n,), daemon=True) for n in range(1, admins + 1)]
    for thread in logins:
        thread.start()
    for thread in logins:
        thread.join(120)
    if len(sessions) != admins:
        raise SystemExit(f"only {len(sessions)} of {admins} administrators could log in")
    results = Results()
    cpu_before = server_cpu_seconds(server_pid)
    generator_before = time.process_time()
    machine_before = machine_busy_seconds()
    started = time.monotonic()
    until = started + duration
    threads = [
        threading.Thread(target=administrator, args=(sessions[n], base, n, ids, think, until, results), daemon=True)
        for n in range(1, admins + 1)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(duration + 60)
    seconds = time.monotonic() - started
    results.generator_cpu = time.process_time() - generator_before
    results.machine_cpu = machine_busy_seconds() - machine_before
    return results, seconds, server_cpu_seconds(server_pid) - cpu_before


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def report(title: str, runs: dict[str, tuple[Results, float, str]]) -> None:
    print(f"\n### {title}\n")
    kinds = list(runs)
    header = "| page | " + " | ".join(f"{k} p50 / p95 / max (ms)" for k in kinds) + " |"
    print(header)
    print("|" + " --- |" * (1 + len(kinds)))
    pages = [name for name, _ in LIST_PAGES] + [name for name, _ in DETAIL_PAGES]
    for page in pages:
        cells = []
        for kind in kinds:
            times = runs[kind][0].times.get(page, [])
            errors = runs[kind][0].errors.get(page, 0)
            cell = (
                f"{percentile(times, 0.5) * 1000:.0f} / {percentile(times, 0.95) * 1000:.0f} / {max(times) * 1000:.0f}"
                if times
                else "-"
            )
            if errors:
                cell += f" ({errors} errors)"
            cells.append(cell)
        print(f"| {page} | " + " | ".join(cells) + " |")
    cells = []
    for kind in kinds:
        results, seconds, _ = runs[kind]
        every = [t for times in results.times.values() for t in times]
        cells.append(
            f"**{results.count / seconds:.1f} req/s**, p50 {percentile(every, 0.5) * 1000:.0f} ms, "
            f"p95 {percentile(every, 0.95) * 1000:.0f} ms, worst page p95 "
            f"{max((percentile(t, 0.95) for t in results.times.values()), default=0) * 1000:.0f} ms, "
            f"{sum(results.errors.values())} errors"
        )
    print("| all pages | " + " | ".join(cells) + " |")
    for kind in kinds:
        print(f"- {kind}: {runs[kind][2]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--admins", type=int, default=20)
    parser.add_argument("--duration", type=float, default=60, help="Seconds of each walk (default 60).")
    parser.add_argument("--think", type=float, default=1.0, help="Seconds between pages in load (i) (default 1).")
    parser.add_argument(
        "--workers", type=int, default=0, help="gunicorn workers instead of deploy/gunicorn.conf.py (default 2)."
    )
    parser.add_argument("--threads", type=int, default=8, help="Threads per gunicorn worker with --workers.")
    parser.add_argument(
        "--merge-messages", type=int, default=300_000, help="Messages per merge source (default 300,000)."
    )
    parser.add_argument(
        "--data-dir",
        help="Keep the data set (config DB, PostgreSQL databases) in this directory and reuse it on the next run.",
    )
    parser.add_argument("--only", choices=["think", "nowait"], help="Run one of the two loads only.")
    args = parser.parse_args()

    bench = Bench(args)
    print(f"load average before: {load_average()} ({os.cpu_count()} CPUs)")
    try:
        ids = bench.prepare()
        loads = [("(i) think", args.think), ("(ii) no wait", 0.0)]
        if args.only:
            loads = [loads[0] if args.only == "think" else loads[1]]
        for title, think in loads:
            runs = {}
            for kind in ("runserver", "gunicorn"):
                port = free_port()
                server = start_server(kind, bench, port, args)
                merges = Merges(bench, f"{kind}_{int(think * 1000)}")
                load_before = load_average()
                try:
                    results, seconds, cpu = walk(
                        f"http://127.0.0.1:{port}", ids, args.admins, think, args.duration, server.pid
                    )
                finally:
                    merges.stop()
                    stop(server)
                note = (
                    f"{results.count} requests in {seconds:.1f} s; a merge ran throughout "
                    f"({merges.finished} finished, one after the other); "
                    f"load average {load_before} -> {load_average()}; server CPU {cpu:.1f} s, "
                    f"{cpu / max(results.count, 1) * 1000:.1f} ms a request, {cpu / seconds:.2f} cores; "
                    f"load generator {results.generator_cpu / max(results.count, 1) * 1000:.1f} ms a request, "
                    f"{results.generator_cpu / seconds:.2f} cores; whole machine busy "
                    f"{results.machine_cpu / seconds:.2f} of {os.cpu_count()} cores"
                )
                runs[kind] = (results, seconds, note)
            report(f"{title}: {args.admins} administrators, {think:g} s between pages, {args.duration:g} s", runs)
            dev, prod = runs["runserver"], runs["gunicorn"]
            print(f"\nthroughput gunicorn / runserver: {prod[0].count / prod[1] / (dev[0].count / dev[1]):.2f}x")
    finally:
        bench.cleanup()
    print(f"load average after: {load_average()}")


if __name__ == "__main__":
    main()
