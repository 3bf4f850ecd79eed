"""Deleting a redundancy group that still has servers: they move out of it (no HTTP 500);
refused, with the reason, while one of them is failed over."""

from __future__ import annotations

import pytest
from auditlog.models import LogEntry
from django.contrib.auth.models import User
from django.test import Client

from topology.choices import HAState
from topology.models import Node, RedundancyGroup

pytestmark = [pytest.mark.configdb, pytest.mark.django_db]


@pytest.fixture
def subcluster(build):
    cluster = build.cluster("cluster1")
    a, b = build.node("imp-1a", cluster), build.node("imp-1b", cluster)
    return build.group("subcluster1", a, b, ha=True)


def test_deleting_a_group_with_servers_moves_them_out_and_says_so(super_client, subcluster):
    page = super_client.get(f"/system/redundancy-groups/{subcluster.pk}/delete/").content.decode()
    assert "Its servers imp-1a and imp-1b leave the group" in page

    response = super_client.post(f"/system/redundancy-groups/{subcluster.pk}/delete/", follow=True)
    assert response.status_code == 200
    assert "Presence redundancy group subcluster1 deleted." in response.content.decode()
    assert not RedundancyGroup.objects.exists()
    assert list(Node.objects.values_list("name", "redundancy_group", "group_position")) == [
        ("imp-1a", None, None),
        ("imp-1b", None, None),
    ]
    assert LogEntry.objects.filter(object_repr="subcluster1", action=LogEntry.Action.DELETE).count() == 1


def test_deleting_a_group_while_a_server_is_failed_over_is_refused_with_the_reason(super_client, subcluster):
    Node.objects.filter(name="imp-1a").update(ha_state=HAState.FAILED_OVER)
    page = super_client.get(f"/system/redundancy-groups/{subcluster.pk}/delete/").content.decode()
    assert "cannot be deleted while imp-1a is Failed Over" in page

    response = super_client.post(f"/system/redundancy-groups/{subcluster.pk}/delete/", follow=True)
    assert response.status_code == 200
    assert (
        "subcluster1 cannot be deleted while imp-1a is Failed Over: users and rooms of the group are away from "
        "their home node. Fall back first (or disable High Availability, which hands them back), then delete it."
    ) in response.content.decode()
    assert RedundancyGroup.objects.filter(name="subcluster1").exists()
    assert Node.objects.filter(redundancy_group=subcluster).count() == 2


@pytest.mark.parametrize("persona", ["operator", "read_only"])
def test_operators_and_read_only_users_cannot_delete_a_group(personas, subcluster, persona):
    assert personas[persona].post(f"/system/redundancy-groups/{subcluster.pk}/delete/").status_code == 403
    assert RedundancyGroup.objects.filter(pk=subcluster.pk).exists()


@pytest.fixture
def root(db) -> Client:
    client = Client()
    client.force_login(User.objects.create_user("root", is_staff=True, is_superuser=True))
    return client


def test_deleting_groups_with_servers_in_django_admin_moves_them_out(root, subcluster, build):
    cluster = subcluster.cluster
    other = build.group("subcluster2", build.node("imp-2a", cluster), build.node("imp-2b", cluster))
    response = root.post(
        "/admin/topology/redundancygroup/",
        {"action": "delete_selected", "_selected_action": [subcluster.pk, other.pk], "post": "yes"},
        follow=True,
    )
    assert response.status_code == 200
    assert not RedundancyGroup.objects.exists()
    assert not Node.objects.filter(group_position__isnull=False).exists()


def test_django_admin_refuses_a_group_mid_failover_with_the_reason(root, subcluster):
    Node.objects.filter(name="imp-1b").update(ha_state=HAState.RUNNING_IN_BACKUP_MODE)
    response = root.post(f"/admin/topology/redundancygroup/{subcluster.pk}/delete/", {"post": "yes"}, follow=True)
    assert "cannot be deleted while imp-1b is Running in Backup Mode" in response.content.decode()
    assert RedundancyGroup.objects.filter(pk=subcluster.pk).exists()
    response = root.post(
        "/admin/topology/redundancygroup/",
        {"action": "delete_selected", "_selected_action": [subcluster.pk], "post": "yes"},
        follow=True,
    )
    assert "cannot be deleted while imp-1b is Running in Backup Mode" in response.content.decode()
    assert RedundancyGroup.objects.filter(pk=subcluster.pk).exists()
