"""Each rule of the Presence Redundancy Group Configuration form, with the message a user sees."""

import pytest

from topology.choices import NodeRole
from topology.models import Node, RedundancyGroup

pytestmark = [pytest.mark.configdb, pytest.mark.django_db]

ADD_URL = "/system/redundancy-groups/add/"


def post_group(client, **data):
    payload = {"name": "prg1", "description": "", "server1": "", "server2": ""}
    payload.update({key: value for key, value in data.items() if value is not None})
    return client.post(ADD_URL, payload)


def form_errors(response) -> dict:
    assert response.status_code == 200, "the form should be shown again with its errors"
    return response.context["form"].errors


def test_group_with_two_nodes_and_ha_is_saved_and_listed(super_client, build):
    cluster = build.cluster()
    a, b = build.node("imp-a", cluster, NodeRole.PUBLISHER), build.node("imp-b", cluster)
    response = post_group(super_client, name="prg_1-a", server1=a.pk, server2=b.pk, ha_enabled="on")
    group = RedundancyGroup.objects.get(name="prg_1-a")
    assert response.status_code == 302
    assert response["Location"] == group.get_absolute_url()
    assert group.ha_enabled and group.cluster == cluster
    assert [node.name for node in group.servers()] == ["imp-a", "imp-b"]
    listing = super_client.get("/system/redundancy-groups/").content.decode()
    assert "prg_1-a" in listing and "imp-a" in listing and "imp-b" in listing


def test_same_node_twice_is_refused(super_client, build):
    cluster = build.cluster()
    a = build.node("imp-a", cluster)
    errors = form_errors(post_group(super_client, server1=a.pk, server2=a.pk))
    assert errors["server2"] == ["Server 1 and Server 2 must be two different IM and Presence nodes."]
    assert not RedundancyGroup.objects.exists()


def test_node_already_in_another_group_is_refused(super_client, build):
    cluster = build.cluster()
    a, b, c = build.node("imp-a", cluster), build.node("imp-b", cluster), build.node("imp-c", cluster)
    build.group("existing", a, b)
    errors = form_errors(post_group(super_client, name="second", server1=c.pk, server2=b.pk))
    assert errors["server2"] == ["imp-b is already a member of presence redundancy group existing."]
    assert RedundancyGroup.objects.count() == 1
    assert Node.objects.get(name="imp-c").redundancy_group is None


def test_nodes_from_two_clusters_are_refused(super_client, build):
    one, two = build.cluster("cluster1"), build.cluster("cluster2")
    a, b = build.node("imp-a", one), build.node("imp-b", two)
    errors = form_errors(post_group(super_client, server1=a.pk, server2=b.pk))
    assert errors["server2"] == [
        "Both servers must belong to the same cluster; imp-a is in cluster1 and imp-b is in cluster2."
    ]


def test_fourth_group_in_a_cluster_is_refused(super_client, build):
    cluster = build.cluster()
    nodes = [build.node(f"imp-{i}", cluster) for i in range(6)]
    for index in range(3):
        build.group(f"g{index}", nodes[index])
    errors = form_errors(post_group(super_client, name="g3", server1=nodes[3].pk))
    assert errors["server1"] == [
        "Cluster cluster1 already has 3 presence redundancy groups, the most a cluster can hold."
    ]
    assert RedundancyGroup.objects.count() == 3


def test_high_availability_on_a_one_node_group_is_refused(super_client, build):
    cluster = build.cluster()
    a = build.node("imp-a", cluster)
    errors = form_errors(post_group(super_client, server1=a.pk, ha_enabled="on"))
    assert errors["ha_enabled"] == ["High availability needs two nodes in the group; choose Server 2 first."]


def test_one_node_group_without_ha_is_allowed(super_client, build):
    cluster = build.cluster()
    a = build.node("imp-a", cluster)
    assert post_group(super_client, server1=a.pk).status_code == 302
    assert RedundancyGroup.objects.get(name="prg1").servers() == [a, None]


@pytest.mark.parametrize("name", ["has space", "semi;colon", "dot.ted", "é"])
def test_group_name_with_bad_characters_is_refused(super_client, build, name):
    cluster = build.cluster()
    a = build.node("imp-a", cluster)
    errors = form_errors(post_group(super_client, name=name, server1=a.pk))
    assert errors["name"] == ["Use only letters, digits, underscore (_) and dash (-), at most 128 characters."]


