"""Cluster limits on nodes: six nodes, one publisher."""

import pytest
from django.db import IntegrityError, transaction

from topology.choices import NodeRole
from topology.models import Node

pytestmark = [pytest.mark.configdb, pytest.mark.django_db]


def node_payload(cluster, name, role=NodeRole.SUBSCRIBER, port=30000):
    return {
        "name": name,
        "ip_address": "127.0.0.1",
        "role": role,
        "cluster": cluster.pk,
        "agent_host": "127.0.0.1",
        "agent_port": port,
    }


def test_node_is_added_through_the_form(super_client, build):
    cluster = build.cluster()
    response = super_client.post("/system/nodes/add/", node_payload(cluster, "imp-1a.example.com"))
    node = Node.objects.get(name="imp-1a.example.com")
    assert response.status_code == 302
    assert node.cluster == cluster and node.role == NodeRole.SUBSCRIBER


def test_seventh_node_in_a_cluster_is_refused(super_client, build):
    cluster = build.cluster()
    for index in range(6):
        build.node(f"imp-{index}", cluster)
    response = super_client.post("/system/nodes/add/", node_payload(cluster, "imp-7"))
    assert response.status_code == 200
    assert response.context["form"].errors["cluster"] == [
        "Cluster cluster1 already has 6 nodes, the most a cluster can hold."
    ]
    assert not Node.objects.filter(name="imp-7").exists()


def test_second_publisher_in_a_cluster_is_refused(super_client, build):
    cluster = build.cluster()
    build.node("imp-pub", cluster, NodeRole.PUBLISHER)
    response = super_client.post("/system/nodes/add/", node_payload(cluster, "imp-2", NodeRole.PUBLISHER))
    assert response.context["form"].errors["role"] == [
        "Cluster cluster1 already has a publisher (imp-pub); every other node is a subscriber."
    ]
    assert Node.objects.filter(role=NodeRole.PUBLISHER).count() == 1


def test_database_refuses_two_publishers_in_a_cluster(build):
    cluster = build.cluster()
    build.node("imp-pub", cluster, NodeRole.PUBLISHER)
    with pytest.raises(IntegrityError), transaction.atomic():
        build.node("imp-pub2", cluster, NodeRole.PUBLISHER)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("agent_port", "80", "Ensure this value is greater than or equal to 1024."),
        ("agent_port", "70000", "Ensure this value is less than or equal to 65535."),
        ("ip_address", "300.1.1.1", "Enter a valid IPv4 or IPv6 address."),
        (
            "name",
            "bad name!",
            "Enter a host name or FQDN: letters, digits, dashes and dots, such as imp-1a.example.com.",
        ),
    ],
)
def test_out_of_range_or_malformed_node_fields_are_refused(super_client, build, field, value, message):
    cluster = build.cluster()
    payload = node_payload(cluster, "imp-x")
    payload[field] = value
    response = super_client.post("/system/nodes/add/", payload)
    assert message in response.context["form"].errors[field]
    assert not Node.objects.exists()


def test_moving_a_grouped_node_to_another_cluster_is_refused(super_client, build):
    one, two = build.cluster("cluster1"), build.cluster("cluster2")
    a = build.node("imp-a", one)
    build.group("pair", a)
    payload = node_payload(two, "imp-a", port=a.agent_port)
    response = super_client.post(f"/system/nodes/{a.pk}/edit/", payload)
    assert response.context["form"].errors["cluster"] == [
        "imp-a is in presence redundancy group pair, which belongs to cluster cluster1; remove it from the group first."
    ]
    assert Node.objects.get(pk=a.pk).cluster == one


def test_edit_page_links_to_delete_and_delete_refuses_a_node_in_use(super_client, build):
    cluster = build.cluster()
    node = build.node("imp-a", cluster)
    page = super_client.get(f"/system/nodes/{node.pk}/edit/").content.decode()
    assert f'href="/system/nodes/{node.pk}/delete/"' in page
    cluster_page = super_client.get(f"/system/clusters/{cluster.pk}/").content.decode()
    assert f'href="/system/clusters/{cluster.pk}/delete/"' in cluster_page
    response = super_client.post(f"/system/clusters/{cluster.pk}/delete/", follow=True)
    assert "cluster1 cannot be deleted while these depend on it: imp-a." in response.content.decode()
    assert cluster.__class__.objects.filter(pk=cluster.pk).exists()
