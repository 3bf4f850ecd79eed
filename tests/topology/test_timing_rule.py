"""The SRM's timing rule (2 × heartbeat interval + self-fence margin ≤ heartbeat timeout) on
System > Service Parameters, in the admin and in the database."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from topology.catalog import ServiceName
from topology.models import ServiceParameters

TC = ServiceName.TEXT_CONFERENCE_MANAGER


def page_data(server, **values) -> dict:
    return {
        "server": server.pk,
        "critical_service_delay": 90,
        "automatic_fallback_delay": 1800,
        "initialization_heartbeat_timeout": 120,
        "heartbeat_timeout": 60,
        "heartbeat_interval": 15,
        "self_fence_margin": 25,
        "critical_services": [TC.value],
        "node-client_relogin_lower_limit": 120,
        "node-client_relogin_upper_limit": 537,
        **values,
    }


def test_the_page_refuses_timers_that_break_the_timing_rule_and_says_which_rule(operator_client, build):
    cluster = build.cluster()
    a = build.node("imp-1a", cluster)
    data = page_data(a, heartbeat_interval=25, heartbeat_timeout=60, self_fence_margin=25)
    page = operator_client.post(f"/system/service-parameters/?server={a.pk}", data).content.decode()
    assert "The parameters were not saved" in page
    assert (
        "The timing rule 2 × heartbeat interval + self-fence margin ≤ heartbeat timeout does not hold: "
        "2 × 25 s + 25 % of 60 s (15 s) = 65 s, more than 60 s." in page
    )
    assert not ServiceParameters.objects.exists()

    response = operator_client.post(
        f"/system/service-parameters/?server={a.pk}", page_data(a, heartbeat_interval=20), follow=True
    )
    assert "parameters saved" in response.content.decode()
    params = ServiceParameters.objects.get(cluster=cluster)
    assert (params.heartbeat_interval, params.self_fence_margin, params.lease_seconds) == (20, 25, 45)


def test_the_margin_left_empty_keeps_its_value_and_is_shown_with_its_rule(operator_client, build):
    cluster = build.cluster()
    a = build.node("imp-1a", cluster)
    page = operator_client.get(f"/system/service-parameters/?server={a.pk}").content.decode()
    assert "Self-Fence Margin (%)" in page and "Timing rule: 2 × heartbeat interval" in page
    data = page_data(a)
    data.pop("self_fence_margin")
    operator_client.post(f"/system/service-parameters/?server={a.pk}", data)
    assert ServiceParameters.objects.get(cluster=cluster).self_fence_margin == 25


@pytest.mark.configdb
def test_the_database_refuses_timers_that_break_the_timing_rule(build):
    params = ServiceParameters(cluster=build.cluster(), heartbeat_interval=2, heartbeat_timeout=3, self_fence_margin=50)
    with pytest.raises(ValidationError, match="The timing rule 2 × heartbeat interval"):
        params.full_clean()
    params.heartbeat_interval = 0.75
    params.full_clean()
    params.save()
    assert params.lease_seconds == 1.5
