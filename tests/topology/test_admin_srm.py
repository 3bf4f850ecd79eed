"""Django admin pages for services, SRM parameters and what the SRM records."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User

from topology.catalog import ControlAction, DesiredState, ServiceName
from topology.choices import HAReason, HAState
from topology.models import (
    AlarmName,
    HAAlarm,
    HATransition,
    NodeServiceParameters,
    ServerAction,
    Service,
    ServiceParameters,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client, db):
    user = User.objects.create_superuser("root", "root@example.com", "root-password-123")
    client.force_login(user)
    return client


@pytest.fixture
def recorded(build):
    """Two groups' worth of nodes with services, transitions, alarms and Server Actions."""
    cluster = build.cluster()
    nodes = [build.node(f"imp-{i}", cluster) for i in range(4)]
    groups = [build.group("sub1", nodes[0], nodes[1], ha=True), build.group("sub2", nodes[2], nodes[3], ha=True)]
    for group, (a, b) in zip(groups, [nodes[:2], nodes[2:]], strict=True):
        HATransition.objects.create(
            group=group,
            node=a,
            from_state=HAState.NORMAL,
            to_state=HAState.FAILING_OVER,
            reason=HAReason.ON_ADMIN_REQUEST,
            recorded_by=b,
        )
        HAAlarm.objects.create(
            name=AlarmName.SRM_FAILOVER, group=group, from_node=a, to_node=b, reason=HAReason.ON_ADMIN_REQUEST
        )
        ServerAction.objects.create(group=group, node=a, action="failover")
    return cluster, nodes, groups


@pytest.mark.parametrize(
    "model, text",
    [
        ("service", "Cisco XCP Text Conference Manager"),
        ("hatransition", "Failing Over"),
        ("haalarm", "UC_SRM-2-SRMFailover"),
        ("serveraction", "Waiting for the Server Recovery Manager"),
    ],
)
def test_each_srm_admin_list_shows_its_rows_in_a_fixed_number_of_queries(
    admin_client, recorded, django_assert_max_num_queries, model, text
):
    with django_assert_max_num_queries(12):
        response = admin_client.get(f"/admin/topology/{model}/")
    assert response.status_code == 200
    page = response.content.decode()
    assert text in page and "imp-0" in page and "imp-2" in page


def test_transitions_alarms_and_server_actions_are_read_only_in_the_admin(admin_client, recorded):
    transition, action = HATransition.objects.first(), ServerAction.objects.first()
    assert admin_client.get("/admin/topology/hatransition/add/").status_code == 403
    assert admin_client.get("/admin/topology/serveraction/add/").status_code == 403
    page = admin_client.get(f"/admin/topology/hatransition/{transition.pk}/change/").content.decode()
    assert "Failing Over" in page and 'name="to_state"' not in page
    page = admin_client.get(f"/admin/topology/serveraction/{action.pk}/change/").content.decode()
    assert 'name="status"' not in page and 'name="action"' not in page


def test_the_agent_reported_status_of_a_service_is_shown_but_not_editable(admin_client, recorded):
    _, nodes, _ = recorded
    tc = Service.objects.get(node=nodes[0], name=ServiceName.TEXT_CONFERENCE_MANAGER)
    page = admin_client.get(f"/admin/topology/service/{tc.pk}/change/").content.decode()
    assert "Status as the node agent last observed it." in page
    for field in ("status", "status_reason", "desired_state", "request_number", "handled_request_number"):
        assert f'name="{field}"' not in page, field
    assert admin_client.get("/admin/topology/service/add/").status_code == 403


def test_stopping_the_xcp_router_from_the_admin_stops_tc_with_it_as_control_center_requests(admin_client, recorded):
    _, nodes, _ = recorded
    router = Service.objects.get(node=nodes[0], name=ServiceName.XCP_ROUTER)
    response = admin_client.post(
        "/admin/topology/service/", {"action": "stop_services", "_selected_action": [router.pk]}, follow=True
    )
    page = response.content.decode()
    assert "Stop requested: Cisco XCP Router on imp-0 (and Cisco XCP Text Conference Manager)." in page
    tc = Service.objects.get(node=nodes[0], name=ServiceName.TEXT_CONFERENCE_MANAGER)
    router.refresh_from_db()
    assert (router.desired_state, router.request_action, router.request_number) == (
        DesiredState.STOPPED,
        ControlAction.STOP,
        1,
    )
    assert (tc.desired_state, tc.request_action, tc.request_number) == (DesiredState.STOPPED, ControlAction.STOP, 1)
    other_tc = Service.objects.get(node=nodes[1], name=ServiceName.TEXT_CONFERENCE_MANAGER)
    assert other_tc.desired_state == DesiredState.STARTED


def test_a_deactivated_service_is_not_started_from_the_admin(admin_client, recorded):
    _, nodes, _ = recorded
    tc = Service.objects.get(node=nodes[0], name=ServiceName.TEXT_CONFERENCE_MANAGER)
    tc.request(ControlAction.DEACTIVATE)
    response = admin_client.post(
        "/admin/topology/service/", {"action": "start_services", "_selected_action": [tc.pk]}, follow=True
    )
    assert "Not activated, so not started: Cisco XCP Text Conference Manager on imp-0." in response.content.decode()
    assert Service.objects.get(pk=tc.pk).request_action == ControlAction.DEACTIVATE


def test_srm_parameters_in_the_admin_are_validated_as_on_the_console_page(admin_client, recorded):
    cluster, _, _ = recorded
    data = {
        "cluster": cluster.pk,
        "critical_service_delay": 90,
        "automatic_fallback_delay": 1800,
        "initialization_heartbeat_timeout": 120,
        "heartbeat_timeout": 10,
        "heartbeat_interval": 15,
        "critical_services": [ServiceName.TEXT_CONFERENCE_MANAGER.value],
    }
    page = admin_client.post("/admin/topology/serviceparameters/add/", data).content.decode()
    assert "The heartbeat timeout (10 s) must be longer than the heartbeat interval (15 s)." in page
    assert not ServiceParameters.objects.exists()
    data["heartbeat_timeout"] = 60
    assert admin_client.post("/admin/topology/serviceparameters/add/", data).status_code == 302
    assert ServiceParameters.objects.get(cluster=cluster).critical_services == [ServiceName.TEXT_CONFERENCE_MANAGER]


def test_client_relogin_limits_saved_in_the_admin_are_saved_on_both_nodes_of_the_group(admin_client, recorded):
    _, nodes, _ = recorded
    url = "/admin/topology/nodeserviceparameters/add/"
    data = {"node": nodes[0].pk, "client_relogin_lower_limit": 300, "client_relogin_upper_limit": 200}
    page = admin_client.post(url, data).content.decode()
    assert "The upper limit (200 s) cannot be below the lower limit (300 s)." in page
    data["client_relogin_upper_limit"] = 400
    response = admin_client.post(url, data, follow=True)
    assert "The same limits were saved for imp-1, the other node of sub1." in response.content.decode()
    limits = NodeServiceParameters.objects.order_by("node__name").values_list(
        "node__name", "client_relogin_lower_limit", "client_relogin_upper_limit"
    )
    assert list(limits) == [("imp-0", 300, 400), ("imp-1", 300, 400)]
