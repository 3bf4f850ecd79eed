"""Automatic failover and manual fallback with real node agents, a real config DB and a real
shared PostgreSQL persistent chat database; the SRM's timers shortened through its service
parameters (critical service delay 2 s, heartbeat every 0.3 s, timeout 3 s)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from tests.agent.conftest import fast_srm, state_of
from tests.chat.conftest import signed_in
from tests.conftest import wait_for
from topology import observed
from topology.catalog import ServiceName, ServiceStatus
from topology.choices import HAReason, HAState
from topology.models import EndUser, HAAlarm, HATransition, Node, Service

pytestmark = pytest.mark.slow


def both_normal(pair) -> bool:
    return all(state_of(pair[key].name) == (HAState.NORMAL, HAReason.NORMAL) for key in ("a", "b"))


def tc_of(node: Node) -> Service:
    return Service.objects.get(node=node, name=ServiceName.TEXT_CONFERENCE_MANAGER)


def control(client, node: Node, action: str, service: ServiceName = ServiceName.TEXT_CONFERENCE_MANAGER):
    """Press Start / Stop / Restart on Control Center – Feature Services, as the operator does."""
    row = Service.objects.get(node=node, name=service)
    page = "feature" if service == ServiceName.TEXT_CONFERENCE_MANAGER else "network"
    response = client.post(
        f"/serviceability/control-center/{page}/?server={node.pk}",
        {"server": node.pk, "service": row.pk, "action": action},
        follow=True,
    )
    assert response.status_code == 200
    return response.content.decode()


def post_before_failover(node: Node, messages: list[str]) -> str:
    async def scenario():
        async with signed_in(node, "andy") as (andy,):
            room = (await andy.create("ops"))["room"]
            await andy.join(room)
            for body in messages:
                await andy.post(room, body)
            return room

    return asyncio.run(scenario())


def history_seen_by_andy(node: Node, room: str) -> tuple[str, list[str]]:
    async def scenario():
        async with signed_in(node, "andy") as (andy,):
            reply = await andy.join(room, history=50)
            return andy.node, [message["body"] for message in reply.get("history", [])]

    return asyncio.run(scenario())


def test_stopping_tc_on_a_fails_it_over_to_b_after_the_critical_service_delay_then_fallback_restores_normal(
    pair, agents, operator_client
):
    a, b, group = pair["a"], pair["b"], pair["group"]
    agents(a.name)
    agents(b.name)
    wait_for(lambda: both_normal(pair), 30, "both nodes Normal")
    room = post_before_failover(a, ["before failover 1", "before failover 2"])

    page = control(operator_client, a, "stop")
    assert "Stop of Cisco XCP Text Conference Manager" in page
    wait_for(lambda: tc_of(a).status == ServiceStatus.STOPPED, 30, "TC on A stopped")
    page = operator_client.get(f"/serviceability/control-center/feature/?server={a.pk}").content.decode()
    assert "Commanded out of service" in page

    wait_for(
        lambda: (
            state_of(a.name) == (HAState.FAILED_OVER_CRITICAL_SERVICES_NOT_RUNNING, HAReason.CRITICAL_SERVICE_DOWN)
            and state_of(b.name) == (HAState.RUNNING_IN_BACKUP_MODE, HAReason.CRITICAL_SERVICE_DOWN)
        ),
        30,
        "A failed over to B",
    )
    # Not before the delay: the takeover was recorded at least 2 s after A's TC was seen down.
    takeover = HATransition.objects.get(node=b, to_state=HAState.TAKING_OVER)
    assert takeover.at - tc_of(a).status_changed_at >= timedelta(seconds=2)
    assert list(HATransition.objects.filter(node=b).order_by("at").values_list("to_state", flat=True))[-2:] == [
        HAState.TAKING_OVER,
        HAState.RUNNING_IN_BACKUP_MODE,
    ]
    assert EndUser.objects.get(user_id="andy").active_node == b
    assert EndUser.objects.get(user_id="bob").active_node is None  # Bob is at home on B
    assert observed.room_host(Node.objects.get(pk=a.pk)) == b
    alarm = HAAlarm.objects.get()
    assert alarm.text == f"UC_SRM-2-SRMFailover: FromNode {a} ToNode {b} Reason Critical Service Down"

    group_page = operator_client.get(f"/system/redundancy-groups/{group.pk}/").content.decode()
    assert "Failed Over with Critical Services Not Running" in group_page
    assert "Running in Backup Mode" in group_page
    assert "Critical Service Down" in group_page
    assert "Taking Over" in group_page  # in the timeline
    assert 'value="fallback"' not in group_page  # A's critical services are not running yet
    assert "Fallback is offered once its critical services run again: start them in the" in group_page
    assert f'href="/serviceability/control-center/feature/?server={a.pk}"' in group_page

    # B serves A's room now, with the history stored before the failover (from the shared database).
    served_by, history = history_seen_by_andy(b, room)
    assert served_by == b.name
    assert history == ["before failover 1", "before failover 2"]

    control(operator_client, a, "start")
    wait_for(lambda: state_of(a.name)[0] == HAState.FAILED_OVER, 30, "A Failed Over")
    group_page = operator_client.get(f"/system/redundancy-groups/{group.pk}/").content.decode()
    assert 'value="fallback"' in group_page
    assert 'value="failover"' not in group_page
    assert "Fallback is offered once" not in group_page

    response = operator_client.post(
        f"/system/redundancy-groups/{group.pk}/server-action/", {"node": a.pk, "action": "fallback"}, follow=True
    )
    assert "Fallback of" in response.content.decode()
    wait_for(lambda: both_normal(pair), 30, "both Normal after fallback")
    a_states = list(HATransition.objects.filter(node=a).order_by("at", "pk").values_list("to_state", "reason"))
    b_states = list(HATransition.objects.filter(node=b).order_by("at", "pk").values_list("to_state", "reason"))
    assert a_states[-2:] == [(HAState.TAKING_BACK, HAReason.ON_ADMIN_REQUEST), (HAState.NORMAL, HAReason.NORMAL)]
    assert b_states[-2:] == [(HAState.FALLING_BACK, HAReason.ON_ADMIN_REQUEST), (HAState.NORMAL, HAReason.NORMAL)]
    assert EndUser.objects.get(user_id="andy").active_node is None
    assert observed.room_host(Node.objects.get(pk=a.pk)) == Node.objects.get(pk=a.pk)
    served_by, history = history_seen_by_andy(a, room)
    assert served_by == a.name
    assert history == ["before failover 1", "before failover 2"]


def test_a_critical_service_outage_shorter_than_the_delay_causes_no_failover(pair, agents, operator_client):
    a, b = pair["a"], pair["b"]
    # A delay the Stop-then-Start below stays well inside even on a busy machine.
    delay = timedelta(seconds=8)
    fast_srm(pair["cluster"], critical_service_delay=delay.total_seconds())
    agents(a.name)
    agents(b.name)
    wait_for(lambda: both_normal(pair), 30, "both nodes Normal")
    control(operator_client, a, "stop")
    wait_for(lambda: tc_of(a).status == ServiceStatus.STOPPED, 30, "TC on A stopped")
    down_at = tc_of(a).status_changed_at
    control(operator_client, a, "start")
    wait_for(lambda: tc_of(a).status == ServiceStatus.STARTED, 30, "TC on A started")
    assert tc_of(a).status_changed_at - down_at < delay
    # Watch until past the delay counted from the outage: B's SRM ticks every 0.3 s and must not take over.
    wait_for(
        lambda: Node.objects.get(pk=b.pk).last_heartbeat > down_at + delay + timedelta(seconds=1),
        30,
        "B's SRM to have looked at A past the delay",
    )
    assert both_normal(pair)
    assert not HATransition.objects.filter(to_state=HAState.TAKING_OVER).exists()
    assert EndUser.objects.get(user_id="andy").active_node is None


def test_no_failover_when_high_availability_is_disabled_on_the_group(pair, agents, operator_client):
    a, b, group = pair["a"], pair["b"], pair["group"]
    group.ha_enabled = False
    group.save()
    agents(a.name)
    agents(b.name)
    wait_for(
        lambda: (
            all(state_of(n.name) == (HAState.UNKNOWN, HAReason.HA_NOT_ENABLED) for n in (a, b))
            and Service.objects.filter(node__in=[a, b], status=ServiceStatus.STARTED).count() == 6
        ),
        30,
        "both nodes report HA not enabled",
    )
    control(operator_client, a, "stop")
    wait_for(lambda: tc_of(a).status == ServiceStatus.STOPPED, 30, "TC on A stopped")
    wait_for(
        lambda: Node.objects.get(pk=b.pk).last_heartbeat > tc_of(a).status_changed_at + timedelta(seconds=4),
        30,
        "B alive well past the critical service delay",
    )
    assert state_of(b.name) == (HAState.UNKNOWN, HAReason.HA_NOT_ENABLED)
    assert not HATransition.objects.filter(to_state=HAState.TAKING_OVER).exists()
    assert EndUser.objects.get(user_id="andy").active_node is None


def test_a_killed_agent_is_failed_over_by_its_peer_when_the_heartbeat_times_out(pair, agents, operator_client):
    a, b, group = pair["a"], pair["b"], pair["group"]
    agent_a = agents(a.name)
    agents(b.name)
    wait_for(lambda: both_normal(pair), 30, "both nodes Normal")
    agent_a.kill()
    wait_for(
        lambda: state_of(b.name) == (HAState.RUNNING_IN_BACKUP_MODE, HAReason.PEER_DOWN),
        30,
        "B took over with Peer Down",
    )
    a_now = Node.objects.get(pk=a.pk)
    takeover = HATransition.objects.get(node=b, to_state=HAState.TAKING_OVER)
    assert takeover.at - a_now.last_heartbeat >= timedelta(seconds=3)  # not before the heartbeat timeout
    assert EndUser.objects.get(user_id="andy").active_node == b
    group_page = operator_client.get(f"/system/redundancy-groups/{group.pk}/").content.decode()
    assert "Peer Down" in group_page
    assert "Node agent not reporting" in group_page  # A's row

    # A comes back: it stays failed over, with its services running, until a fallback.
    agents(a.name)
    wait_for(lambda: state_of(a.name)[0] == HAState.FAILED_OVER, 30, "A back as Failed Over")
    assert EndUser.objects.get(user_id="andy").active_node == b


def test_a_clean_stop_reports_every_service_stopped_and_the_node_not_reporting(pair, agents, operator_client):
    a = pair["a"]
    agent = agents(a.name)
    wait_for(
        lambda: Service.objects.filter(node=a, status=ServiceStatus.STARTED).count() == 3, 30, "A's services started"
    )
    assert agent.terminate() == 0
    statuses = set(Service.objects.filter(node=a).values_list("status", "status_reason"))
    assert statuses == {(ServiceStatus.STOPPED, "The node agent stopped.")}
    page = operator_client.get(f"/serviceability/control-center/network/?server={a.pk}").content.decode()
    assert "not reporting" in page
    assert Node.objects.get(pk=a.pk).agent_started_at is None


def test_the_chat_command_follows_a_failover_by_itself_and_keeps_showing_the_room(pair, agents, operator_client):
    """The README's story by hand: Andy's ``manage.py chat --tail`` on A, TC on A stopped, and
    Andy's terminal moves to B by itself and keeps showing the room."""
    import queue
    import subprocess
    import sys
    import threading
    import time

    from tests.agent.conftest import ROOT, agent_env
    from tests.conftest import chat_password

    a, b = pair["a"], pair["b"]
    agents(a.name)
    agents(b.name)
    wait_for(lambda: both_normal(pair), 30, "both nodes Normal")
    room = post_before_failover(a, ["before the failover"])

    tail = subprocess.Popen(
        [
            *(sys.executable, "manage.py", "chat", "andy", "--password", chat_password("andy")),
            *("--room", room, "--tail", "--count", "1", "--timeout", "60"),
        ],
        cwd=ROOT,
        env=agent_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line.rstrip("\n")) for line in tail.stdout], daemon=True).start()
    seen: list[str] = []

    def shown(text: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not any(text in line for line in seen):
            try:
                seen.append(lines.get(timeout=max(0.1, deadline - time.monotonic())))
            except queue.Empty:
                raise AssertionError(f"the chat client never showed {text!r}; it showed {seen}") from None

    try:
        shown(f"Signed in as andy@example.com on {a.name}.")
        shown("[1] andy: before the failover")
        control(operator_client, a, "stop")
        shown(f"* reconnecting to {b.name}")
        shown(f"* signed in again on {b.name}")

        async def bob_posts():
            async with signed_in(b, "bob") as (bob,):
                await bob.join(room)
                return await bob.post(room, "after the failover")

        ack = asyncio.run(bob_posts())
        shown(f"[{ack['msg_id']}] bob: after the failover")
        assert tail.wait(30) == 0  # --count 1: the one message after the join
    finally:
        if tail.poll() is None:
            tail.kill()
    assert state_of(b.name)[0] == HAState.RUNNING_IN_BACKUP_MODE
