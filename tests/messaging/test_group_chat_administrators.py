"""Messaging > Group Chat System Administrators (reference 4.5): the Enable switch of each
cluster, Find and List, Add New, Edit, Delete, the rules of the form, each persona, the audit
trail and the Django admin."""

from __future__ import annotations

import pytest
from auditlog.models import LogEntry
from django.urls import reverse

from messaging.models import ChatSettings, GroupChatAdministrator

pytestmark = pytest.mark.django_db
LIST = reverse("messaging:groupchatadministrator_list")
ADD = reverse("messaging:groupchatadministrator_add")
ENABLE = reverse("messaging:groupchatadministrator_enable")


@pytest.fixture
def clusters(build):
    return build.cluster("cluster1"), build.cluster("cluster2")


def shown(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def edit_url(administrator: GroupChatAdministrator) -> str:
    return reverse("messaging:groupchatadministrator_edit", args=[administrator.pk])


def delete_url(administrator: GroupChatAdministrator) -> str:
    return reverse("messaging:groupchatadministrator_delete", args=[administrator.pk])


def test_the_list_shows_every_administrator_and_each_clusters_switch_in_a_fixed_number_of_queries(
    operator_client, clusters, django_assert_max_num_queries
):
    cluster1, cluster2 = clusters
    for n in range(5):
        GroupChatAdministrator.objects.create(cluster=cluster1, im_address=f"admin{n}@example.com", nickname=f"A{n}")
    GroupChatAdministrator.objects.create(cluster=cluster2, im_address="other@example.com", description="Night shift")
    ChatSettings.objects.create(cluster=cluster2, enable_system_administrators=True)
    with django_assert_max_num_queries(12):
        page = operator_client.get(LIST).content.decode()
    assert "Find and List Group Chat System Administrators" in page
    for text in ("admin0@example.com", "admin4@example.com", "A4", "other@example.com", "Night shift"):
        assert text in page
    assert f'name="enable_{cluster1.pk}" id="id_enable_{cluster1.pk}">' in page  # off
    assert f'name="enable_{cluster2.pk}" id="id_enable_{cluster2.pk}" checked>' in page  # on


def test_the_list_is_found_by_im_address_and_filtered_by_cluster(operator_client, clusters):
    cluster1, cluster2 = clusters
    GroupChatAdministrator.objects.create(cluster=cluster1, im_address="andy@example.com")
    GroupChatAdministrator.objects.create(cluster=cluster2, im_address="bob@example.com")
    page = operator_client.get(LIST, {"q": "andy"}).content.decode()
    assert "andy@example.com" in page and "bob@example.com" not in page
    page = operator_client.get(LIST, {"cluster": cluster2.pk}).content.decode()
    assert "bob@example.com" in page and "andy@example.com" not in page


def test_adding_an_administrator_stores_the_im_address_in_lower_case_and_warns_while_not_enabled(
    operator_client, clusters
):
    cluster1, _ = clusters
    data = {"cluster": cluster1.pk, "im_address": " Andy@Example.COM ", "nickname": "Andy", "description": "Ops"}
    response = operator_client.post(ADD, data, follow=True)
    administrator = GroupChatAdministrator.objects.get()
    assert (administrator.im_address, administrator.nickname, administrator.description) == (
        "andy@example.com",
        "Andy",
        "Ops",
    )
    assert shown(response) == [
        "Group chat system administrator andy@example.com saved.",
        "Group chat system administrators are not enabled on cluster1: turn on Enable Group Chat System "
        "Administrators for the list to count.",
    ]


def test_no_warning_when_administrators_are_enabled_on_the_cluster(operator_client, clusters):
    cluster1, _ = clusters
    ChatSettings.objects.create(cluster=cluster1, enable_system_administrators=True)
    response = operator_client.post(ADD, {"cluster": cluster1.pk, "im_address": "andy@example.com"}, follow=True)
    assert shown(response) == ["Group chat system administrator andy@example.com saved."]


@pytest.mark.parametrize(
    "address", ["andy", "andy@", "@example.com", "an dy@example.com", "andy@exa mple.com", "a@b@c"]
)
def test_an_im_address_that_is_not_name_at_domain_is_refused(operator_client, clusters, address):
    cluster1, _ = clusters
    response = operator_client.post(ADD, {"cluster": cluster1.pk, "im_address": address})
    assert response.status_code == 200
    assert response.context["form"].errors["im_address"] == [
        "Enter the IM address as name@domain, such as admin@example.com."
    ]
    assert not GroupChatAdministrator.objects.exists()


def test_an_im_address_is_listed_once_per_cluster_whatever_its_case(operator_client, clusters):
    cluster1, cluster2 = clusters
    GroupChatAdministrator.objects.create(cluster=cluster1, im_address="andy@example.com")
    response = operator_client.post(ADD, {"cluster": cluster1.pk, "im_address": "ANDY@example.com"})
    assert response.context["form"].errors["im_address"] == [
        "andy@example.com is already a group chat system administrator of cluster1."
    ]
    response = operator_client.post(ADD, {"cluster": cluster2.pk, "im_address": "ANDY@example.com"})
    assert response.status_code == 302
    assert sorted(GroupChatAdministrator.objects.values_list("cluster__name", "im_address")) == [
        ("cluster1", "andy@example.com"),
        ("cluster2", "andy@example.com"),
    ]


def test_an_administrator_is_edited_and_deleted(operator_client, clusters):
    cluster1, _ = clusters
    administrator = GroupChatAdministrator.objects.create(cluster=cluster1, im_address="andy@example.com")
    page = operator_client.get(edit_url(administrator)).content.decode()
    assert "Group Chat System Administrator Configuration" in page and delete_url(administrator) in page
    response = operator_client.post(
        edit_url(administrator), {"cluster": cluster1.pk, "im_address": "andrew@example.com", "nickname": "Andrew"}
    )
    assert response.status_code == 302
    administrator.refresh_from_db()
    assert (administrator.im_address, administrator.nickname) == ("andrew@example.com", "Andrew")
    response = operator_client.post(delete_url(administrator), follow=True)
    assert "Group chat system administrator andrew@example.com deleted." in shown(response)
    assert not GroupChatAdministrator.objects.exists()


def test_the_enable_switch_is_saved_per_cluster(operator_client, clusters):
    cluster1, cluster2 = clusters
    ChatSettings.objects.create(cluster=cluster2, enable_system_administrators=True)
    response = operator_client.post(ENABLE, {f"enable_{cluster1.pk}": "on"}, follow=True)
    assert dict(ChatSettings.objects.values_list("cluster__name", "enable_system_administrators")) == {
        "cluster1": True,
        "cluster2": False,
    }
    assert shown(response) == [
        "Enable Group Chat System Administrators is now on for cluster1; off for cluster2.",
        "The Text Conference Manager of each node reads the list and the switch within a few seconds; "
        "no restart is needed.",
    ]
    response = operator_client.post(ENABLE, {f"enable_{cluster1.pk}": "on"}, follow=True)
    assert shown(response) == ["Nothing changed."]


def test_set_to_default_on_the_chat_settings_page_keeps_the_enable_switch(operator_client, clusters):
    cluster1, _ = clusters
    ChatSettings.objects.create(cluster=cluster1, enable_system_administrators=True, max_rooms=2000)
    operator_client.post(reverse("messaging:chatsettings_edit"), {"cluster": cluster1.pk, "action": "defaults"})
    settings = ChatSettings.objects.get(cluster=cluster1)
    assert (settings.max_rooms, settings.enable_system_administrators) == (5500, True)


def test_read_only_users_see_the_pages_but_cannot_change_anything(read_only_client, clusters):
    cluster1, _ = clusters
    administrator = GroupChatAdministrator.objects.create(cluster=cluster1, im_address="andy@example.com")
    page = read_only_client.get(LIST).content.decode()
    assert "andy@example.com" in page
    assert f'id="id_enable_{cluster1.pk}" disabled>' in page
    assert ">Add New<" not in page and ">Save<" not in page
    assert read_only_client.get(edit_url(administrator)).status_code == 200
    for url, data in (
        (ENABLE, {f"enable_{cluster1.pk}": "on"}),
        (ADD, {"cluster": cluster1.pk, "im_address": "bob@example.com"}),
        (edit_url(administrator), {"cluster": cluster1.pk, "im_address": "bob@example.com"}),
        (delete_url(administrator), {}),
    ):
        assert read_only_client.post(url, data).status_code == 403, url
    assert list(GroupChatAdministrator.objects.values_list("im_address", flat=True)) == ["andy@example.com"]
    assert not ChatSettings.objects.filter(enable_system_administrators=True).exists()


def test_anonymous_visitors_are_sent_to_the_login_page(anon_client, clusters):
    cluster1, _ = clusters
    administrator = GroupChatAdministrator.objects.create(cluster=cluster1, im_address="andy@example.com")
    for url in (LIST, ADD, ENABLE, edit_url(administrator), delete_url(administrator)):
        for method in ("get", "post"):
            response = getattr(anon_client, method)(url)
            assert response.status_code == 302 and response["Location"].startswith(reverse("login")), (method, url)


@pytest.mark.parametrize("persona", ["operator", "super_admin"])
def test_operators_and_super_administrators_manage_administrators(personas, clusters, persona):
    cluster1, _ = clusters
    client = personas[persona]
    assert client.post(ADD, {"cluster": cluster1.pk, "im_address": "andy@example.com"}).status_code == 302
    assert client.post(ENABLE, {f"enable_{cluster1.pk}": "on"}).status_code == 302
    administrator = GroupChatAdministrator.objects.get()
    assert client.post(delete_url(administrator)).status_code == 302
    assert not GroupChatAdministrator.objects.exists()
    assert ChatSettings.objects.get(cluster=cluster1).enable_system_administrators


def test_changes_are_recorded_in_the_audit_trail_with_who_made_them(operator_client, operator, clusters):
    cluster1, _ = clusters
    operator_client.post(ADD, {"cluster": cluster1.pk, "im_address": "andy@example.com", "nickname": "Andy"})
    operator_client.post(ENABLE, {f"enable_{cluster1.pk}": "on"})
    administrator = GroupChatAdministrator.objects.get()
    created = LogEntry.objects.get_for_object(administrator).get()
    assert (created.action, created.actor) == (LogEntry.Action.CREATE, operator)
    assert created.changes_dict["im_address"] == ["None", "andy@example.com"]
    switched = LogEntry.objects.get_for_object(ChatSettings.objects.get(cluster=cluster1)).latest("timestamp")
    assert switched.actor == operator
    assert switched.changes_dict["enable_system_administrators"] == ["False", "True"]


def test_the_django_admin_lists_and_validates_administrators(admin_client, clusters):
    cluster1, _ = clusters
    GroupChatAdministrator.objects.create(cluster=cluster1, im_address="andy@example.com")
    changelist = admin_client.get(reverse("admin:messaging_groupchatadministrator_changelist"))
    assert "andy@example.com" in changelist.content.decode()
    add = reverse("admin:messaging_groupchatadministrator_add")
    response = admin_client.post(add, {"cluster": cluster1.pk, "im_address": "Andy@Example.com"})
    assert response.status_code == 200
    assert "andy@example.com is already a group chat system administrator of cluster1." in response.content.decode()
    assert GroupChatAdministrator.objects.count() == 1
