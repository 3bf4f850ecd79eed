"""User assignment by mode, the audit trail, and the Django admin bulk actions."""

import pytest
from auditlog.models import LogEntry
from django.contrib.auth.models import User

from topology.choices import UserAssignmentMode
from topology.models import Cluster, EndUser, Node, RedundancyGroup

pytestmark = [pytest.mark.configdb, pytest.mark.django_db]


def make_users(count: int) -> None:
    for i in range(count):
        EndUser.objects.create(user_id=f"u{i:02}", jid=f"u{i:02}@example.com")


def test_balanced_assignment_spreads_users_evenly_over_every_grouped_node(super_client, build):
    cluster = build.cluster()
    a, b, c, d = (build.node(name, cluster) for name in ("imp-1a", "imp-1b", "imp-2a", "imp-2b"))
    build.group("sub1", a, b, ha=True)
    build.group("sub2", c, d, ha=True)
    make_users(10)
    response = super_client.post("/system/users/assign/", {"cluster": cluster.pk}, follow=True)
    assert (
        "Users of cluster1 assigned (Balanced): imp-1a: 3, imp-1b: 3, imp-2a: 2, imp-2b: 2."
        in response.content.decode()
    )
    counts = {node.name: node.assigned_users.count() for node in Node.objects.all()}
    assert counts == {"imp-1a": 3, "imp-1b": 3, "imp-2a": 2, "imp-2b": 2}


def test_active_standby_assignment_puts_users_on_the_first_node_of_each_group(super_client, build):
    cluster = build.cluster()
    cluster.user_assignment_mode = UserAssignmentMode.ACTIVE_STANDBY
    cluster.save()
    a, b, c, d = (build.node(name, cluster) for name in ("imp-1a", "imp-1b", "imp-2a", "imp-2b"))
    build.group("sub1", a, b, ha=True)
    build.group("sub2", c, d, ha=True)
    make_users(5)
    super_client.post("/system/users/assign/", {"cluster": cluster.pk})
    counts = {node.name: node.assigned_users.count() for node in Node.objects.all()}
    assert counts == {"imp-1a": 3, "imp-1b": 0, "imp-2a": 2, "imp-2b": 0}


def test_assignment_mode_none_changes_nobody_and_says_why(super_client, build):
    cluster = build.cluster()
    cluster.user_assignment_mode = UserAssignmentMode.NONE
    cluster.save()
    a = build.node("imp-1a", cluster)
    build.group("sub1", a)
    make_users(2)
    response = super_client.post("/system/users/assign/", {"cluster": cluster.pk}, follow=True)
    assert "No users assigned: the mode of cluster1 is None" in response.content.decode()
    assert EndUser.objects.filter(assigned_node__isnull=False).count() == 0


def test_a_configuration_change_is_in_the_audit_trail_with_who_and_before_after(super_client, super_admin, build):
    cluster = build.cluster()
    a, b = build.node("imp-a", cluster), build.node("imp-b", cluster)
    group = build.group("pair", a, b)
    super_client.post(
        f"/system/redundancy-groups/{group.pk}/edit/",
        {"name": "pair", "description": "", "server1": a.pk, "server2": b.pk, "ha_enabled": "on"},
    )
    entry = LogEntry.objects.get_for_object(group).filter(actor=super_admin).latest("timestamp")
    assert entry.changes_dict["ha_enabled"] == ["False", "True"]
    page = super_client.get("/audit/").content.decode()
    assert "sadmin" in page and "pair" in page and "ha_enabled" in page


def test_heartbeats_written_by_agents_are_not_audited(build):
    from django.utils import timezone

    cluster = build.cluster()
    node = build.node("imp-a", cluster)
    before = LogEntry.objects.count()
    node.last_heartbeat = timezone.now()
    node.save(update_fields=["last_heartbeat"])
    assert LogEntry.objects.count() == before


@pytest.fixture
def admin_client(client, db):
    user = User.objects.create_superuser("root", "root@example.com", "root-password-123")
    client.force_login(user)
    return client