def test_group_name_over_128_characters_is_refused(super_client, build):
    cluster = build.cluster()
    a = build.node("imp-a", cluster)
    errors = form_errors(post_group(super_client, name="x" * 129, server1=a.pk))
    assert errors["name"] == ["Ensure this value has at most 128 characters (it has 129)."]


@pytest.mark.parametrize("bad", ['"', "%", "&", "\\", "<", ">"])
def test_description_with_forbidden_characters_is_refused(super_client, build, bad):
    cluster = build.cluster()
    a = build.node("imp-a", cluster)
    errors = form_errors(post_group(super_client, server1=a.pk, description=f"pair {bad} one"))
    assert errors["description"] == ['The description cannot contain any of these characters: " % & \\ < >']


def test_swapping_server_1_and_server_2_of_a_group_is_saved(super_client, build):
    cluster = build.cluster()
    a, b = build.node("imp-a", cluster), build.node("imp-b", cluster)
    group = build.group("pair", a, b, ha=True)
    response = super_client.post(
        f"/system/redundancy-groups/{group.pk}/edit/",
        {"name": "pair", "description": "", "server1": b.pk, "server2": a.pk, "ha_enabled": "on"},
    )
    assert response.status_code == 302
    assert [node.name for node in RedundancyGroup.objects.get(pk=group.pk).servers()] == ["imp-b", "imp-a"]


def test_database_refuses_a_third_member_in_one_group(build):
    from django.db import IntegrityError, transaction

    cluster = build.cluster()
    a, b, c = build.node("imp-a", cluster), build.node("imp-b", cluster), build.node("imp-c", cluster)
    group = build.group("pair", a, b)
    c.redundancy_group, c.group_position = group, 2
    with pytest.raises(IntegrityError), transaction.atomic():
        c.save()


def test_database_refuses_a_member_of_another_cluster_and_moving_a_group_away_from_its_members(build):
    from django.db import IntegrityError, transaction

    one, two = build.cluster("cluster1"), build.cluster("cluster2")
    a, b, c = build.node("imp-a", one), build.node("imp-b", one), build.node("imp-c", two)
    group = build.group("pair", a)
    with pytest.raises(IntegrityError, match="nodes of its own cluster only"), transaction.atomic():
        Node.objects.filter(pk=c.pk).update(redundancy_group=group, group_position=2)
    with pytest.raises(IntegrityError, match="nodes of its own cluster only"), transaction.atomic():
        Node.objects.filter(pk=a.pk).update(cluster=two)
    with pytest.raises(IntegrityError, match="nodes of its own cluster only"), transaction.atomic():
        RedundancyGroup.objects.filter(pk=group.pk).update(cluster=two)
    Node.objects.filter(pk=b.pk).update(redundancy_group=group, group_position=2)
    assert [node.name for node in RedundancyGroup.objects.get(pk=group.pk).servers()] == ["imp-a", "imp-b"]
    assert Node.objects.get(pk=c.pk).redundancy_group is None


def test_the_servers_of_a_group_cannot_change_while_a_node_is_failed_over_but_ha_can_be_switched_off(
    super_client, build
):
    cluster = build.cluster()
    a, b, c = build.node("imp-a", cluster), build.node("imp-b", cluster), build.node("imp-c", cluster)
    group = build.group("prg1", a, b, ha=True)
    # What the SRM leaves after failing A over: A Failed Over, its rooms served by B.
    Node.objects.filter(pk=a.pk).update(ha_state="failed_over", ha_reason="critical_service_down", rooms_hosted_by=b)
    Node.objects.filter(pk=b.pk).update(ha_state="backup_mode", ha_reason="critical_service_down")
    url = f"/system/redundancy-groups/{group.pk}/edit/"

    response = super_client.post(url, {"name": "prg1", "server1": a.pk, "server2": c.pk, "ha_enabled": "on"})
    errors = form_errors(response)
    assert errors["server1"] == [
        "The servers of prg1 cannot change while imp-a is Failed Over: users and rooms of the group are away from "
        "their home node. Fall back first (or disable High Availability, which hands them back), then change the "
        "servers."
    ]
    assert [node.name for node in RedundancyGroup.objects.get(pk=group.pk).servers()] == ["imp-a", "imp-b"]

    response = super_client.post(url, {"name": "prg1", "server1": a.pk, "server2": b.pk})
    assert response.status_code == 302
    assert not RedundancyGroup.objects.get(pk=group.pk).ha_enabled


