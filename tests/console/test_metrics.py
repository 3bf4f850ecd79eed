"""The console's Prometheus endpoint, /metrics: who may scrape it, and what it says."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from dbmerge.choices import JobState
from dbmerge.models import MergeJob
from messaging.models import DatabaseType, ExternalDatabase, ExternalDatabaseCheck, StatusCheckName
from topology.catalog import ServiceName, ServiceStatus
from topology.choices import HAReason, HAState
from topology.ha import transitions
from topology.models import Service, ensure_services

TOKEN = "scrape-me-0123456789"


@pytest.fixture
def token(settings):
    settings.METRICS_TOKEN = TOKEN
    return {"HTTP_AUTHORIZATION": f"Bearer {TOKEN}"}


def scrape(client, **headers) -> dict[tuple[str, tuple], float]:
    response = client.get("/metrics", **headers)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain")
    values = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            values[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return values


def ha(values, node: str, state: str) -> float:
    return values[("imp_node_ha_state", (("node", node), ("state", state)))]


def test_anonymous_scrape_is_refused_with_401_asking_for_a_bearer_token(anon_client, token):
    response = anon_client.get("/metrics")
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert b"imp_node_ha_state" not in response.content


def test_a_wrong_token_is_refused(anon_client, token):
    response = anon_client.get("/metrics", HTTP_AUTHORIZATION="Bearer not-the-token")
    assert response.status_code == 401


def test_no_token_configured_means_no_token_is_accepted(anon_client, settings):
    settings.METRICS_TOKEN = None
    assert anon_client.get("/metrics", HTTP_AUTHORIZATION="Bearer ").status_code == 401


def test_the_token_or_any_console_role_may_scrape(anon_client, personas, token):
    assert anon_client.get("/metrics", **token).status_code == 200
    for role in ("read_only", "operator", "super_admin"):
        assert personas[role].get("/metrics").status_code == 200


def test_a_user_without_a_console_role_gets_403(client, django_user_model):
    user = django_user_model.objects.create_user("nobody", password="x-Password-123")
    client.force_login(user)
    assert client.get("/metrics").status_code == 403


def test_ha_state_gauge_follows_a_failover(anon_client, build, token):
    cluster = build.cluster()
    a, b = build.node("imp-1a", cluster), build.node("imp-1b", cluster)
    build.group("subcluster1", a, b, ha=True)
    for node in (a, b):
        transitions.set_own_state(node.pk, HAState.NORMAL, HAReason.NORMAL)

    before = scrape(anon_client, **token)
    assert ha(before, "imp-1a", "normal") == 1
    assert ha(before, "imp-1a", "failed_over_critical_down") == 0

    assert transitions.take_over(b.pk, a.pk, reason=HAReason.CRITICAL_SERVICE_DOWN)
    after = scrape(anon_client, **token)
    assert ha(after, "imp-1a", "normal") == 0
    assert ha(after, "imp-1a", "failed_over_critical_down") == 1
    assert ha(after, "imp-1b", "taking_over") == 1
    assert after[("imp_srm_alarms_total", (("name", "UC_SRM-2-SRMFailover"),))] == 1


def test_service_states_external_database_checks_and_merge_jobs(anon_client, build, token):
    cluster = build.cluster()
    node = build.node("imp-1a", cluster)
    ensure_services(node)
    Service.objects.filter(node=node, name=ServiceName.XCP_ROUTER).update(status=ServiceStatus.STARTED)
    database = ExternalDatabase.objects.create(
        database_name="tc1", db_type=DatabaseType.POSTGRES, username="u", hostname="db1", port=5432
    )
    other = ExternalDatabase.objects.create(
        database_name="tc2", db_type=DatabaseType.POSTGRES, username="u", hostname="db1", port=5432
    )
    now = timezone.now()
    ExternalDatabaseCheck.objects.create(
        database=database,
        name=StatusCheckName.REACHABILITY,
        passed=True,
        message="",
        checked_at=now,
        duration=timedelta(),
    )
    ExternalDatabaseCheck.objects.create(
        database=database, name=StatusCheckName.SCHEMA, passed=False, message="", checked_at=now, duration=timedelta()
    )
    done = {"tc_rooms": {"done": 40, "total": 40}, "tc_messages": {"done": 1000, "total": 1000}}
    for state, progress in ((JobState.COMPLETED, done), (JobState.COMPLETED, done), (JobState.MERGING, {})):
        job = MergeJob.objects.create(db_type=DatabaseType.POSTGRES, source_1=database, source_2=other, target=other)
        MergeJob.objects.filter(pk=job.pk).update(state=state, progress=progress)

    values = scrape(anon_client, **token)
    router = "Cisco XCP Router"
    assert values[("imp_service_state", (("node", "imp-1a"), ("service", router), ("status", "started")))] == 1
    assert values[("imp_service_state", (("node", "imp-1a"), ("service", router), ("status", "stopped")))] == 0
    label = "tc1@db1:5432"
    assert values[("imp_external_database_check_passed", (("check", "reachability"), ("database", label)))] == 1
    assert values[("imp_external_database_check_passed", (("check", "schema"), ("database", label)))] == 0
    assert values[("imp_merge_jobs", (("state", "completed"),))] == 2
    assert values[("imp_merge_jobs", (("state", "merging"),))] == 1
    assert values[("imp_merge_jobs", (("state", "failed"),))] == 0
    assert values[("imp_merge_rows_copied", (("state", "completed"),))] == 2080


def _queries_of_a_scrape(client, token) -> int:
    with CaptureQueriesContext(connection) as queries:
        scrape(client, **token)
    return len(queries)


def test_a_scrape_costs_the_same_few_queries_for_2_or_40_nodes(anon_client, build, token):
    cluster = build.cluster()
    for index in range(2):
        ensure_services(build.node(f"small-{index}", cluster))
    small = _queries_of_a_scrape(anon_client, token)
    for index in range(38):
        ensure_services(build.node(f"large-{index}", cluster))
    large = _queries_of_a_scrape(anon_client, token)
    assert small == large <= 6