def test_admin_bulk_enable_ha_applies_the_form_rules(admin_client, build):
    cluster = build.cluster()
    a, b, c = build.node("imp-a", cluster), build.node("imp-b", cluster), build.node("imp-c", cluster)
    pair, single = build.group("pair", a, b), build.group("single", c)
    response = admin_client.post(
        "/admin/topology/redundancygroup/",
        {"action": "enable_ha", "_selected_action": [pair.pk, single.pk]},
        follow=True,
    )
    page = response.content.decode()
    assert "Group single: High availability needs two nodes in the group; choose Server 2 first." in page
    assert RedundancyGroup.objects.get(pk=pair.pk).ha_enabled is True
    assert RedundancyGroup.objects.get(pk=single.pk).ha_enabled is False


def test_admin_bulk_assign_users_to_a_node(admin_client, build):
    cluster = build.cluster()
    node = build.node("imp-a", cluster)
    make_users(3)
    ids = list(EndUser.objects.values_list("pk", flat=True))
    admin_client.post(
        "/admin/topology/enduser/", {"action": "assign_to_node", "_selected_action": ids, "node": node.pk}
    )
    assert node.assigned_users.count() == 3


def test_admin_group_form_refuses_a_node_of_another_group(admin_client, build):
    cluster = build.cluster()
    a, b, c = build.node("imp-a", cluster), build.node("imp-b", cluster), build.node("imp-c", cluster)
    build.group("pair", a, b)
    response = admin_client.post(
        "/admin/topology/redundancygroup/add/", {"name": "other", "server1": c.pk, "server2": b.pk}
    )
    assert "imp-b is already a member of presence redundancy group pair." in response.content.decode()
    assert not RedundancyGroup.objects.filter(name="other").exists()


def test_demo_topology_matches_the_reference_use_case(demo_topology):
    sub1 = RedundancyGroup.objects.get(name="subcluster1")
    sub2 = RedundancyGroup.objects.get(name="subcluster2")
    assert [n.name for n in sub1.servers()] == ["imp-1a", "imp-1b"] and sub1.ha_enabled
    assert [n.name for n in sub2.servers()] == ["imp-2a", "imp-2b"] and sub2.ha_enabled
    homes = dict(EndUser.objects.values_list("user_id", "assigned_node__name"))
    assert homes["andy"] == "imp-1a" and homes["bob"] == "imp-1b"
    assert homes["catherine"] == "imp-2a" and homes["deborah"] == "imp-2b"
    cluster2 = Cluster.objects.get(name="cluster2")
    assert not cluster2.redundancy_groups.filter(ha_enabled=True).exists()
    assert cluster2.nodes.count() == 2


def test_an_end_user_cannot_be_added_to_a_cluster_while_one_of_its_nodes_is_failed_over(super_client, build):
    cluster, other = build.cluster("cluster1"), build.cluster("cluster2")
    a, b = build.node("imp-1a", cluster), build.node("imp-1b", cluster)
    c = build.node("imp-c2a", other)
    build.group("subcluster1", a, b, ha=True)
    Node.objects.filter(pk=a.pk).update(ha_state="failed_over", ha_reason="critical_service_down")
    Node.objects.filter(pk=b.pk).update(ha_state="backup_mode", ha_reason="critical_service_down")

    response = super_client.post(
        "/system/users/add/", {"user_id": "frank", "jid": "frank@example.com", "assigned_node": b.pk}
    )
    assert response.status_code == 200
    assert response.context["form"].errors["assigned_node"] == [
        "End users cannot be added to cluster cluster1 while imp-1a is Failed Over; fall back first, then add the user."
    ]
    assert not EndUser.objects.filter(user_id="frank").exists()
    # Another cluster, and users already there, are not held back.
    response = super_client.post(
        "/system/users/add/", {"user_id": "frank", "jid": "frank@example.com", "assigned_node": c.pk}
    )
    assert response.status_code == 302 and EndUser.objects.filter(user_id="frank").exists()
    frank = EndUser.objects.get(user_id="frank")
    response = super_client.post(
        f"/system/users/{frank.pk}/", {"user_id": "frank", "jid": "frank@example.com", "display_name": "Frank"}
    )
    assert response.status_code == 302 and EndUser.objects.get(pk=frank.pk).display_name == "Frank"
