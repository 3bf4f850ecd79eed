"""A multi-host test bed on one machine: network namespaces, a PostgreSQL cluster and Redis of
the test's own, node agents each on a host of their own, and links to cut and heal.

Layout (every address from 198.18.0.0/24, the benchmarking range, which exists only inside
the namespaces this module creates)::

    <prefix>-br   bridge namespace: br0, one veth port per host
    <prefix>-db   database host: PostgreSQL on .2 (config DB) and .3 (external database),
                  redis-server on .4 (the chat bus)
    <prefix>-a    node A (.11)    <prefix>-b   node B (.12)    <prefix>-cl  clients (.20)

The config DB and the external database are one PostgreSQL cluster (``initdb`` into a
temporary directory, run as the ``postgres`` user) listening on two addresses, so a node can
be cut from one and not the other. The test process itself reaches PostgreSQL and Redis
through their Unix sockets in that directory (path sockets are not bound to a namespace) and
the chat ports from a thread that entered the clients' namespace (``ClientHost``).

Cuts are nftables rules in the node's namespace (a silent drop, as a dead switch port or a
firewall change looks), or the node's link set down. The kernel here has no ``netem``
qdisc, so loss is nftables' random drop and delay is a relay (``relay.py``) every node's
config DB connection goes through, idle (no delay) until a test slows it.

Namespaces are named ``impnet-<pid>-<host>``; ``sweep()`` removes those of processes that
no longer exist, so a test bed killed mid-test is cleaned up by the next one.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NAMESPACE_PREFIX = "impnet-"
SUBNET = "198.18.0"
CONFIG_DB_IP = f"{SUBNET}.2"
EXTERNAL_DB_IP = f"{SUBNET}.3"
REDIS_IP = f"{SUBNET}.4"
RELAY_IP = f"{SUBNET}.5"
CLIENT_IP = f"{SUBNET}.20"
NODE_IPS = {"a": f"{SUBNET}.11", "b": f"{SUBNET}.12"}
PG_PORT = 5432
REDIS_PORT = 6379
AGENT_PORT = 5280
CLONE_NEWNET = 0x40000000


def available() -> str | None:
    """None if this process can build a test bed; else why not."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    if not list(Path("/usr/lib/postgresql").glob("*/bin/initdb")):
        return "no PostgreSQL server binaries under /usr/lib/postgresql"
    if shutil.which("redis-server") is None:
        return "no redis-server"
    return None


APT_LOCK = Path("/tmp/imp-netns-apt.lock")
TOOLS = (("ip", "iproute2"), ("nft", "nftables"))


def _apt_install(*packages: str) -> None:
    """Install from Debian's packages. Another install under way (another xdist worker's test
    bed, another script) holds dpkg's lock: apt waits for it instead of failing."""
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    wait = ["-o", "DPkg::Lock::Timeout=600"]
    subprocess.run(["apt-get", *wait, "update", "-qq"], check=False, env=env, capture_output=True)
    result = subprocess.run(
        ["apt-get", *wait, "install", "-y", "-qq", *packages], env=env, capture_output=True, text=True
    )
    if result.returncode != 0:
        raise RuntimeError(f"apt-get install {' '.join(packages)} failed: {result.stderr.strip()[-2000:]}")


def ensure_tools() -> None:
    """iproute2 (``ip``) and nftables (``nft``), installed from Debian's packages when missing.
    Test beds start in several xdist workers at once: one installs, the others wait for it."""
    if all(shutil.which(tool) for tool, _ in TOOLS):
        return
    with APT_LOCK.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        missing = [package for tool, package in TOOLS if shutil.which(tool) is None]
        if missing:
            _apt_install(*missing)


def sh(*args: str, check: bool = True, input: str | None = None) -> subprocess.CompletedProcess:
    result = subprocess.run(args, capture_output=True, text=True, input=input)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed: {result.stderr.strip() or result.stdout.strip()}")
    return result


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _namespaces() -> list[str]:
    listing = sh("ip", "netns", "list", check=False).stdout
    return [line.split()[0] for line in listing.splitlines() if line.startswith(NAMESPACE_PREFIX)]


