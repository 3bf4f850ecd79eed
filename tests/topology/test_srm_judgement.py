"""The Server Recovery Manager's judgement of its peer, read from the config DB (no agents):
when a peer whose critical service is down gets failed over, and with which reason."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from topology.catalog import ServiceName, ServiceStatus
from topology.choices import HAReason, HAState
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
