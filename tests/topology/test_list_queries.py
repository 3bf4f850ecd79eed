"""List pages keep a fixed number of queries whatever the number of rows (no N+1)."""

import re

import pytest
from auditlog.models import LogEntry
from django.contrib.auth.models import User
from django.contrib.contenttypes.models import ContentType

from topology.models import Cluster, EndUser, Node, RedundancyGroup

pytestmark = [pytest.mark.configdb, pytest.mark.django_db]


def populate(rows: int) -> None:
    """``rows`` users over up to six nodes, and as many clusters/nodes/groups as fit."""
    clusters = Cluster.objects.bulk_create(
        Cluster(name=f"cluster{i}", cluster_id=f"c{i}", domain="example.com") for i in range(max(1, rows // 6))
    )
    nodes = Node.objects.bulk_create(
        Node(name=f"imp-{c.pk}-{j}", cluster=c, ip_address="127.0.0.1", agent_port=10000 + c.pk * 10 + j)
        for c in clusters
        for j in range(6)
    )
    groups = RedundancyGroup.objects.bulk_create(
        RedundancyGroup(name=f"prg-{c.pk}-{j}", cluster=c) for c in clusters for j in range(3)
    )
    by_cluster = {}
    for group in groups:
        by_cluster.setdefault(group.cluster_id, []).append(group)
    for node in nodes:
        index = int(node.name.rsplit("-", 1)[1])
        node.redundancy_group = by_cluster[node.cluster_id][index // 2]
        node.group_position = index % 2 + 1
    Node.objects.bulk_update(nodes, ["redundancy_group", "group_position"])
    users = EndUser.objects.bulk_create(
        EndUser(user_id=f"user{i}", jid=f"user{i}@example.com", assigned_node=nodes[i % len(nodes)])
        for i in range(rows)
    )
    # As many audit entries, by a console user, with before/after values (bulk_create logs none).
    actor = User.objects.create_user("auditor")
    user_type = ContentType.objects.get_for_model(EndUser)
    LogEntry.objects.bulk_create(
        LogEntry(
            content_type=user_type,
            object_pk=str(user.pk),
            object_id=user.pk,
            object_repr=user.user_id,
            action=LogEntry.Action.UPDATE,
            changes={"display_name": ["", f"User {user.pk}"]},
            actor=actor,
        )
        for user in users
    )


@pytest.mark.parametrize("rows", [10, 1000])
@pytest.mark.parametrize(
    "url",
    [
        "/system/clusters/",
        "/system/nodes/",
        "/system/redundancy-groups/",
        "/system/users/",
        "/system/topology/",
        "/",
        "/audit/",
    ],
)
def test_list_page_query_count_does_not_grow_with_rows(super_client, django_assert_max_num_queries, rows, url):
    populate(rows)
    with django_assert_max_num_queries(12):
        response = super_client.get(url)
    assert response.status_code == 200
    if url == "/audit/":
        page = response.content.decode()
        assert "auditor" in page and f"user{rows - 1}" in page  # newest first


@pytest.mark.parametrize(
    ("url", "find", "found", "not_found"),
    [
        ("/system/users/", "user12", ["user12@example.com", "user120@example.com"], ["user13@example.com"]),
        # {2} and {3}: the primary keys of the second and third clusters (sequences differ by database).
        ("/system/nodes/", "imp-{2}-", ["imp-{2}-0", "imp-{2}-5"], ["imp-{3}-0"]),
        ("/system/redundancy-groups/", "prg-{2}-", ["prg-{2}-0", "prg-{2}-2"], ["prg-{3}-0"]),
        ("/system/clusters/", "cluster2", ["cluster2", "cluster20"], ["cluster3<"]),
    ],
)
def test_list_pages_find_and_page_through_rows(super_client, url, find, found, not_found):
    populate(400)
    pks = [None, *Cluster.objects.order_by("pk").values_list("pk", flat=True)]
    find, found, not_found = find.format(*pks), [t.format(*pks) for t in found], [t.format(*pks) for t in not_found]
    page = super_client.get(url, {"q": find}).content.decode()
    for text in found:
        assert text in page, f"{url}?q={find} should list {text}"
    for text in not_found:
        assert text not in page, f"{url}?q={find} should not list {text}"
    first = super_client.get(url).content.decode()
    second = super_client.get(url, {"page": 2}).content.decode()
    assert "page=2" in first  # a link to the next page
    own = re.compile(rf'href="({re.escape(url)}\d+/)"')
    first_rows, second_rows = set(own.findall(first)), set(own.findall(second))
    assert len(first_rows) == 50 and second_rows and not first_rows & second_rows
