"""Real node agents (``manage.py run_node``) as subprocesses against the test's config DB,
with the SRM's timers shortened through its own service parameters."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from django.conf import settings

from tests.conftest import wait_for
from tests.scenario import Scenario, chat_database, give_xmpp_ports
from topology.catalog import ServiceName, ServiceStatus
from topology.choices import HAState
from topology.models import Cluster, Node, Service, ServiceParameters

ROOT = Path(__file__).resolve().parents[2]

# Short timers for tests, set through the SRM's own service parameters.
FAST_SRM = {
    "heartbeat_interval": 0.3,
    "heartbeat_timeout": 3,
    "initialization_heartbeat_timeout": 20,
    "critical_service_delay": 2,
}


def agent_env() -> dict[str, str]:
    env = dict(os.environ)
    database = settings.DATABASES["default"]
    if database["ENGINE"].endswith("sqlite3"):
        env["SQLITE_PATH"] = str(database["NAME"])
    else:
        user = database.get("USER") or "postgres"
        env["DATABASE_URL"] = f"postgres://{user}@{database['HOST']}:{database['PORT']}/{database['NAME']}"
    env["PYTHONUNBUFFERED"] = "1"
    return env


class Agent:
    """One ``manage.py run_node NAME`` subprocess."""

    def __init__(self, name: str, log_dir: Path, *arguments: str) -> None:
        self.name = name
        self.arguments = arguments
        self.log_path = log_dir / f"agent-{name}-{time.monotonic_ns()}.log"
        self.process: subprocess.Popen | None = None

    def start(self) -> Agent:
        log = self.log_path.open("w")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "manage.py",
                "run_node",
                self.name,
                "--reconcile-interval",
                "0.2",
                "--restart-delay",
                "1",
                *self.arguments,
            ],
            cwd=ROOT,
            env=agent_env(),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        return self

    def terminate(self, timeout: float = 20) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        return self.process.returncode

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""


@pytest.fixture
def agents(tmp_path):
    """Start node agents by node name; every one still running is stopped after the test."""
    started: list[Agent] = []

    def start(name: str, *arguments: str) -> Agent:
        agent = Agent(name, tmp_path, *arguments).start()
        started.append(agent)
        return agent

    yield start
    for agent in started:
        agent.terminate()
    for agent in started:
        if "Traceback" in agent.log():
            print(f"--- log of {agent.name} ---\n{agent.log()}")


def fast_srm(cluster: Cluster, **overrides) -> ServiceParameters:
    params = ServiceParameters.for_cluster(cluster.pk)
    for name, value in {**FAST_SRM, **overrides}.items():
        setattr(params, name, value)
    params.full_clean()
    params.save()
    return params


def reference_use_case(postgres, database_prefix: str, users: dict[str, str]) -> Scenario:
    """The reference use case for real node agents: cluster1 (persistent chat on) with 1A+1B and
    2A+2B in HA groups, each group on a new chat database; cluster2 with C2A alone; the
    ``users`` (user ID → node key), and the SRM's timers shortened. Node names are unique per
    call: the agents' chat bus is shared with other runs on this host."""
    scenario = Scenario(suffix=f"-{uuid.uuid4().hex[:6]}")
    cluster1 = scenario.cluster("cluster1", "imp1", persistent_chat=True)
    cluster2 = scenario.cluster("cluster2", "imp2")
    for key, cluster in (("1a", cluster1), ("1b", cluster1), ("2a", cluster1), ("2b", cluster1), ("c2a", cluster2)):
        scenario.node(key, cluster)
    for name, (first, second) in (("subcluster1", ("1a", "1b")), ("subcluster2", ("2a", "2b"))):
        scenario.group(name, first, second, ha=True)
        scenario.assign(chat_database(postgres, database_prefix), first, second)
    scenario.group("c2-subcluster1", "c2a")
    for user, key in users.items():
        scenario.user(user, key)
    fast_srm(cluster1)
    return scenario


def build_pair(postgres, names: tuple[str, str]) -> dict:
    """cluster1 with nodes ``names`` in an HA group sharing one persistent chat database, users
    Andy (home A) and Bob (home B), and the SRM's timers shortened."""
    scenario = Scenario()
    cluster = scenario.cluster("cluster1", "imp1", persistent_chat=True)
    nodes = {key: scenario.node(key, cluster, name) for key, name in zip(("a", "b"), names, strict=True)}
    group = scenario.group("subcluster1", "a", "b", ha=True)
    database = chat_database(postgres, "imp_srm")
    scenario.assign(database, "a", "b")
    scenario.user("andy", "a")
    scenario.user("bob", "b")
    fast_srm(cluster)
    return {"cluster": cluster, "group": group, "database": database, "db_name": database.database_name, **nodes}


@pytest.fixture
def pair(transactional_db, postgres):
    """Nodes imp-1a-<suffix> and imp-1b-<suffix> in an HA group (``build_pair``).

    Node names are unique per test: the agents' chat bus (Redis) is shared with other test
    runs on this host, and its channels are named after the nodes.
    """
    suffix = uuid.uuid4().hex[:6]
    return build_pair(postgres, (f"imp-1a-{suffix}", f"imp-1b-{suffix}"))


def tc_started(node: Node) -> bool:
    return Service.objects.filter(
        node=node, name=ServiceName.TEXT_CONFERENCE_MANAGER, status=ServiceStatus.STARTED
    ).exists()


def start_pair_with_xmpp(pair: dict, agents) -> None:
    """An XMPP client port on both nodes of ``pair`` (``build_pair``), their node agents
    started, and both Normal with their Text Conference Manager started."""
    a, b = pair["a"], pair["b"]
    give_xmpp_ports((a, b))
    for node in (a, b):
        agents(node.name)
    wait_for(
        lambda: all(state_of(n.name)[0] == HAState.NORMAL and tc_started(n) for n in (a, b)),
        90,
        "both nodes Normal with their Text Conference Manager started",
    )


def state_of(name: str) -> tuple[str, str]:
    node = Node.objects.get(name=name)
    return node.ha_state, node.ha_reason
