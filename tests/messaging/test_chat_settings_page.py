"""Group Chat and Persistent Chat page: settings, Set to Default, restart banner, database
assignment rules, and the alias mapping pages."""

from __future__ import annotations

import pytest
from django.apps import apps
from django.forms.models import model_to_dict
from django.urls import reverse

from messaging.models import ChatAlias, ChatSettings, PersistentChatAssignment
from messaging.models.chat_settings import SETTING_FIELDS
from tests.messaging.conftest import make_external_database

pytestmark = pytest.mark.django_db
URL = reverse("messaging:chatsettings_edit")


@pytest.fixture
def cluster1(build):
    cluster = build.cluster("cluster1")
    nodes = [build.node(name, cluster) for name in ("imp-1a", "imp-1b", "imp-2a", "imp-2b")]
    build.group("group1", nodes[0], nodes[1], ha=True)
    build.group("group2", nodes[2], nodes[3], ha=True)
    return cluster, nodes


def post_data(cluster, nodes, assignments=None, **changes):
    settings = ChatSettings.peek(cluster)
    values = {**model_to_dict(settings, fields=SETTING_FIELDS), **changes}
    data = {"cluster": cluster.pk}
    for name, value in values.items():
        if isinstance(value, bool):
            if value:
                data[f"settings-{name}"] = "on"
        else:
            data[f"settings-{name}"] = value
    for node in nodes:
        database = (assignments or {}).get(node.name)
        data[f"assign-node_{node.pk}"] = database.pk if database else ""
    return data


def shown(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def test_the_page_shows_every_group_and_the_documented_defaults(operator_client, cluster1):
    cluster, _ = cluster1
    page = operator_client.get(URL, {"cluster": cluster.pk}).content.decode()
    for legend in (
        "Persistent Chat",
        "Rooms",
        "Member",
        "Availability",
        "Occupancy",
        "Chat Message",
        "Moderated",
        "History",
        "Persistent Chat Database Assignment",
    ):
        assert f"<legend>{legend}</legend>" in page or f">{legend}</legend>" in page, legend
    assert 'name="settings-max_rooms" value="5500"' in page
    assert 'name="settings-history_default" value="15"' in page
    assert not ChatSettings.objects.exists()  # reading writes nothing


def test_saving_stores_the_settings_and_asks_for_a_tc_restart_on_the_listed_nodes(operator_client, cluster1):
    cluster, nodes = cluster1
    data = post_data(cluster, nodes, enable_persistent_chat=True, max_rooms=3000, history_default=40)
    response = operator_client.post(URL, data, follow=True)
    settings = ChatSettings.objects.get(cluster=cluster)
    assert (settings.enable_persistent_chat, settings.max_rooms, settings.history_default) == (True, 3000, 40)
    assert (
        "Restart Cisco XCP Text Conference Manager on these nodes for the change to apply: "
        "imp-1a, imp-1b, imp-2a, imp-2b (Serviceability > Control Center – Feature Services)." in shown(response)
    )


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        (
            {"max_users_per_room": 10, "default_max_occupancy": 20},
            "default_max_occupancy",
            "Default maximum occupancy for a room cannot exceed how many users can be in a room at one time.",
        ),
        (
            {"history_max": 10, "history_default": 20},
            "history_default",
            "Number of messages in chat history displayed by default cannot exceed the maximum number of messages "
            "that can be retrieved from the archive.",
        ),
        ({"db_connections": 0}, "db_connections", "Ensure this value is greater than or equal to 1."),
        ({"db_heartbeat_interval": 3601}, "db_heartbeat_interval", "Ensure this value is less than or equal to 3600."),
        ({"max_rooms": 16501}, "max_rooms", "Ensure this value is less than or equal to 16500."),
        (
            {"max_rooms": 1000, "max_persistent_rooms": 1001},
            "max_persistent_rooms",
            "Maximum number of persistent chat rooms allowed cannot exceed the maximum number of rooms allowed "
            "(ad hoc plus persistent rooms, at most 16500 per server).",
        ),
        (
            {"max_rooms": 16500, "max_persistent_rooms": 16501},
            "max_persistent_rooms",
            "Ensure this value is less than or equal to 16500.",
        ),
        ({"max_persistent_rooms": 0}, "max_persistent_rooms", "Ensure this value is greater than or equal to 1."),
        (
            {"persistent_room_timeout": -1},
            "persistent_room_timeout",
            "Ensure this value is greater than or equal to 0.",
        ),
    ],
)
def test_out_of_range_settings_are_refused_and_nothing_is_saved(operator_client, cluster1, changes, field, message):
    cluster, nodes = cluster1
    response = operator_client.post(URL, post_data(cluster, nodes, **changes))
    assert response.status_code == 200
    assert response.context["settings_form"].errors[field] == [message]
    assert "Nothing was saved; correct the fields marked below." in shown(response)
    assert not ChatSettings.objects.exists()