def remove_namespace(name: str) -> None:
    """Kill what runs in namespace ``name`` (only processes inside it), then delete it."""
    pids = sh("ip", "netns", "pids", name, check=False).stdout.split()
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pid), signal.SIGKILL)
    sh("ip", "netns", "delete", name, check=False)


def sweep() -> list[str]:
    """Remove the namespaces of test beds whose process is gone; returns their names."""
    removed = []
    for name in _namespaces():
        match = re.match(rf"{NAMESPACE_PREFIX}(\d+)-", name)
        if match and not _pid_alive(int(match.group(1))):
            remove_namespace(name)
            removed.append(name)
    return removed


def _postgres_bin() -> Path:
    return sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))[-1].parent


@dataclass
class Process:
    """A process started inside a namespace, its output in ``log_path``."""

    name: str
    popen: subprocess.Popen
    log_path: Path

    def stop(self, timeout: float = 15) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@dataclass
class TestBed:
    """Namespaces, links, PostgreSQL and Redis of one test session. ``close()`` removes all."""

    workdir: Path
    prefix: str = field(default_factory=lambda: f"{NAMESPACE_PREFIX}{os.getpid()}")
    processes: list[Process] = field(default_factory=list)
    hosts: list[str] = field(default_factory=list)

    # --- building ----------------------------------------------------------------------

    def ns(self, host: str) -> str:
        return f"{self.prefix}-{host}"

    def run_in(self, host: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return sh("ip", "netns", "exec", self.ns(host), *args, check=check)

    def start(self) -> TestBed:
        ensure_tools()
        sweep()
        for host in [h for h in ("br", "db", "a", "b", "cl") if self.ns(h) in _namespaces()]:
            remove_namespace(self.ns(host))
        try:
            self._links()
            self._postgres()
            self._redis()
            self._relay()
        except BaseException:
            self.close()
            raise
        return self

    def _add_namespace(self, host: str) -> None:
        sh("ip", "netns", "add", self.ns(host))
        self.hosts.append(host)
        sh("ip", "-n", self.ns(host), "link", "set", "lo", "up")

    def _links(self) -> None:
        self._add_namespace("br")
        sh("ip", "-n", self.ns("br"), "link", "add", "br0", "type", "bridge")
        sh("ip", "-n", self.ns("br"), "link", "set", "br0", "up")
        addresses = {
            "db": [CONFIG_DB_IP, EXTERNAL_DB_IP, REDIS_IP, RELAY_IP],
            "a": [NODE_IPS["a"]],
            "b": [NODE_IPS["b"]],
            "cl": [CLIENT_IP],
        }
        for host, ips in addresses.items():
            self._add_namespace(host)
            inside, port = f"{self.prefix[-8:]}{host}i", f"{self.prefix[-8:]}{host}p"
            sh("ip", "link", "add", inside, "type", "veth", "peer", "name", port)
            sh("ip", "link", "set", inside, "netns", self.ns(host))
            sh("ip", "link", "set", port, "netns", self.ns("br"))
            sh("ip", "-n", self.ns("br"), "link", "set", port, "master", "br0", "up")
            sh("ip", "-n", self.ns(host), "link", "set", inside, "name", "eth0")
            for ip in ips:
                sh("ip", "-n", self.ns(host), "addr", "add", f"{ip}/24", "dev", "eth0")
            sh("ip", "-n", self.ns(host), "link", "set", "eth0", "up")
            self.run_in(host, "nft", "add", "table", "inet", "impnet")
            for chain, hook in (("out", "output"), ("in", "input")):
                self.run_in(
                    host, "nft", "add", "chain", "inet", "impnet", chain, f"{{ type filter hook {hook} priority 0; }}"
                )

    def spawn(
        self, host: str, name: str, args: list[str], *, env: dict | None = None, user: str | None = None, log_dir=None
    ):
        log_path = Path(log_dir or self.workdir) / f"{name}.log"
        command = ["ip", "netns", "exec", self.ns(host)]
        if user:
            command += ["runuser", "-u", user, "--"]
        with log_path.open("ab") as log:
            popen = subprocess.Popen(
                [*command, *args],
                cwd=ROOT,
                env=env or dict(os.environ),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        process = Process(name, popen, log_path)
        self.processes.append(process)
        return process

    @property
    def socket_dir(self) -> Path:
        return self.workdir / "sockets"

    def _postgres(self) -> None:
        postgres = pwd.getpwnam("postgres")
        data = self.workdir / "pgdata"
        self.socket_dir.mkdir(exist_ok=True)
        for path in (self.workdir, self.socket_dir):
            os.chown(path, postgres.pw_uid, postgres.pw_gid)
        os.chmod(self.workdir, 0o755)  # noqa: S103 - the postgres user must reach its sockets
        bindir = _postgres_bin()
        sh("runuser", "-u", "postgres", "--", str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres")
        with (data / "pg_hba.conf").open("a") as hba:
            hba.write(f"host all all {SUBNET}.0/24 trust\n")
        self.pg = self.spawn(
            "db",
            "postgres",
            [
                str(bindir / "postgres"),
                "-D",
                str(data),
                "-c",
                f"listen_addresses={CONFIG_DB_IP},{EXTERNAL_DB_IP}",
                "-c",
                f"port={PG_PORT}",
                "-c",
                f"unix_socket_directories={self.socket_dir}",
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
                "-c",
                "max_connections=200",
                "-c",
                "shared_buffers=32MB",
            ],
            user="postgres",
        )
        _wait_until(lambda: (self.socket_dir / f".s.PGSQL.{PG_PORT}").exists(), 30, "PostgreSQL of the test bed")
        _wait_until(self._pg_ready, 30, "PostgreSQL accepting connections")

    def _pg_ready(self) -> bool:
        import psycopg

        try:
            with psycopg.connect(**self.pg_admin(dbname="postgres"), connect_timeout=2):
                return True
        except psycopg.OperationalError:
            return False

    def pg_admin(self, dbname: str) -> dict:
        """Connection arguments for the test process (Unix socket)."""
        return {"host": str(self.socket_dir), "port": PG_PORT, "user": "postgres", "dbname": dbname}

    def _redis(self) -> None:
        self.redis = self.spawn(
            "db",
            "redis",
            [
                "redis-server",
                "--bind",
                REDIS_IP,
                "--port",
                str(REDIS_PORT),
                "--save",
                "",
                "--appendonly",
                "no",
                "--protected-mode",
                "no",
                "--unixsocket",
                str(self.socket_dir / "redis.sock"),
                "--unixsocketperm",
                "700",
            ],
        )
        _wait_until(lambda: (self.socket_dir / "redis.sock").exists(), 15, "redis-server of the test bed")

    def _relay(self) -> None:
        """Every node reaches the config DB through the relay on .5 (no delay until slowed)."""
        self.relay_control = self.workdir / "relay-delay"
        self.relay_control.write_text("0")
        self.relay = self.spawn(
            "db",
            "relay",
            [
                sys.executable,
                str(Path(__file__).with_name("relay.py")),
                f"{RELAY_IP}:{PG_PORT}",
                f"{CONFIG_DB_IP}:{PG_PORT}",
                str(self.relay_control),
            ],
        )
        listening = f"{RELAY_IP}:{PG_PORT}"
        _wait_until(lambda: listening in self.run_in("db", "ss", "-ltn", check=False).stdout, 15, "the relay")

    # --- cutting and healing -------------------------------------------------------------

    def cut(self, host: str, *ips: str) -> None:
        """Drop, silently and both ways, what ``host`` exchanges with ``ips``."""
        for ip in ips:
            self.run_in(host, "nft", "add", "rule", "inet", "impnet", "out", "ip", "daddr", ip, "drop")
            self.run_in(host, "nft", "add", "rule", "inet", "impnet", "in", "ip", "saddr", ip, "drop")

    def lose(self, host: str, ip: str, percent: int) -> None:
        """Drop ``percent`` % of the packets between ``host`` and ``ip``, at random, both ways."""
        for chain, direction in (("out", "daddr"), ("in", "saddr")):
            self.run_in(
                host,
                "nft",
                "add",
                "rule",
                "inet",
                "impnet",
                chain,
                "ip",
                direction,
                ip,
                "numgen",
                "random",
                "mod",
                "100",
                "<",
                str(percent),
                "drop",
            )

    def delay_config_db(self, milliseconds: int) -> None:
        """Delay every chunk the config DB relay forwards, each way, by ``milliseconds``."""
        self.relay_control.write_text(str(milliseconds))

    def link(self, host: str, up: bool) -> None:
        """Set ``host``'s only link (its veth) up or down: cut from everything."""
        self.run_in(host, "ip", "link", "set", "eth0", "up" if up else "down")

    def heal(self, host: str) -> None:
        """Remove every cut, loss and delay of ``host`` and bring its link up."""
        for chain in ("out", "in"):
            self.run_in(host, "nft", "flush", "chain", "inet", "impnet", chain)
        self.link(host, True)
        self.delay_config_db(0)

    # --- clean up ------------------------------------------------------------------------

    def close(self) -> None:
        for process in reversed(self.processes):
            with contextlib.suppress(Exception):
                process.stop()
        for host in reversed(self.hosts):
            remove_namespace(self.ns(host))
        self.hosts.clear()


def _wait_until(predicate, timeout: float, what, interval: float = 0.1):
    """The test bed's own wait while it starts its servers: ``tests.conftest.wait_for`` without
    Django, because ``python tests/partition/netns.py`` builds a test bed on its own."""
    """Poll ``predicate`` until true; fail saying ``what`` (a string, or a callable for the
    state of things at the time) did not happen."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"Timed out after {timeout} s waiting for {what() if callable(what) else what}")
        time.sleep(interval)


class ClientHost:
    """An asyncio loop on a thread that entered the clients' namespace: chat clients run on it
    and reach the nodes only over the test bed's links."""

    def __init__(self, bed: TestBed) -> None:
        import asyncio

        self.loop = asyncio.new_event_loop()
        self._namespace = f"/var/run/netns/{bed.ns('cl')}"
        self._entered = threading.Event()
        self._error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True, name="clients-netns")
        self.thread.start()
        self._entered.wait(10)
        if self._error is not None:
            raise self._error

    def _run(self) -> None:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            fd = os.open(self._namespace, os.O_RDONLY)
            try:
                if libc.setns(fd, CLONE_NEWNET) != 0:
                    errno = ctypes.get_errno()
                    raise OSError(errno, f"setns: {os.strerror(errno)}")
            finally:
                os.close(fd)
            # Check: this thread now sees only the clients' namespace addresses.
            with socket.socket() as probe:
                probe.bind((CLIENT_IP, 0))
        except BaseException as exc:
            self._error = exc
            self._entered.set()
            return
        self._entered.set()
        self.loop.run_forever()

    def run(self, coroutine, timeout: float | None = None):
        import asyncio

        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def submit(self, coroutine):
        import asyncio

        return asyncio.run_coroutine_threadsafe(coroutine, self.loop)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        if not self.thread.is_alive():
            self.loop.close()


def new_workdir() -> Path:
    return Path(tempfile.mkdtemp(prefix="impnet-"))


def main(argv: list[str]) -> int:
    """``scripts/netns-testbed up|sweep``: bring a bed up until Ctrl-C, or remove stale ones."""
    command = argv[0] if argv else "up"
    if command == "sweep":
        ensure_tools()
        for name in sweep():
            print(f"removed {name}")
        return 0
    reason = available()
    if reason:
        print(f"Cannot build the test bed: {reason}.", file=sys.stderr)
        return 1
    workdir = new_workdir()
    bed = TestBed(workdir)
    try:
        bed.start()
        print(f"Test bed {bed.prefix}: namespaces {', '.join(bed.ns(h) for h in bed.hosts)}")
        print(f"  config DB  postgres://postgres@{RELAY_IP}:{PG_PORT}/  (direct: {CONFIG_DB_IP}, relay: {RELAY_IP})")
        print(f"  external   {EXTERNAL_DB_IP}:{PG_PORT}   Redis {REDIS_IP}:{REDIS_PORT}")
        print(f"  from here: psql -h {bed.socket_dir} -U postgres; Ctrl-C removes everything")
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
        signal.sigwait({signal.SIGINT, signal.SIGTERM})
    finally:
        bed.close()
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    raise SystemExit(main(sys.argv[1:]))
