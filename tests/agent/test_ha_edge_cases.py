"""Edge cases of high availability with real node agents: HA switched off during a failover,
Server Actions on a node whose agent is down, a take-back whose services do not start, and
critical services down on both nodes."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from django.utils import timezone

from messaging.chat.client import ChatClientError
from tests.agent.conftest import fast_srm, state_of
from tests.agent.test_failover import history_seen_by_andy, post_before_failover
from tests.agent.test_server_actions import both, server_action
from tests.chat.conftest import signed_in
from tests.conftest import wait_for
from topology import observed
from topology.catalog import ServiceName, ServiceStatus
from topology.choices import HAReason, HAState
from topology.models import EndUser, HAAlarm, HATransition, Node, ServerAction, ServerActionStatus, Service

pytestmark = pytest.mark.slow

TC = ServiceName.TEXT_CONFERENCE_MANAGER


def tc_of(node: Node) -> Service:
    return Service.objects.get(node=node, name=TC)


def control(client, node: Node, action: str) -> str:
    row = tc_of(node)
    return client.post(
        f"/serviceability/control-center/feature/?server={node.pk}",
        {"server": node.pk, "service": row.pk, "action": action},
        follow=True,
    ).content.decode()


def group_page(client, group) -> str:
    return client.get(f"/system/redundancy-groups/{group.pk}/").content.decode()


def join_refused(node: Node, room: str) -> ChatClientError:
    """What Andy, signed in on ``node``, is told when he enters ``room``."""

    async def scenario():
        async with signed_in(node, "andy") as (andy,):
            with pytest.raises(ChatClientError) as refused:
                await andy.join(room)
            return refused.value

    return asyncio.run(scenario())


def set_ha(client, group, enabled: bool) -> str:
    a, b = group.servers()
    data = {"name": group.name, "description": group.description, "server1": a.pk, "server2": b.pk}
    if enabled:
        data["ha_enabled"] = "on"
    response = client.post(f"/system/redundancy-groups/{group.pk}/edit/", data, follow=True)
    assert response.status_code == 200
    return response.content.decode()


def test_disabling_ha_during_a_failover_keeps_users_on_the_backup_until_the_home_node_is_healthy_then_hands_back(
    pair, agents, operator_client, super_client
):
    a, b, group = pair["a"], pair["b"], pair["group"]
    agents(a.name)
    agents(b.name)
    wait_for(lambda: both(pair, HAState.NORMAL, HAReason.NORMAL), 30, "both Normal")
    room = post_before_failover(a, ["before failover"])
    control(operator_client, a, "stop")
    wait_for(lambda: state_of(b.name)[0] == HAState.RUNNING_IN_BACKUP_MODE, 30, "B in backup mode")

    disabled_at = timezone.now()
    page = set_ha(super_client, group, enabled=False)
    assert "Presence redundancy group subcluster1 saved." in page
    assert f"still on {b.name}: they go back to {a.name} as soon as it is healthy" in page
    # A's TC is still stopped: nobody could serve A's users at home, so they stay on B.
    wait_for(
        lambda: Node.objects.get(pk=b.pk).last_heartbeat > disabled_at + timedelta(seconds=1),
        30,
        "B's agent to run a second with HA off",
    )
    assert state_of(b.name) == (HAState.RUNNING_IN_BACKUP_MODE, HAReason.CRITICAL_SERVICE_DOWN)
    assert EndUser.objects.get(user_id="andy").active_node == b
    assert observed.room_host(Node.objects.get(pk=a.pk)) == b

    control(operator_client, a, "start")
    wait_for(
        lambda: both(pair, HAState.UNKNOWN, HAReason.HA_NOT_ENABLED), 30, "both nodes High Availability Not Enabled"
    )
    assert EndUser.objects.get(user_id="andy").active_node is None
    assert observed.room_host(Node.objects.get(pk=a.pk)) == Node.objects.get(pk=a.pk)
    a_states = list(HATransition.objects.filter(node=a).order_by("at", "pk").values_list("to_state", "reason"))
    assert a_states[-3:] == [
        (HAState.TAKING_BACK, HAReason.HA_NOT_ENABLED),
        (HAState.NORMAL, HAReason.NORMAL),
        (HAState.UNKNOWN, HAReason.HA_NOT_ENABLED),
    ]
    page = group_page(operator_client, group)
    assert "data-handing-back" not in page
    assert page.count("High Availability Not Enabled") >= 2
    assert 'value="failover"' not in page and 'value="fallback"' not in page
    served_by, history = history_seen_by_andy(a, room)
    assert (served_by, history) == (a.name, ["before failover"])


def test_a_failover_pressed_for_a_node_whose_agent_is_not_reporting_is_refused_with_the_reason(
    pair, agents, operator_client
):
    a, b, group = pair["a"], pair["b"], pair["group"]
    # A long heartbeat timeout and critical service delay: B fails the silent A over neither for
    # its heartbeat nor for its services, stopped with the agent, however slowly this test runs.
    fast_srm(pair["cluster"], heartbeat_timeout=60, initialization_heartbeat_timeout=60, critical_service_delay=60)
    agent_a = agents(a.name)
    agents(b.name)
    wait_for(lambda: both(pair, HAState.NORMAL, HAReason.NORMAL), 30, "both Normal")
    assert agent_a.terminate() == 0

    page = server_action(operator_client, group, a, "failover")
    assert f"Failover of {a.name} refused: its node agent is not reporting" in page
    assert f"The Server Recovery Manager of {b.name} fails it over by itself once its heartbeat times out." in page
    page = server_action(operator_client, group, b, "failover")
    assert f"Failover of {b.name} refused: the node agent of {a.name} is not reporting" in page
    assert not ServerAction.objects.exists()
    assert both(pair, HAState.NORMAL, HAReason.NORMAL)

    page = group_page(operator_client, group)
    assert 'value="failover"' not in page
    assert "Node agent not reporting" in page  # A's row
    assert f"the node agent of {a.name} is not reporting, so it could not take over {b.name}&#x27;s users" in page


def test_a_node_whose_agent_dies_during_a_manual_failover_is_idled_by_its_peer_instead_of_staying_failing_over(
    pair, agents, operator_client
):
    a, b, group = pair["a"], pair["b"], pair["group"]
    # Long enough for B to claim the Failover before A's heartbeat times out (B ticks every 0.3 s).
    fast_srm(pair["cluster"], heartbeat_timeout=6)
    agent_a = agents(a.name)
    agents(b.name)
    wait_for(lambda: both(pair, HAState.NORMAL, HAReason.NORMAL), 30, "both Normal")
    agent_a.kill()  # A's agent dies; its heartbeat is still within the timeout

    assert f"Failover of {a.name} requested" in server_action(operator_client, group, a, "failover")
    wait_for(
        lambda: (
            state_of(b.name) == (HAState.RUNNING_IN_BACKUP_MODE, HAReason.ON_ADMIN_REQUEST)
            and state_of(a.name) == (HAState.IDLE, HAReason.ON_ADMIN_REQUEST)
        ),
        30,
        "B in backup mode and A Idle",
    )
    idle = HATransition.objects.get(node=a, to_state=HAState.IDLE)
    assert (idle.from_state, idle.recorded_by) == (HAState.FAILING_OVER, b)  # B finished A's side
    assert idle.at - Node.objects.get(pk=a.pk).last_heartbeat >= timedelta(seconds=6)
    assert ServerAction.objects.get().status == ServerActionStatus.APPLIED
    assert EndUser.objects.get(user_id="andy").active_node == b
    page = group_page(operator_client, group)
    assert "Failing Over" in page and "Idle" in page  # the timeline
    assert "Running in Backup Mode" in page

    # A's agent comes back: A stays Idle with its critical services held down, and Fallback is offered.
    agents(a.name)
    wait_for(lambda: Node.objects.get(pk=a.pk).agent_reporting, 30, "A reporting again")
    wait_for(lambda: tc_of(a).status == ServiceStatus.STOPPED and tc_of(a).status_reason, 30, "A's TC held stopped")
    assert "failed over" in tc_of(a).status_reason
    page = group_page(operator_client, group)
    assert 'value="fallback"' in page
    server_action(operator_client, group, a, "fallback")
    wait_for(lambda: both(pair, HAState.NORMAL, HAReason.NORMAL), 30, "both Normal after Fallback")
    assert EndUser.objects.get(user_id="andy").active_node is None


def test_a_take_back_whose_critical_service_does_not_start_runs_both_in_failed_mode_until_recover(
    pair, agents, operator_client
):
    a, b, group = pair["a"], pair["b"], pair["group"]
    agents(a.name)
    agents(b.name)
    wait_for(lambda: both(pair, HAState.NORMAL, HAReason.NORMAL), 30, "both Normal")
    server_action(operator_client, group, a, "failover")
    wait_for(lambda: state_of(a.name)[0] == HAState.IDLE, 30, "A Idle")
    control(operator_client, a, "stop")  # commanded out of service: it will not start on take-back

    server_action(operator_client, group, a, "fallback")
    wait_for(
        lambda: both(pair, HAState.RUNNING_IN_FAILED_MODE, HAReason.START_OF_CRITICAL_SERVICES_FAILED),
        30,
        "both Running in Failed Mode, Start of Critical Services Failed",
    )
    taking_back = HATransition.objects.get(node=a, to_state=HAState.TAKING_BACK)
    failed = HATransition.objects.get(node=a, to_state=HAState.RUNNING_IN_FAILED_MODE)
    assert failed.at - taking_back.at >= timedelta(seconds=2)  # the critical service delay
    page = group_page(operator_client, group)
    assert page.count('value="recover"') == 2
    assert "Start of Critical Services Failed" in page

    control(operator_client, a, "start")
    wait_for(lambda: tc_of(a).status == ServiceStatus.STARTED, 30, "A's TC running")
    server_action(operator_client, group, a, "recover")
    wait_for(lambda: both(pair, HAState.NORMAL, HAReason.NORMAL), 30, "both Normal after Recover")
    assert EndUser.objects.get(user_id="andy").active_node is None
    assert observed.room_host(Node.objects.get(pk=a.pk)) == Node.objects.get(pk=a.pk)


def test_tc_stopped_on_both_nodes_runs_both_in_failed_mode_with_nobody_taken_over_until_recover(
    pair, agents, operator_client
):
    a, b, group = pair["a"], pair["b"], pair["group"]
    # A delay long enough that both Stops are carried out within it however slowly this test
    # runs: otherwise B would first take A over, then fail as a backup (a row of its own).
    delay = 6
    fast_srm(pair["cluster"], critical_service_delay=delay)
    agents(a.name)
    agents(b.name)
    wait_for(lambda: both(pair, HAState.NORMAL, HAReason.NORMAL), 30, "both Normal")
    room = post_before_failover(a, ["before both failed"])

    control(operator_client, a, "stop")
    control(operator_client, b, "stop")
    wait_for(
        lambda: both(pair, HAState.RUNNING_IN_FAILED_MODE, HAReason.CRITICAL_SERVICE_DOWN),
        30,
        "both Running in Failed Mode, Critical Service Down",
    )
    stopped = min(tc_of(n).status_changed_at for n in (a, b))
    failed = HATransition.objects.filter(to_state=HAState.RUNNING_IN_FAILED_MODE).order_by("at").first()
    assert failed.at - stopped >= timedelta(seconds=delay)
    assert not HATransition.objects.filter(to_state=HAState.TAKING_OVER).exists()
    assert not EndUser.objects.filter(active_node__isnull=False).exists()
    alarm = HAAlarm.objects.get()
    assert alarm.text == f"UC_SRM-2-SRMFailed: Node {alarm.from_node} Reason Critical Service Down"
    assert alarm.text in operator_client.get("/").content.decode()  # the dashboard's alarms
    page = group_page(operator_client, group)
    for node in (a, b):
        assert f'data-node-state="{node.name}"><strong>Running in Failed Mode</strong>' in page
        assert f'data-node-reason="{node.name}">Critical Service Down</td>' in page
    assert page.count('value="recover"') == 2 and 'value="failover"' not in page
    assert page.count("before Recover, which restarts the Server Recovery Managers only") == 2
    # Andy still signs in at home, but nobody serves his rooms: he is told to try again.
    refused = join_refused(a, room)
    assert (refused.code, refused.retry) == ("room-unavailable", True)

    # Recover with the services still stopped: both initialize, then fail again after the delay.
    pressed = timezone.now()
    assert "Recover of" in server_action(operator_client, group, a, "recover")
    wait_for(
        lambda: (
            both(pair, HAState.RUNNING_IN_FAILED_MODE, HAReason.CRITICAL_SERVICE_DOWN) and HAAlarm.objects.count() == 2
        ),
        30,
        "both Running in Failed Mode again, a second alarm",
    )
    initializing = HATransition.objects.filter(to_state=HAState.INITIALIZING, at__gte=pressed).order_by("at")
    again = HATransition.objects.filter(to_state=HAState.RUNNING_IN_FAILED_MODE, at__gte=pressed).order_by("at")
    assert initializing.count() == 2 and again.count() == 2
    assert again.first().at - initializing.last().at >= timedelta(seconds=delay)

    # A's TC comes back first: A takes nobody over, the group waits for Recover.
    control(operator_client, a, "start")
    wait_for(lambda: tc_of(a).status == ServiceStatus.STARTED, 30, "A's TC running again")
    back = tc_of(a).status_changed_at
    wait_for(
        lambda: Node.objects.get(pk=a.pk).last_heartbeat > back + timedelta(seconds=delay + 1),
        30,
        "A's agent to run past the critical service delay with its TC back",
    )
    assert both(pair, HAState.RUNNING_IN_FAILED_MODE, HAReason.CRITICAL_SERVICE_DOWN)
    assert not HATransition.objects.filter(to_state=HAState.TAKING_OVER).exists()
    page = group_page(operator_client, group)
    assert f'data-start-services="{a.name}"' not in page and f'data-start-services="{b.name}"' in page

    control(operator_client, b, "start")
    wait_for(lambda: tc_of(b).status == ServiceStatus.STARTED, 30, "B's TC running again")
    recovered_at = timezone.now()
    server_action(operator_client, group, b, "recover")
    wait_for(lambda: both(pair, HAState.NORMAL, HAReason.NORMAL), 30, "both Normal after Recover")
    for node in (a, b):
        after_recover = HATransition.objects.filter(node=node, at__gte=recovered_at).order_by("at", "pk")
        assert [(t.to_state, t.reason) for t in after_recover] == [
            (HAState.INITIALIZING, HAReason.INITIALIZATION),
            (HAState.NORMAL, HAReason.NORMAL),
        ]
    assert not HATransition.objects.filter(to_state=HAState.TAKING_OVER).exists()
    page = group_page(operator_client, group)
    assert page.count('value="failover"') == 2 and 'value="recover"' not in page
    assert observed.room_host(Node.objects.get(pk=a.pk)) == Node.objects.get(pk=a.pk)
    served_by, history = history_seen_by_andy(a, room)
    assert (served_by, history) == (a.name, ["before both failed"])
