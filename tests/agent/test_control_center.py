"""Control Center, Service Activation and Service Parameters against real node agents."""

from __future__ import annotations

from datetime import timedelta

import pytest
from auditlog.models import LogEntry
from django.utils import timezone

from tests.conftest import wait_for
from tests.scenario import free_port
from topology.catalog import ControlAction, DesiredState, ServiceName, ServiceStatus
from topology.models import Node, NodeServiceParameters, Service, ServiceParameters

pytestmark = pytest.mark.slow

TC = ServiceName.TEXT_CONFERENCE_MANAGER


def tc_of(node) -> Service:
    return Service.objects.get(node=node, name=TC)


def feature_page(client, node, htmx: bool = False):
    headers = {"HTTP_HX_REQUEST": "true"} if htmx else {}
    return client.get(f"/serviceability/control-center/feature/?server={node.pk}", **headers)


def press(client, node, action: str, service=TC):
    page = "feature" if service == TC else "network"
    row = Service.objects.get(node=node, name=service)
    return client.post(
        f"/serviceability/control-center/{page}/?server={node.pk}",
        {"server": node.pk, "service": row.pk, "action": action},
        follow=True,
    ).content.decode()


def test_restart_from_the_control_center_gives_the_service_a_new_start_time_and_is_audited(
    pair, agents, operator_client, operator
):
    a = pair["a"]
    agents(a.name)
    wait_for(lambda: tc_of(a).status == ServiceStatus.STARTED, 30, "TC on A started")
    first_start = tc_of(a).started_at
    page = feature_page(operator_client, a).content.decode()
    assert "Cisco XCP Text Conference Manager" in page and "Started" in page
    assert "may take a while" in page  # the Restart confirmation

    press(operator_client, a, "restart")
    wait_for(
        lambda: (
            (tc := tc_of(a)).handled_request_number == tc.request_number == 1
            and tc.status == ServiceStatus.STARTED
            and tc.started_at > first_start
        ),
        30,
        "TC restarted",
    )
    partial = feature_page(operator_client, a, htmx=True)
    assert partial.status_code == 286  # done: htmx stops polling
    assert "Restart at" in partial.content.decode() and "done, Started." in partial.content.decode()
    entry = LogEntry.objects.get_for_object(tc_of(a)).filter(actor=operator).get()
    assert entry.changes_dict["request_action"] == ["", ControlAction.RESTART]


def test_a_stop_asked_while_the_agent_is_down_is_shown_in_progress_then_carried_out_when_it_starts(
    pair, agents, operator_client
):
    a = pair["a"]
    press(operator_client, a, "stop")
    partial = feature_page(operator_client, a, htmx=True)
    assert partial.status_code == 200
    body = partial.content.decode()
    assert "in progress" in body and 'hx-trigger="every 1s"' in body
    assert "not reporting" in body

    agents(a.name)
    wait_for(lambda: tc_of(a).handled_request_number == 1, 30, "the stop carried out")
    wait_for(lambda: Service.objects.get(node=a, name=ServiceName.XCP_ROUTER).running, 30, "the router started")
    partial = feature_page(operator_client, a, htmx=True)
    assert partial.status_code == 286
    body = partial.content.decode()
    assert "done, Stopped." in body and "Commanded out of service" in body
    assert tc_of(a).status == ServiceStatus.STOPPED


def test_a_request_no_agent_carries_out_is_reported_after_the_timeout(pair, operator_client):
    a = pair["a"]
    press(operator_client, a, "restart")
    Service.objects.filter(pk=tc_of(a).pk).update(requested_at=timezone.now() - timedelta(minutes=5))
    partial = feature_page(operator_client, a, htmx=True)
    assert partial.status_code == 286
    assert "did not carry it out in time" in partial.content.decode()


def test_a_deactivated_feature_service_stops_and_cannot_be_started_until_activated(pair, agents, operator_client):
    a = pair["a"]
    agents(a.name)
    wait_for(lambda: tc_of(a).status == ServiceStatus.STARTED, 30, "TC on A started")
    response = operator_client.post(f"/serviceability/service-activation/?server={a.pk}", {"server": a.pk}, follow=True)
    assert "Cisco XCP Text Conference Manager deactivated" in response.content.decode()
    wait_for(lambda: tc_of(a).status == ServiceStatus.STOPPED, 30, "TC stopped")
    assert "Service not activated" in feature_page(operator_client, a).content.decode()
    assert "activate it on the Service Activation page first" in press(operator_client, a, "start")

    response = operator_client.post(
        f"/serviceability/service-activation/?server={a.pk}",
        {"server": a.pk, "activated": [tc_of(a).pk]},
        follow=True,
    )
    assert "Cisco XCP Text Conference Manager activated" in response.content.decode()
    wait_for(lambda: tc_of(a).status == ServiceStatus.STARTED, 30, "activating started TC")


def test_tc_refuses_to_start_on_an_unreachable_database_and_the_control_center_says_why(pair, agents, operator_client):
    a, database = pair["a"], pair["database"]
    database.port = free_port()  # nothing listens there
    database.save()
    agents(a.name)
    wait_for(lambda: tc_of(a).status == ServiceStatus.NOT_RUNNING, 30, "TC not running")
    page = feature_page(operator_client, a).content.decode()
    assert "Not Running" in page
    assert "Persistent chat is enabled but the external database" in page and "is unreachable" in page
    assert tc_of(a).started_at is None
    # What the peer's SRM reads to fail A over for Database Failure rather than Critical Service Down.
    assert tc_of(a).database_failure
    router = Service.objects.get(node=a, name=ServiceName.XCP_ROUTER)
    assert router.status == ServiceStatus.STARTED and not router.database_failure


