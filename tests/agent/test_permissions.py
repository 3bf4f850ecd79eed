"""Every page this issue adds, for every persona: anonymous visitors go to the login page,
read-only users see but get 403 on every change, operators and super admins act."""

from __future__ import annotations

import pytest
from django.test import Client
from django.utils import timezone

from topology.catalog import ControlAction, DesiredState, ServiceName
from topology.models import Node, ServerAction, Service, ServiceParameters

pytestmark = pytest.mark.django_db


@pytest.fixture
def group_pair(build):
    cluster = build.cluster()
    a, b = build.node("imp-1a", cluster), build.node("imp-1b", cluster)
    return build.group("subcluster1", a, b, ha=True), a, b


def pages(a):
    return [
        f"/serviceability/control-center/feature/?server={a.pk}",
        f"/serviceability/control-center/network/?server={a.pk}",
        f"/serviceability/service-activation/?server={a.pk}",
        f"/system/service-parameters/?server={a.pk}",
    ]


@pytest.mark.parametrize("persona", ["anonymous", "read_only", "operator", "super_admin"])
def test_every_new_page_opens_for_each_signed_in_persona_and_sends_visitors_to_login(personas, persona, group_pair):
    group, a, _ = group_pair
    for url in [*pages(a), f"/system/redundancy-groups/{group.pk}/ha/"]:
        response = personas[persona].get(url)
        if persona == "anonymous":
            assert response.status_code == 302 and response.url.startswith("/login/"), url
        else:
            assert response.status_code in (200, 286), url


def _posts(group, a):
    tc = Service.objects.get(node=a, name=ServiceName.TEXT_CONFERENCE_MANAGER)
    return [
        (
            f"/serviceability/control-center/feature/?server={a.pk}",
            {"server": a.pk, "service": tc.pk, "action": "stop"},
        ),
        (f"/serviceability/service-activation/?server={a.pk}", {"server": a.pk}),
        (
            f"/system/service-parameters/?server={a.pk}",
            {
                "server": a.pk,
                "critical_service_delay": 30,
                "automatic_fallback_delay": 1800,
                "initialization_heartbeat_timeout": 120,
                "heartbeat_timeout": 60,
                "heartbeat_interval": 15,
                "critical_services": [ServiceName.TEXT_CONFERENCE_MANAGER.value],
                "node-client_relogin_lower_limit": 120,
                "node-client_relogin_upper_limit": 537,
            },
        ),
        (f"/system/redundancy-groups/{group.pk}/server-action/", {"node": a.pk, "action": "failover"}),
    ]


@pytest.mark.parametrize("persona", ["anonymous", "read_only"])
def test_visitors_and_read_only_users_change_nothing(personas, persona, group_pair):
    group, a, _ = group_pair
    for url, data in _posts(group, a):
        response = personas[persona].post(url, data)
        expected = 302 if persona == "anonymous" else 403
        assert response.status_code == expected, url
    tc = Service.objects.get(node=a, name=ServiceName.TEXT_CONFERENCE_MANAGER)
    assert (tc.desired_state, tc.activated, tc.request_number) == (DesiredState.STARTED, True, 0)
    assert not ServiceParameters.objects.exists()
    assert not ServerAction.objects.exists()


@pytest.mark.parametrize("persona", ["operator", "super_admin"])
def test_operators_and_super_admins_control_services_change_parameters_and_press_server_actions(
    personas, persona, group_pair
):
    group, a, b = group_pair
    for node in (a, b):  # Failover is offered when both nodes are Normal and reporting
        node.ha_state, node.ha_reason = "normal", "normal"
        node.save()
        Node.objects.filter(pk=node.pk).update(last_heartbeat=timezone.now())
    for url, data in _posts(group, a):
        response = personas[persona].post(url, data)
        assert response.status_code == 302, (url, response.content[:500])
    tc = Service.objects.get(node=a, name=ServiceName.TEXT_CONFERENCE_MANAGER)
    # Service Activation posted with no box ticked: TC deactivated after the Stop.
    assert (tc.request_action, tc.activated, tc.request_number) == (ControlAction.DEACTIVATE, False, 2)
    assert ServiceParameters.objects.get(cluster=a.cluster).critical_service_delay == 30
    assert ServerAction.objects.get().action == "failover"


def test_a_post_without_csrf_token_is_refused(operator, group_pair):
    _, a, _ = group_pair
    client = Client(enforce_csrf_checks=True)
    client.force_login(operator)
    tc = Service.objects.get(node=a, name=ServiceName.TEXT_CONFERENCE_MANAGER)
    response = client.post(
        f"/serviceability/control-center/feature/?server={a.pk}", {"server": a.pk, "service": tc.pk, "action": "stop"}
    )
    assert response.status_code == 403
    assert Service.objects.get(pk=tc.pk).request_number == 0
