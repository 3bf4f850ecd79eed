import pytest


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
