"""List pages keep a fixed number of queries whatever the number of rows (no N+1)."""

import pytest

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
    EndUser.objects.bulk_create(
        EndUser(user_id=f"user{i}", jid=f"user{i}@example.com", assigned_node=nodes[i % len(nodes)])
        for i in range(rows)
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
