"""The Server Recovery Manager's judgement, read from the config DB (no agents): when a peer
whose critical service is down gets failed over, and with which reason; when a take-back failed."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from topology.agent.base import START_TIMEOUT
from topology.catalog import DesiredState, ServiceName, ServiceStatus
from topology.choices import HAReason, HAState
from topology.ha import transitions
from topology.ha.monitor import RecoveryManager
from topology.models import Node, Service, ServiceParameters

pytestmark = [pytest.mark.configdb, pytest.mark.django_db]


@pytest.fixture
def judged(build):
    """A and B in an HA group; B's agent reporting, B's TC stopped ten minutes ago."""
    cluster = build.cluster()
    a, b = build.node("imp-1a", cluster), build.node("imp-1b", cluster)
    build.group("subcluster1", a, b, ha=True)
    now = timezone.now()
    long_ago = now - timedelta(minutes=10)
    Node.objects.filter(pk=b.pk).update(
        last_heartbeat=now, heartbeat_expires_at=now + timedelta(seconds=60), agent_started_at=long_ago
    )
    Service.objects.filter(node=b).update(status=ServiceStatus.STARTED, status_changed_at=long_ago)
    Service.objects.filter(node=b, name=ServiceName.TEXT_CONFERENCE_MANAGER).update(
        status=ServiceStatus.STOPPED, status_changed_at=long_ago
    )
    return RecoveryManager(a.pk), b, ServiceParameters.for_cluster(cluster.pk), now


def test_a_normal_peer_whose_critical_service_is_down_past_the_delay_is_failed_over_for_critical_service_down(judged):
    srm, b, params, now = judged
    Node.objects.filter(pk=b.pk).update(ha_state=HAState.NORMAL, ha_state_changed_at=now - timedelta(minutes=20))
    verdict = srm.peer_verdict(Node.objects.get(pk=b.pk), params, now)
    assert (verdict.reason, verdict.failed_reason) == (HAReason.CRITICAL_SERVICE_DOWN, HAReason.CRITICAL_SERVICE_DOWN)


def test_a_peer_whose_tc_could_not_start_on_its_database_is_failed_over_for_database_failure(judged):
    srm, b, params, now = judged
    Node.objects.filter(pk=b.pk).update(ha_state=HAState.NORMAL, ha_state_changed_at=now - timedelta(minutes=20))
    Service.objects.filter(node=b, name=ServiceName.TEXT_CONFERENCE_MANAGER).update(
        status=ServiceStatus.NOT_RUNNING,
        status_reason="Persistent chat is enabled but the external database tcmadb is unreachable: …",
        database_failure=True,
    )
    b = Node.objects.get(pk=b.pk)
    verdict = srm.peer_verdict(b, params, now)
    assert (verdict.reason, verdict.failed_reason) == (HAReason.DATABASE_FAILURE, HAReason.DATABASE_FAILURE)
    # A TC stopped by hand is no database failure, whatever an earlier start left behind.
    Service.objects.filter(node=b, name=ServiceName.TEXT_CONFERENCE_MANAGER).update(status=ServiceStatus.STOPPED)
    assert srm.peer_verdict(b, params, now).reason == HAReason.CRITICAL_SERVICE_DOWN


def test_a_peer_that_just_started_initializing_gets_the_whole_critical_service_delay_to_bring_its_services_back(
    judged,
):
    srm, b, params, now = judged
    Node.objects.filter(pk=b.pk).update(ha_state=HAState.INITIALIZING, ha_state_changed_at=now)
    b = Node.objects.get(pk=b.pk)
    assert srm.peer_verdict(b, params, now) is None
    assert srm.peer_verdict(b, params, now + timedelta(seconds=params.critical_service_delay - 1)) is None
    verdict = srm.peer_verdict(b, params, now + timedelta(seconds=params.critical_service_delay))
    assert verdict.reason == HAReason.PEER_DOWN_DURING_INITIALIZATION
    assert verdict.failed_reason == HAReason.INITIALIZATION


@pytest.fixture
def taking_back(build):
    """A Taking Back since ten seconds ago, its Router started; the critical service delay is 2 s."""
    cluster = build.cluster()
    a, b = build.node("imp-1a", cluster), build.node("imp-1b", cluster)
    build.group("subcluster1", a, b, ha=True)
    params = ServiceParameters.objects.create(cluster=cluster, critical_service_delay=2)
    now = timezone.now()
    Node.objects.filter(pk=a.pk).update(ha_state=HAState.TAKING_BACK, ha_state_changed_at=now - timedelta(seconds=10))
    Service.objects.filter(node=a, name=ServiceName.XCP_ROUTER).update(status=ServiceStatus.STARTED)
    tc = Service.objects.get(node=a, name=ServiceName.TEXT_CONFERENCE_MANAGER)
    return Node.objects.get(pk=a.pk), tc, params, now


@pytest.mark.parametrize(
    "status, commanded_out, failed",
    [
        (ServiceStatus.STOPPED, False, False),  # the agent has not started it yet
        (ServiceStatus.STARTING, False, False),  # still starting: slow, not failed
        (ServiceStatus.STARTED, False, False),
        (ServiceStatus.NOT_RUNNING, False, True),  # its start failed
        (ServiceStatus.STOPPED, True, True),  # commanded out of service: it will not start
    ],
)
def test_a_take_back_has_failed_when_a_critical_service_failed_to_start_not_when_it_is_slow(
    taking_back, status, commanded_out, failed
):
    a, tc, params, now = taking_back
    Service.objects.filter(pk=tc.pk).update(
        status=status, desired_state=DesiredState.STOPPED if commanded_out else DesiredState.STARTED
    )
    assert RecoveryManager.take_back_failed(a, params, now) is failed


def test_a_take_back_is_not_judged_before_the_critical_service_delay_and_a_start_hanging_past_the_timeout_fails_it(
    taking_back,
):
    a, tc, params, now = taking_back
    Service.objects.filter(pk=tc.pk).update(status=ServiceStatus.NOT_RUNNING)
    assert RecoveryManager.take_back_failed(a, params, a.ha_state_changed_at + timedelta(seconds=1)) is False
    Service.objects.filter(pk=tc.pk).update(status=ServiceStatus.STARTING)
    assert RecoveryManager.take_back_failed(a, params, now) is False
    hung = a.ha_state_changed_at + timedelta(seconds=params.critical_service_delay + START_TIMEOUT)
    assert RecoveryManager.take_back_failed(a, params, hung) is True


def test_the_groups_states_change_with_a_take_over_whichever_srm_looks(judged):
    """What the agent compares after each tick to tell the router that users moved."""
    srm_a, b, _params, now = judged
    srm_b = RecoveryManager(b.pk)
    Node.objects.filter(pk__in=[srm_a.node_id, b.pk]).update(ha_state=HAState.NORMAL, ha_state_changed_at=now)
    before = (srm_a.group_states(), srm_b.group_states())
    assert before[0] == before[1] and len(before[0]) == 2
    assert transitions.take_over(srm_a.node_id, b.pk, reason=HAReason.CRITICAL_SERVICE_DOWN)
    after = (srm_a.group_states(), srm_b.group_states())
    assert after[0] == after[1] != before[0]
    assert {state for _pk, state, _at in after[0]} == {
        HAState.TAKING_OVER,
        HAState.FAILED_OVER_CRITICAL_SERVICES_NOT_RUNNING,
    }
