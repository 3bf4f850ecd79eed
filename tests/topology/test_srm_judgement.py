"""The Server Recovery Manager's judgement, read from the config DB (no agents): when a peer
whose critical service is down gets failed over, and with which reason; when a take-back failed;
when critical services are down on both nodes and the group fails."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from topology.agent.base import START_TIMEOUT
from topology.catalog import DesiredState, ServiceName, ServiceStatus
from topology.choices import HAReason, HAState
from topology.ha import transitions
from topology.ha.monitor import RecoveryManager
from topology.models import AlarmName, HAAlarm, HATransition, Node, Service, ServiceParameters

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


@pytest.fixture
def both_down(build):
    """A and B Normal in an HA group, both agents reporting; on each node the Text Conference
    Manager stopped ten minutes ago, the other services started."""
    cluster = build.cluster()
    a, b = build.node("imp-1a", cluster), build.node("imp-1b", cluster)
    group = build.group("subcluster1", a, b, ha=True)
    now = timezone.now()
    long_ago = now - timedelta(minutes=10)
    Node.objects.filter(pk__in=[a.pk, b.pk]).update(
        ha_state=HAState.NORMAL,
        ha_reason=HAReason.NORMAL,
        ha_state_changed_at=long_ago,
        last_heartbeat=now,
        heartbeat_expires_at=now + timedelta(minutes=5),
        agent_started_at=long_ago,
    )
    Service.objects.filter(node__in=[a, b]).update(status=ServiceStatus.STARTED, status_changed_at=long_ago)
    Service.objects.filter(node__in=[a, b], name=ServiceName.TEXT_CONFERENCE_MANAGER).update(
        status=ServiceStatus.STOPPED, status_changed_at=long_ago
    )
    return group, a, b


def states(*nodes: Node) -> list[tuple[str, str]]:
    return [Node.objects.filter(pk=n.pk).values_list("ha_state", "ha_reason").get() for n in nodes]


FAILED = (HAState.RUNNING_IN_FAILED_MODE, HAReason.CRITICAL_SERVICE_DOWN)


def test_critical_services_down_on_both_normal_nodes_past_the_delay_fail_the_group_and_nobody_is_taken_over(
    both_down,
):
    group, a, b = both_down
    assert RecoveryManager(a.pk).tick() is None
    assert states(a, b) == [FAILED, FAILED]
    assert list(HAAlarm.objects.values_list("name", "reason")) == [
        (AlarmName.SRM_FAILED, HAReason.CRITICAL_SERVICE_DOWN)
    ]
    assert not HATransition.objects.filter(to_state=HAState.TAKING_OVER).exists()
    assert not Node.objects.filter(rooms_hosted_by__isnull=False).exists()

    # B's SRM sees the same group: nothing more happens, and no second alarm.
    RecoveryManager(b.pk).tick()
    assert states(a, b) == [FAILED, FAILED] and HAAlarm.objects.count() == 1
    # A's TC comes back first: A does not take B over, the group waits for Recover.
    Service.objects.filter(node=a, name=ServiceName.TEXT_CONFERENCE_MANAGER).update(status=ServiceStatus.STARTED)
    RecoveryManager(a.pk).tick()
    RecoveryManager(b.pk).tick()
    assert states(a, b) == [FAILED, FAILED]
    assert HATransition.objects.filter(group=group).count() == 2


@pytest.mark.parametrize(
    "a_state, b_state",
    [
        (HAState.INITIALIZING, HAState.INITIALIZING),  # HA enabled, or Recover, with the services down
        (HAState.NORMAL, HAState.INITIALIZING),
        (HAState.INITIALIZING, HAState.NORMAL),
    ],
)
def test_critical_services_down_on_both_nodes_initializing_past_the_delay_fail_the_group(both_down, a_state, b_state):
    _group, a, b = both_down
    Node.objects.filter(pk=a.pk).update(ha_state=a_state, ha_reason=HAReason.INITIALIZATION)
    Node.objects.filter(pk=b.pk).update(ha_state=b_state, ha_reason=HAReason.INITIALIZATION)
    RecoveryManager(a.pk).tick()
    assert states(a, b) == [FAILED, FAILED]
    assert HAAlarm.objects.filter(name=AlarmName.SRM_FAILED).count() == 1


def test_nodes_that_just_began_initializing_get_the_whole_delay_to_bring_their_services_back(both_down):
    _group, a, b = both_down
    Node.objects.filter(pk__in=[a.pk, b.pk]).update(
        ha_state=HAState.INITIALIZING, ha_reason=HAReason.INITIALIZATION, ha_state_changed_at=timezone.now()
    )
    RecoveryManager(a.pk).tick()
    RecoveryManager(b.pk).tick()
    assert states(a, b) == [(HAState.INITIALIZING, HAReason.INITIALIZATION)] * 2
    assert not HAAlarm.objects.exists()


def test_a_node_whose_peer_lost_its_services_within_the_delay_waits_and_the_peer_coming_back_takes_it_over(
    both_down,
):
    _group, a, b = both_down
    params = ServiceParameters.for_cluster(a.cluster_id)
    almost = timezone.now() - timedelta(seconds=params.critical_service_delay - 30)
    Service.objects.filter(node=b, name=ServiceName.TEXT_CONFERENCE_MANAGER).update(status_changed_at=almost)
    RecoveryManager(a.pk).tick()
    RecoveryManager(b.pk).tick()
    assert states(a, b) == [(HAState.NORMAL, HAReason.NORMAL)] * 2
    # B's TC is back before its delay ran out: an ordinary automatic failover of A.
    Service.objects.filter(node=b, name=ServiceName.TEXT_CONFERENCE_MANAGER).update(status=ServiceStatus.STARTED)
    assert RecoveryManager(b.pk).tick() is not None
    assert states(a, b) == [
        (HAState.FAILED_OVER_CRITICAL_SERVICES_NOT_RUNNING, HAReason.CRITICAL_SERVICE_DOWN),
        (HAState.TAKING_OVER, HAReason.CRITICAL_SERVICE_DOWN),
    ]


def test_a_node_whose_services_are_down_does_not_fail_the_group_for_a_peer_whose_heartbeat_was_lost(both_down):
    """Its agent back, the silent peer initializes and takes this node over: no Recover needed."""
    _group, a, b = both_down
    Node.objects.filter(pk=b.pk).update(
        last_heartbeat=timezone.now() - timedelta(minutes=5), heartbeat_expires_at=timezone.now()
    )
    RecoveryManager(a.pk).tick()
    assert states(a, b) == [(HAState.NORMAL, HAReason.NORMAL)] * 2


def test_a_backup_losing_its_critical_services_after_an_automatic_failover_fails_both_nodes(both_down):
    """Reference 1.5: Running in Failed Mode / Critical Service Down on both, the backup also
    lost critical services."""
    _group, a, b = both_down
    Service.objects.filter(node=b, name=ServiceName.TEXT_CONFERENCE_MANAGER).update(status=ServiceStatus.STARTED)
    assert transitions.take_over(b.pk, a.pk, reason=HAReason.CRITICAL_SERVICE_DOWN)
    assert transitions.finish_take_over(b.pk, rooms_loaded=True)
    assert states(a, b)[1] == (HAState.RUNNING_IN_BACKUP_MODE, HAReason.CRITICAL_SERVICE_DOWN)
    Service.objects.filter(node=b, name=ServiceName.TEXT_CONFERENCE_MANAGER).update(
        status=ServiceStatus.STOPPED, status_changed_at=timezone.now() - timedelta(minutes=5)
    )
    RecoveryManager(a.pk).tick()  # the failed-over node waits
    assert states(a, b)[0] == (HAState.FAILED_OVER_CRITICAL_SERVICES_NOT_RUNNING, HAReason.CRITICAL_SERVICE_DOWN)
    RecoveryManager(b.pk).tick()
    assert states(a, b) == [FAILED, FAILED]
    assert HAAlarm.objects.filter(name=AlarmName.SRM_FAILED, reason=HAReason.CRITICAL_SERVICE_DOWN).count() == 1


def test_the_group_page_shows_both_nodes_failed_with_recover_and_says_to_start_the_services_first(
    both_down, operator_client
):
    group, a, b = both_down
    RecoveryManager(a.pk).tick()
    page = operator_client.get(f"/system/redundancy-groups/{group.pk}/").content.decode()
    for node in (a, b):
        assert f'data-node-state="{node.name}"><strong>Running in Failed Mode</strong>' in page
        assert f'data-node-reason="{node.name}">Critical Service Down</td>' in page
        assert f'data-start-services="{node.name}"' in page
    assert page.count('value="recover"') == 2
    assert 'value="failover"' not in page
    # A's services started: its row no longer asks for them, B's still does.
    Service.objects.filter(node=a, name=ServiceName.TEXT_CONFERENCE_MANAGER).update(status=ServiceStatus.STARTED)
    page = operator_client.get(f"/system/redundancy-groups/{group.pk}/").content.decode()
    assert f'data-start-services="{a.name}"' not in page and f'data-start-services="{b.name}"' in page
    assert page.count('value="recover"') == 2
