"""Every list of the API answers in a fixed number of queries, with 10 rows as with 1,000, and
pages, filters (the pages' own filters) and orders them."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from dbmerge.models import MergeCheck, MergeJob
from messaging.models import (
    ChatAlias,
    DatabaseType,
    ExternalDatabase,
    ExternalDatabaseCheck,
    GroupChatAdministrator,
    PersistentChatAssignment,
)
from tests.topology.test_list_queries import populate as populate_topology
from topology.catalog import ServiceName
from topology.choices import HAReason, HAState
from topology.models import AlarmRecipient, Cluster, HAAlarm, HATransition, Node, RedundancyGroup, ServerAction, Service

pytestmark = [pytest.mark.configdb, pytest.mark.django_db]

MAX_QUERIES = 10

LISTS = [
    "/api/alarm-recipients/",
    "/api/clusters/",
    "/api/nodes/",
    "/api/redundancy-groups/",
    "/api/end-users/",
    "/api/services/",
    "/api/server-actions/",
    "/api/ha-transitions/",
    "/api/srm-alarms/",
    "/api/chat-database-assignments/",
    "/api/chat-aliases/",
    "/api/group-chat-administrators/",
    "/api/external-databases/",
    "/api/merge-jobs/",
    "/api/audit/",
    "/api/verify-ha/",
]


def populate(rows: int) -> None:
    """At least ``rows`` rows in every list (topology as the pages' test builds it)."""
    populate_topology(rows)
    nodes = list(Node.objects.select_related("redundancy_group").order_by("pk"))
    groups = list(RedundancyGroup.objects.order_by("pk"))
    Service.objects.bulk_create(
        [Service(node=node, name=name) for node in nodes for name in ServiceName.values], ignore_conflicts=True
    )
    databases = ExternalDatabase.objects.bulk_create(
        ExternalDatabase(
            database_name=f"tc{i}", db_type=DatabaseType.POSTGRES, username="tc", hostname="db.example.com", port=5432
        )
        for i in range(rows)
    )
    now = timezone.now()
    ExternalDatabaseCheck.objects.bulk_create(
        ExternalDatabaseCheck(
            database=db, name="reachability", passed=True, message="ok", checked_at=now, duration=timedelta(seconds=1)
        )
        for db in databases
    )
    PersistentChatAssignment.objects.bulk_create(
        PersistentChatAssignment(node=node, database=databases[i % len(databases)]) for i, node in enumerate(nodes)
    )
    ChatAlias.objects.bulk_create(
        ChatAlias(alias=f"chat{i}.example.org", node=nodes[i % len(nodes)]) for i in range(rows)
    )
    clusters = list(Cluster.objects.all())
    GroupChatAdministrator.objects.bulk_create(
        GroupChatAdministrator(cluster=clusters[i % len(clusters)], im_address=f"admin{i}@example.com")
        for i in range(rows)
    )
    jobs = MergeJob.objects.bulk_create(
        MergeJob(
            db_type="postgres", source_1=databases[0], source_2=databases[1], target=databases[0], database_name="x"
        )
        for _ in range(rows)
    )
    MergeCheck.objects.bulk_create(
        MergeCheck(job=job, position=1, name="schema", passed=True, message="ok") for job in jobs
    )
    pairs = [(group, node) for group in groups for node in nodes if node.redundancy_group_id == group.pk]
    HATransition.objects.bulk_create(
        HATransition(
            group=pairs[i % len(pairs)][0],
            node=pairs[i % len(pairs)][1],
            from_state=HAState.NORMAL,
            to_state=HAState.FAILING_OVER,
            reason=HAReason.ON_ADMIN_REQUEST,
        )
        for i in range(rows)
    )
    HAAlarm.objects.bulk_create(
        HAAlarm(name="UC_SRM-2-SRMFailover", group=g, from_node=n, to_node=n, reason=HAReason.ON_ADMIN_REQUEST)
        for g, n in (pairs[i % len(pairs)] for i in range(rows))
    )
    AlarmRecipient.objects.bulk_create(AlarmRecipient(email=f"oncall{i}@example.com") for i in range(rows))
    ServerAction.objects.bulk_create(
        ServerAction(group=g, node=n, action="failover", status="applied")
        for g, n in (pairs[i % len(pairs)] for i in range(rows))
    )


def queries(api, url: str, **params) -> tuple[int, dict | list]:
    api.get(url, params)  # the token's first use records it; count a steady request
    with CaptureQueriesContext(connection) as captured:
        response = api.get(url, params)
    assert response.status_code == 200, response.content
    return len(captured), response.json()


@pytest.mark.parametrize("rows", [10, 1000])
@pytest.mark.parametrize("url", LISTS)
def test_list_query_count_does_not_grow_with_rows(api, url, rows):
    populate(rows)
    count, body = queries(api, url, page_size=1000)
    assert count <= MAX_QUERIES, f"{url} with {rows} rows took {count} queries"
    if isinstance(body, dict) and "count" in body:
        assert len(body["results"]) >= min(rows, body["count"]) or body["count"] < rows


def test_lists_page_filter_and_order(api):
    populate(120)
    first = api.get("/api/end-users/").json()
    assert first["count"] == 120 and len(first["results"]) == 50 and first["next"].endswith("page=2")
    second = api.get(first["next"]).json()
    assert not {u["id"] for u in first["results"]} & {u["id"] for u in second["results"]}
    found = api.get("/api/end-users/", {"q": "user11"}).json()["results"]
    assert sorted(u["user_id"] for u in found) == [
        "user11",
        "user110",
        "user111",
        "user112",
        "user113",
        "user114",
        "user115",
        "user116",
        "user117",
        "user118",
        "user119",
    ]
    newest_first = api.get("/api/end-users/", {"ordering": "-user_id"}).json()["results"]
    assert newest_first[0]["user_id"] == "user99"
    unassigned = api.get("/api/end-users/", {"assignment": "unassigned"}).json()
    assert unassigned["count"] == 0
    bad = api.get("/api/nodes/", {"ha_state": "sleeping"})
    assert bad.status_code == 400
    assert "sleeping is not one of the available choices" in bad.json()["errors"]["ha_state"][0]