def test_persistent_rooms_may_reach_the_maximum_number_of_rooms(operator_client, cluster1):
    cluster, nodes = cluster1
    response = operator_client.post(URL, post_data(cluster, nodes, max_rooms=2500, max_persistent_rooms=2500))
    assert response.status_code == 302
    settings = ChatSettings.objects.get(cluster=cluster)
    assert (settings.max_rooms, settings.max_persistent_rooms) == (2500, 2500)


def test_the_persistent_room_maximum_shows_its_default_and_its_limit(operator_client, cluster1):
    cluster, _ = cluster1
    page = operator_client.get(URL, {"cluster": cluster.pk}).content.decode()
    assert 'name="settings-max_persistent_rooms" value="1500"' in page
    assert "1–16500 and at most the maximum number of rooms allowed" in page


def test_the_persistent_room_timeout_accepts_fractions_of_a_minute(operator_client, cluster1):
    cluster, nodes = cluster1
    response = operator_client.post(URL, post_data(cluster, nodes, persistent_room_timeout="0.5"))
    assert response.status_code == 302
    assert ChatSettings.objects.get(cluster=cluster).persistent_room_timeout == 0.5


def test_set_to_default_restores_every_setting(operator_client, cluster1):
    cluster, _ = cluster1
    ChatSettings.objects.create(cluster=cluster, enable_persistent_chat=True, max_rooms=2000, strip_xhtml=True)
    response = operator_client.post(URL, {"cluster": cluster.pk, "action": "defaults"}, follow=True)
    settings = ChatSettings.objects.get(cluster=cluster)
    assert (settings.enable_persistent_chat, settings.max_rooms, settings.strip_xhtml) == (False, 5500, False)
    assert f"Group chat and persistent chat settings of {cluster} set to defaults." in shown(response)


def test_set_to_default_asks_first_and_says_persistent_chat_goes_off(operator_client, cluster1):
    page = operator_client.get(URL).content.decode()
    assert (
        'data-confirm="Set every group chat and persistent chat setting of cluster1 to its default? '
        'Enable Persistent Chat is off by default.">Set to Default</button>'
    ) in page


def test_both_nodes_of_an_ha_group_are_assigned_one_database(operator_client, cluster1):
    cluster, nodes = cluster1
    db1 = make_external_database("db1", "tcuser")
    response = operator_client.post(URL, post_data(cluster, nodes, {"imp-1a": db1, "imp-1b": db1}))
    assert response.status_code == 302
    assigned = dict(PersistentChatAssignment.objects.values_list("node__name", "database__database_name"))
    assert assigned == {"imp-1a": "db1", "imp-1b": "db1", "imp-2a": None, "imp-2b": None}


def test_a_new_database_for_one_group_asks_for_a_restart_on_its_nodes_only(operator_client, cluster1):
    cluster, nodes = cluster1
    db1 = make_external_database("db1", "tcuser")
    operator_client.post(URL, post_data(cluster, nodes, {"imp-1a": db1, "imp-1b": db1}))
    db2 = make_external_database("db2", "tcuser")
    response = operator_client.post(
        URL, post_data(cluster, nodes, {"imp-1a": db1, "imp-1b": db1, "imp-2a": db2, "imp-2b": db2}), follow=True
    )
    assert f"Group chat and persistent chat settings of {cluster} saved." in shown(response)
    assert (
        "Restart Cisco XCP Text Conference Manager on these nodes for the change to apply: "
        "imp-2a, imp-2b (Serviceability > Control Center – Feature Services)." in shown(response)
    )

    unchanged = operator_client.post(
        URL, post_data(cluster, nodes, {"imp-1a": db1, "imp-1b": db1, "imp-2a": db2, "imp-2b": db2}), follow=True
    )
    assert not [m for m in shown(unchanged) if m.startswith("Restart")]


def test_two_databases_for_one_ha_group_are_refused(operator_client, cluster1):
    cluster, nodes = cluster1
    db1, db2 = make_external_database("db1", "tcuser"), make_external_database("db2", "tcuser")
    response = operator_client.post(URL, post_data(cluster, nodes, {"imp-1a": db1, "imp-1b": db2}))
    assert response.status_code == 200
    errors = response.context["assignment_form"].errors
    assert errors[f"node_{nodes[0].pk}"] == [
        f"High availability is on in group1: imp-1a and its peer must use the same external database, "
        f"but the peer uses {db2}."
    ]
    assert not PersistentChatAssignment.objects.exists()
    assert not ChatSettings.objects.exists()


def test_one_database_for_two_groups_is_refused(operator_client, cluster1):
    cluster, nodes = cluster1
    db1 = make_external_database("db1", "tcuser")
    data = post_data(cluster, nodes, {"imp-1a": db1, "imp-1b": db1, "imp-2a": db1, "imp-2b": db1})
    response = operator_client.post(URL, data)
    assert response.status_code == 200
    errors = response.context["assignment_form"].errors
    assert errors[f"node_{nodes[2].pk}"] == [
        f"{db1} is already used by redundancy group group1; a database serves one redundancy group."
    ]
    assert not PersistentChatAssignment.objects.exists()


