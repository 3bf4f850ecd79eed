"""Server Action buttons (Failover, Fallback, Recover) and automatic fallback with real agents."""

from __future__ import annotations

import pytest
from django.utils import timezone

from tests.agent.conftest import fast_srm, state_of
from tests.agent.test_control_center import press
from tests.conftest import wait_for
from topology.catalog import ServiceName, ServiceStatus
from topology.choices import HAReason, HAState
from topology.models import EndUser, HAAlarm, HATransition, Service

pytestmark = pytest.mark.slow

TC = ServiceName.TEXT_CONFERENCE_MANAGER


def server_action(client, group, node, action: str) -> str:
    response = client.post(
        f"/system/redundancy-groups/{group.pk}/server-action/", {"node": node.pk, "action": action}, follow=True
    )
    assert response.status_code == 200
    return response.content.decode()


def both(pair, state, reason) -> bool:
    return all(state_of(pair[key].name) == (state, reason) for key in ("a", "b"))


def test_manual_failover_idles_a_with_its_critical_services_stopped_and_fallback_brings_it_back(
    pair, agents, operator_client
):
    a, b, group = pair["a"], pair["b"], pair["group"]
    agents(a.name)
    agents(b.name)
    wait_for(lambda: both(pair, HAState.NORMAL, HAReason.NORMAL), 30, "both Normal")
    page = operator_client.get(f"/system/redundancy-groups/{group.pk}/").content.decode()
    assert page.count('value="failover"') == 2 and 'value="fallback"' not in page

    assert "Failover of" in server_action(operator_client, group, a, "failover")
    wait_for(
        lambda: (
            state_of(a.name) == (HAState.IDLE, HAReason.ON_ADMIN_REQUEST)
            and state_of(b.name) == (HAState.RUNNING_IN_BACKUP_MODE, HAReason.ON_ADMIN_REQUEST)
        ),
        30,
        "A Idle, B Running in Backup Mode, on admin request",
    )
    # A goes Idle once its Router is down; its TC's row says why a moment later, same reconcile pass.
    wait_for(lambda: Service.objects.get(node=a, name=TC).status == ServiceStatus.STOPPED, 30, "A's TC held stopped")
    assert [t.to_state for t in HATransition.objects.filter(node=a).order_by("at", "pk")][-2:] == [
        HAState.FAILING_OVER,
        HAState.IDLE,
    ]
    tc = Service.objects.get(node=a, name=TC)
    assert tc.status == ServiceStatus.STOPPED and "failed over" in tc.status_reason
    assert EndUser.objects.get(user_id="andy").active_node == b
    page = operator_client.get(f"/system/redundancy-groups/{group.pk}/").content.decode()
    assert 'value="fallback"' in page and 'value="failover"' not in page
    assert "On Admin Request" in page

    # A Failover pressed in a state that does not offer it is refused, with the reason.
    assert "is not offered while" in server_action(operator_client, group, a, "failover")

    server_action(operator_client, group, a, "fallback")
    wait_for(lambda: both(pair, HAState.NORMAL, HAReason.NORMAL), 30, "both Normal again")
    wait_for(lambda: Service.objects.get(node=a, name=TC).status == ServiceStatus.STARTED, 30, "A's TC running again")
    assert EndUser.objects.get(user_id="andy").active_node is None
    # Once both are Normal again the page tells the fallback as a thing of the past, with its time.
    page = operator_client.get(f"/system/redundancy-groups/{group.pk}/").content.decode()
    assert "Last Server Action, at " in page
    assert f"Fallback of {a} — {a} began taking back its users and rooms from {b}." in page


