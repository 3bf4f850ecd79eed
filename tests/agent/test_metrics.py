"""Each node agent's Prometheus endpoint, scraped from real agents (``run_node --metrics-port``)
during chat and a failover; the SRM's timers shortened as in ``test_failover``."""

from __future__ import annotations

import asyncio
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.agent.conftest import state_of
from tests.agent.test_failover import both_normal, control
from tests.chat.conftest import signed_in
from tests.conftest import wait_for
from tests.scenario import free_port
from topology.choices import HAState

pytestmark = pytest.mark.slow

TC = "Cisco XCP Text Conference Manager"


def scrape(port: int) -> dict[tuple[str, tuple], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    values = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            values[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return values


def value(values, name: str, **labels) -> float:
    return values.get((name, tuple(sorted(labels.items()))), 0.0)


def test_agent_endpoint_counts_sessions_rooms_and_commits_and_follows_a_failover(pair, agents, operator_client):
    a, b = pair["a"], pair["b"]
    port_a, port_b = free_port(), free_port()
    agent_a = agents(a.name, "--metrics-port", str(port_a))
    agents(b.name, "--metrics-port", str(port_b))
    wait_for(lambda: both_normal(pair), 30, "both nodes Normal")
    wait_for(
        lambda: (
            value(scrape(port_a), "imp_node_ha_state", node=a.name, state=HAState.NORMAL) == 1
            and value(scrape(port_a), "imp_service_state", node=a.name, service=TC, status="started") == 1
        ),
        30,
        "A's endpoint shows Normal and TC started",
    )
    assert f"Metrics of {a.name} on http://127.0.0.1:{port_a}/metrics" in agent_a.log()
    idle = scrape(port_a)
    assert value(idle, "imp_router_sessions", node=a.name) == 0
    assert value(idle, "imp_tc_database_up", node=a.name) == 1
    assert value(scrape(port_b), "imp_tc_rooms_hosted", node=b.name) == 0

    async def chat():
        async with signed_in(a, "andy") as (andy,):
            room = (await andy.create("metrics"))["room"]
            await andy.join(room)
            for index in range(3):
                await andy.post(room, f"message {index}")
            return room, await asyncio.to_thread(scrape, port_a)

    _room, during = asyncio.run(chat())
    assert value(during, "imp_router_sessions", node=a.name) == 1
    assert value(during, "imp_tc_rooms_hosted", node=a.name) == 1
    assert value(during, "imp_tc_messages_committed_total", node=a.name) == 3
    assert value(during, "imp_tc_commit_seconds_count", node=a.name) >= 1
    assert value(during, "imp_tc_commit_seconds_bucket", node=a.name, le="+Inf") >= 1
    wait_for(lambda: value(scrape(port_a), "imp_router_sessions", node=a.name) == 0, 30, "Andy's session gone")

    control(operator_client, a, "stop")
    wait_for(lambda: state_of(b.name)[0] == HAState.RUNNING_IN_BACKUP_MODE, 30, "B Running in Backup Mode")
    wait_for(
        lambda: (
            value(scrape(port_b), "imp_node_ha_state", node=b.name, state=HAState.RUNNING_IN_BACKUP_MODE) == 1
            and value(scrape(port_b), "imp_tc_rooms_hosted", node=b.name) == 1
        ),
        30,
        "B's endpoint shows Running in Backup Mode with A's room",
    )
    assert value(scrape(port_b), "imp_node_ha_state", node=b.name, state=HAState.NORMAL) == 0
    failed = scrape(port_a)
    assert value(failed, "imp_node_ha_state", node=a.name, state=HAState.FAILED_OVER_CRITICAL_SERVICES_NOT_RUNNING)
    assert value(failed, "imp_service_state", node=a.name, service=TC, status="stopped") == 1
    assert value(failed, "imp_tc_rooms_hosted", node=a.name) == 0
    # The counter is per process: what A committed stays counted.
    assert value(failed, "imp_tc_messages_committed_total", node=a.name) == 3


def test_metrics_port_0_turns_the_endpoint_off(pair, agents):
    a = pair["a"]
    agent = agents(a.name, "--metrics-port", "0")
    wait_for(lambda: "Cisco XCP Router started" in agent.log(), 30, "A's XCP Router started")
    assert "Metrics of" not in agent.log()