def test_turning_off_automatic_aliases_keeps_each_system_alias_as_an_editable_entry(operator_client, cluster1):
    cluster, nodes = cluster1
    operator_client.post(URL, post_data(cluster, nodes, auto_manage_aliases=False))
    aliases = dict(ChatAlias.objects.values_list("alias", "node__name"))
    assert aliases == {f"conference-{n.pk}-cluster1.example.com": n.name for n in nodes}
    assert ChatAlias.objects.filter(is_primary=True).count() == 4


def test_alias_mapping_add_refuses_the_domain_and_saves_a_good_alias(operator_client, cluster1):
    _, nodes = cluster1
    url = reverse("messaging:chatalias_add")
    response = operator_client.post(url, {"alias": "example.com", "node": nodes[0].pk})
    assert response.context["form"].errors["alias"] == [
        "A group chat server alias cannot be the IM and Presence domain (example.com); use e.g. chat.example.com."
    ]
    assert not ChatAlias.objects.exists()
    response = operator_client.post(url, {"alias": "Chat.Example.com", "node": nodes[0].pk}, follow=True)
    assert ChatAlias.objects.get().alias == "chat.example.com"
    assert any(m.startswith("Restart Cisco XCP Text Conference Manager and Cisco XCP Router") for m in shown(response))
    response = operator_client.post(url, {"alias": "chat.example.com", "node": nodes[1].pk})
    assert response.context["form"].errors["alias"] == [
        "The alias chat.example.com is already used by imp-1a; aliases must be unique across the cluster."
    ]


def test_alias_list_shows_system_aliases_in_a_fixed_number_of_queries(
    operator_client, cluster1, django_assert_max_num_queries
):
    _, nodes = cluster1
    for node in nodes:
        ChatAlias.objects.create(alias=f"chat-{node.name}.example.com", node=node)
    with django_assert_max_num_queries(10):
        page = operator_client.get(reverse("messaging:chatalias_list")).content.decode()
    assert f"conference-{nodes[0].pk}-cluster1.example.com" in page
    assert "chat-imp-2b.example.com" in page


def test_admin_bulk_edit_refuses_two_databases_for_one_ha_group(admin_client, cluster1):
    _, nodes = cluster1
    db1, db2 = make_external_database("db1", "tcuser"), make_external_database("db2", "tcuser")
    rows = [PersistentChatAssignment.objects.create(node=node) for node in nodes[:2]]
    data = {
        "form-TOTAL_FORMS": "2",
        "form-INITIAL_FORMS": "2",
        "form-0-id": rows[0].pk,
        "form-0-database": db1.pk,
        "form-1-id": rows[1].pk,
        "form-1-database": db2.pk,
        "_save": "Save",
    }
    response = admin_client.post(reverse("admin:messaging_persistentchatassignment_changelist"), data)
    assert response.status_code == 200
    assert "must use the same external database" in response.content.decode()
    assert not PersistentChatAssignment.objects.filter(database__isnull=False).exists()
    data["form-1-database"] = db1.pk
    response = admin_client.post(reverse("admin:messaging_persistentchatassignment_changelist"), data)
    assert response.status_code == 302
    assert PersistentChatAssignment.objects.filter(database=db1).count() == 2


def test_the_cached_fields_show_a_change_made_elsewhere_at_once(operator_client, cluster1):
    """The page caches its rendered fields under the values they show, so a change made
    without the page (the API, a bulk update that leaves updated_at alone) shows at once."""
    cluster, nodes = cluster1
    database = make_external_database("tc_elsewhere", "tcuser")
    page = operator_client.get(URL, {"cluster": cluster.pk}).content.decode()
    assert 'name="settings-max_rooms" value="5500"' in page  # the default
    ChatSettings.objects.update_or_create(cluster=cluster, defaults={"max_rooms": 6000})
    ChatSettings.objects.filter(cluster=cluster).update(history_default=7)
    PersistentChatAssignment.objects.create(node=nodes[0], database=database)
    page = operator_client.get(URL, {"cluster": cluster.pk}).content.decode()
    assert 'name="settings-max_rooms" value="6000"' in page
    assert 'name="settings-history_default" value="7"' in page
    assert f'<option value="{database.pk}" selected>' in page


def test_the_alias_help_shows_the_whole_alias_pattern(operator_client, cluster1):
    page = operator_client.get(URL).content.decode()
    assert "primary alias is conference-{node number}-{Cluster ID}.{domain}. Off:" in page


def test_no_help_text_holds_angle_brackets_that_a_page_would_take_for_a_tag():
    # Forms and the Django admin render help_text as HTML, unescaped: "<domain>" vanishes.
    swallowed = [
        f"{model.__name__}.{field.name}"
        for model in apps.get_models()
        for field in model._meta.get_fields()
        if "<" in str(getattr(field, "help_text", ""))
    ]
    assert swallowed == []