def test_a_backup_losing_its_own_critical_service_runs_both_in_failed_mode_until_recover(pair, agents, operator_client):
    a, b, group = pair["a"], pair["b"], pair["group"]
    agents(a.name)
    agents(b.name)
    wait_for(lambda: both(pair, HAState.NORMAL, HAReason.NORMAL), 30, "both Normal")
    server_action(operator_client, group, a, "failover")
    wait_for(lambda: state_of(b.name)[0] == HAState.RUNNING_IN_BACKUP_MODE, 30, "B in backup mode")

    press(operator_client, b, "stop")
    wait_for(
        lambda: both(pair, HAState.RUNNING_IN_FAILED_MODE, HAReason.CRITICAL_SERVICE_DOWN),
        30,
        "both Running in Failed Mode",
    )
    assert HAAlarm.objects.filter(name="UC_SRM-2-SRMFailed").exists()

    # Bringing B's TC back does not leave Failed Mode: only Recover does.
    press(operator_client, b, "start")
    wait_for(lambda: Service.objects.get(node=b, name=TC).status == ServiceStatus.STARTED, 30, "B's TC running again")
    page = operator_client.get(f"/system/redundancy-groups/{group.pk}/").content.decode()
    assert page.count('value="recover"') == 2
    assert both(pair, HAState.RUNNING_IN_FAILED_MODE, HAReason.CRITICAL_SERVICE_DOWN)

    recovered_at = timezone.now()
    assert "Recover of" in server_action(operator_client, group, a, "recover")
    wait_for(lambda: both(pair, HAState.NORMAL, HAReason.NORMAL), 30, "both Normal after Recover")
    # Normal is reached by the restarted SRMs, not by the ones Recover restarts.
    for node in (a, b):
        srm = Service.objects.get(node=node, name=ServiceName.SERVER_RECOVERY_MANAGER)
        assert srm.request_action == "restart" and srm.handled_request_number == srm.request_number
        assert srm.started_at >= recovered_at
        after_recover = HATransition.objects.filter(node=node, at__gte=recovered_at).order_by("at", "pk")
        assert [(t.to_state, t.reason) for t in after_recover] == [
            (HAState.INITIALIZING, HAReason.INITIALIZATION),
            (HAState.NORMAL, HAReason.NORMAL),
        ]
    assert EndUser.objects.get(user_id="andy").active_node is None
    page = operator_client.get(f"/system/redundancy-groups/{group.pk}/").content.decode()
    assert page.count('value="failover"') == 2 and 'value="recover"' not in page


def test_automatic_fallback_moves_users_back_once_the_failed_node_is_healthy_for_the_fallback_delay(
    pair, agents, operator_client
):
    a, b = pair["a"], pair["b"]
    fast_srm(pair["cluster"], enable_automatic_fallback=True, automatic_fallback_delay=1)
    agents(a.name)
    agents(b.name)
    wait_for(lambda: both(pair, HAState.NORMAL, HAReason.NORMAL), 30, "both Normal")
    press(operator_client, a, "stop")
    wait_for(lambda: state_of(b.name)[0] == HAState.RUNNING_IN_BACKUP_MODE, 30, "B in backup mode")
    press(operator_client, a, "start")
    wait_for(lambda: both(pair, HAState.NORMAL, HAReason.NORMAL), 30, "both Normal after automatic fallback")
    assert HATransition.objects.filter(
        node=a, to_state=HAState.TAKING_BACK, reason=HAReason.AUTOMATIC_FALLBACK
    ).exists()
    assert HATransition.objects.filter(
        node=b, to_state=HAState.FALLING_BACK, reason=HAReason.AUTOMATIC_FALLBACK
    ).exists()
    healthy = HATransition.objects.get(node=a, to_state=HAState.FAILED_OVER)
    taking_back = HATransition.objects.get(node=a, to_state=HAState.TAKING_BACK)
    assert (taking_back.at - healthy.at).total_seconds() >= 1
    assert EndUser.objects.get(user_id="andy").active_node is None


def test_an_srm_restarted_during_a_manual_failover_keeps_the_node_idle_for_initialization(
    pair, agents, operator_client
):
    a, b, group = pair["a"], pair["b"], pair["group"]
    first = agents(a.name)
    agents(b.name)
    wait_for(lambda: both(pair, HAState.NORMAL, HAReason.NORMAL), 30, "both Normal")
    server_action(operator_client, group, a, "failover")
    wait_for(lambda: state_of(a.name) == (HAState.IDLE, HAReason.ON_ADMIN_REQUEST), 30, "A Idle")

    first.terminate()
    agents(a.name)
    # Reference 1.5: "Idle / Initialization" beside "Running in Backup Mode / On Admin Request".
    wait_for(lambda: state_of(a.name) == (HAState.IDLE, HAReason.INITIALIZATION), 30, "A Idle for Initialization")
    assert state_of(b.name) == (HAState.RUNNING_IN_BACKUP_MODE, HAReason.ON_ADMIN_REQUEST)
    assert EndUser.objects.get(user_id="andy").active_node == b
    page = operator_client.get(f"/system/redundancy-groups/{group.pk}/").content.decode()
    assert 'value="fallback"' in page and "Initialization" in page

    server_action(operator_client, group, a, "fallback")
    wait_for(lambda: both(pair, HAState.NORMAL, HAReason.NORMAL), 30, "both Normal again")
    assert EndUser.objects.get(user_id="andy").active_node is None