def _assign(node, name: str | None):
    from messaging.models import ExternalDatabase, PersistentChatAssignment

    database = None
    if name:
        database = ExternalDatabase.objects.filter(database_name=name).first()
        if database is None:
            database = ExternalDatabase(
                database_name=name, db_type="postgres", username="tcuser", hostname="127.0.0.1", port=5432
            )
            database.set_password("secret")
            database.save()
    PersistentChatAssignment.objects.update_or_create(node=node, defaults={"database": database})


def test_enabling_ha_while_the_servers_use_different_databases_saves_and_says_to_merge_them(super_client, build):
    # The reference's task flow: HA first on nodes that still have their own databases, then
    # the merge, then the merged database assigned to both.
    cluster = build.cluster()
    a, b = build.node("imp-a", cluster), build.node("imp-b", cluster)
    group = build.group("prg1", a, b)
    _assign(a, "tc_a")
    _assign(b, "tc_b")
    response = super_client.post(
        f"/system/redundancy-groups/{group.pk}/edit/",
        {"name": "prg1", "server1": a.pk, "server2": b.pk, "ha_enabled": "on"},
        follow=True,
    )
    assert RedundancyGroup.objects.get(pk=group.pk).ha_enabled
    assert (
        "High availability is on in prg1, but imp-a uses tc_a@127.0.0.1:5432 and imp-b uses tc_b@127.0.0.1:5432: "
        "with high availability both use one database. Merge them (External Database Jobs) and assign the result "
        "to both on the Group Chat and Persistent Chat page."
    ) in response.content.decode()


def test_enabling_ha_with_one_database_for_both_or_one_unassigned_says_nothing_more(super_client, build):
    cluster = build.cluster()
    a, b, c, d = (build.node(name, cluster) for name in ("imp-a", "imp-b", "imp-c", "imp-d"))
    shared, half = build.group("shared", a, b), build.group("half", c, d)
    _assign(a, "tc_ab")
    _assign(b, "tc_ab")
    _assign(c, "tc_c")
    for group, (one, two) in ((shared, (a, b)), (half, (c, d))):
        response = super_client.post(
            f"/system/redundancy-groups/{group.pk}/edit/",
            {"name": group.name, "server1": one.pk, "server2": two.pk, "ha_enabled": "on"},
            follow=True,
        )
        assert RedundancyGroup.objects.get(pk=group.pk).ha_enabled
        assert "one database" not in response.content.decode()


def test_disabling_ha_while_both_servers_share_a_database_warns_what_to_do(super_client, build):
    cluster = build.cluster()
    a, b = build.node("imp-a", cluster), build.node("imp-b", cluster)
    group = build.group("prg1", a, b, ha=True)
    _assign(a, "tc_ab")
    _assign(b, "tc_ab")
    response = super_client.post(
        f"/system/redundancy-groups/{group.pk}/edit/", {"name": "prg1", "server1": a.pk, "server2": b.pk}, follow=True
    )
    page = response.content.decode()
    assert not RedundancyGroup.objects.get(pk=group.pk).ha_enabled
    assert "imp-a and imp-b still share tc_ab@127.0.0.1:5432" in page
    assert "without high availability each node needs its own database" in page


def test_admin_enable_ha_action_warns_about_a_group_whose_servers_use_different_databases(admin_client, build):
    cluster = build.cluster()
    a, b = build.node("imp-a", cluster), build.node("imp-b", cluster)
    group = build.group("prg1", a, b)
    _assign(a, "tc_a")
    _assign(b, "tc_b")
    response = admin_client.post(
        "/admin/topology/redundancygroup/",
        {"action": "enable_ha", "_selected_action": [group.pk]},
        follow=True,
    )
    page = response.content.decode()
    assert "High availability enabled on 1 group(s)." in page
    assert "High availability is on in prg1, but imp-a uses tc_a@127.0.0.1:5432 and imp-b uses" in page
    assert RedundancyGroup.objects.get(pk=group.pk).ha_enabled
