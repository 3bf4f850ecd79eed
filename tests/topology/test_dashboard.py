"""The home dashboard: the deployment at a glance, with SRM alarms and recent changes."""

import pytest

from topology.choices import HAReason
from topology.models import HAAlarm, Node
from topology.models.ha import AlarmName

pytestmark = pytest.mark.django_db


def test_dashboard_counts_nodes_groups_and_users_of_the_demo(read_only_client, demo_topology):
    page = read_only_client.get("/").content.decode()
    assert "0 / 6" in page  # no node agent reports in this test
    assert "2 / 3" in page  # two of three groups have HA
    assert "No Server Recovery Manager alarms." in page


def test_dashboard_shows_a_failover_alarm(read_only_client, demo_topology):
    group = Node.objects.get(name="imp-1a").redundancy_group
    HAAlarm.objects.create(
        name=AlarmName.SRM_FAILOVER,
        group=group,
        from_node=Node.objects.get(name="imp-1a"),
        to_node=Node.objects.get(name="imp-1b"),
        reason=HAReason.CRITICAL_SERVICE_DOWN,
    )
    page = read_only_client.get("/").content.decode()
    assert "UC_SRM-2-SRMFailover: FromNode imp-1a ToNode imp-1b Reason Critical Service Down" in page
