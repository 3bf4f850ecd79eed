from datetime import UTC, datetime

import pytest

from topology.models import Node


@pytest.mark.configdb
@pytest.mark.django_db
def test_topology_page_shows_demo_nodes_with_unknown_state_until_agents_report(super_client, demo_topology):
    response = super_client.get("/system/topology/")
    assert response.status_code == 200
    body = response.content.decode()
    for name in ("imp-1a", "imp-1b", "imp-2a", "imp-2b", "imp-c2a", "imp-c2b"):
        assert name in body
    assert "Node agent not reporting" in body
    assert ">Normal<" not in body


@pytest.mark.django_db
def test_a_node_page_gives_its_last_heartbeat_as_the_console_writes_dates(read_only_client, demo_topology):
    node = Node.objects.get(name="imp-1a")
    assert '<dd class="col-sm-9">never</dd>' in read_only_client.get(f"/system/nodes/{node.pk}/").content.decode()
    Node.objects.filter(pk=node.pk).update(last_heartbeat=datetime(2026, 12, 7, 10, 45, 3, tzinfo=UTC))
    page = read_only_client.get(f"/system/nodes/{node.pk}/").content.decode()
    assert 'Last heartbeat</dt><dd class="col-sm-9">2026-12-07 10:45:03</dd>' in page