def test_service_parameters_show_the_reference_defaults(operator_client, build):
    node = build.node("imp-1a", build.cluster())
    page = operator_client.get(f"/system/service-parameters/?server={node.pk}").content.decode()
    assert "Cisco Server Recovery Manager (Active)" in page
    for field, value in [
        ("heartbeat_interval", "15"),
        ("heartbeat_timeout", "60"),
        ("initialization_heartbeat_timeout", "120"),
        ("critical_service_delay", "90"),
        ("automatic_fallback_delay", "1800"),
        ("node-client_relogin_lower_limit", "120"),
        ("node-client_relogin_upper_limit", "537"),
    ]:
        assert f'name="{field}" value="{value}' in page, field
    assert (
        'name="enable_automatic_fallback"' in page
        and "checked" not in page.split('name="enable_automatic_fallback"')[1][:40]
    )


def test_service_parameters_are_validated_saved_on_both_nodes_and_audited(operator_client, operator, build):
    cluster = build.cluster()
    a, b = build.node("imp-1a", cluster), build.node("imp-1b", cluster)
    build.group("subcluster1", a, b, ha=True)
    data = {
        "server": a.pk,
        "critical_service_delay": 0.1,
        "automatic_fallback_delay": 1800,
        "initialization_heartbeat_timeout": 120,
        "heartbeat_timeout": 10,
        "heartbeat_interval": 15,
        "node-client_relogin_lower_limit": 300,
        "node-client_relogin_upper_limit": 200,
    }
    page = operator_client.post(f"/system/service-parameters/?server={a.pk}", data).content.decode()
    assert "The parameters were not saved" in page
    assert "greater than or equal to 0.2" in page
    assert "must be longer than the heartbeat interval" in page
    assert "Choose at least one critical service" in page
    assert "cannot be below the lower limit" in page
    assert not ServiceParameters.objects.exists()

    data.update(
        critical_service_delay=0.5,
        heartbeat_timeout=30,
        heartbeat_interval=0.2,
        critical_services=[TC.value],
        **{"node-client_relogin_upper_limit": 400},
    )
    response = operator_client.post(f"/system/service-parameters/?server={a.pk}", data, follow=True)
    assert "parameters saved" in response.content.decode()
    params = ServiceParameters.objects.get(cluster=cluster)
    assert (params.critical_service_delay, params.heartbeat_interval, params.critical_services) == (0.5, 0.2, [TC])
    limits = NodeServiceParameters.objects.filter(node__in=[a, b]).values_list("client_relogin_lower_limit", flat=True)
    assert list(limits) == [300, 300]
    assert LogEntry.objects.get_for_object(params).get().actor == operator


ROUTER = ServiceName.XCP_ROUTER


def router_of(node) -> Service:
    return Service.objects.get(node=node, name=ROUTER)


def started_since(service: Service, before) -> bool:
    """Running, and started after ``before``: one read of the row (the agent may be between
    stopping and starting it, with no start time, between two reads)."""
    return service.running and service.started_at is not None and service.started_at > before


def test_stopping_the_xcp_router_stops_tc_and_starting_the_router_again_leaves_tc_stopped_until_started_by_hand(
    pair, agents, operator_client
):
    a, group = pair["a"], pair["group"]
    group.ha_enabled = False  # no failover: this is about the Control Center alone
    group.save()
    agents(a.name)
    wait_for(lambda: router_of(a).running and tc_of(a).running, 30, "Router and TC started")

    page = press(operator_client, a, "stop", service=ROUTER)
    assert "Stop of Cisco XCP Router" in page
    assert "Cisco XCP Text Conference Manager stops with it and stays stopped until you start it" in page
    wait_for(
        lambda: router_of(a).status == ServiceStatus.STOPPED and tc_of(a).status == ServiceStatus.STOPPED,
        30,
        "Router and TC stopped",
    )
    row = feature_page(operator_client, a).content.decode().split('data-service="Cisco XCP Text Conference Manager"')[1]
    assert "Stopped" in row and "Commanded out of service" in row

    press(operator_client, a, "start", service=ROUTER)
    wait_for(lambda: router_of(a).running, 30, "Router started")
    started = router_of(a).started_at
    wait_for(
        lambda: Node.objects.get(pk=a.pk).last_heartbeat > started + timedelta(seconds=1),
        30,
        "A's agent to reconcile for a second with the Router running",
    )
    assert tc_of(a).status == ServiceStatus.STOPPED
    row = feature_page(operator_client, a).content.decode().split('data-service="Cisco XCP Text Conference Manager"')[1]
    assert "Stopped" in row and "Commanded out of service" in row

    press(operator_client, a, "start")
    wait_for(lambda: tc_of(a).running, 30, "TC started by hand")


def test_restarting_the_xcp_router_restarts_the_running_tc_with_it(pair, agents, operator_client):
    a, group = pair["a"], pair["group"]
    group.ha_enabled = False
    group.save()
    agents(a.name)
    wait_for(lambda: router_of(a).running and tc_of(a).running, 30, "Router and TC started")
    router_started, tc_started = router_of(a).started_at, tc_of(a).started_at

    page = press(operator_client, a, "restart", service=ROUTER)
    assert "The services that depend on it and run restart with it." in page
    wait_for(
        lambda: started_since(router_of(a), router_started) and started_since(tc_of(a), tc_started),
        30,
        "Router and TC both started again",
    )
    assert tc_of(a).desired_state == DesiredState.STARTED and tc_of(a).request_number == 0
    assert "Commanded out of service" not in feature_page(operator_client, a).content.decode()
