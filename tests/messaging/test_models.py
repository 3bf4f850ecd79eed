"""Chat settings, aliases and assignments: defaults, rules and lookups other apps rely on."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from messaging.aliases import aliases_of, home_node_for_room
from messaging.database_assignment import database_for_node
from messaging.models import ChatAlias, ChatSettings, ExternalDatabase, PersistentChatAssignment
from messaging.models.aliases import node_for_alias

pytestmark = [pytest.mark.django_db, pytest.mark.configdb]


def make_db(name: str = "tcmadb", host: str = "127.0.0.1") -> ExternalDatabase:
    db = ExternalDatabase(database_name=name, db_type="postgres", username="tcuser", hostname=host, port=5432)
    db.set_password("secret")
    db.save()
    return db


def test_chat_settings_are_created_with_the_documented_defaults(build):
    cluster = build.cluster()
    settings = ChatSettings.for_cluster(cluster)
    assert settings.pk is not None
    assert settings.enable_persistent_chat is False
    assert settings.auto_manage_aliases is True
    assert (settings.max_rooms, settings.max_users_per_room, settings.default_max_occupancy) == (5500, 1000, 50)
    assert (settings.history_max, settings.history_default) == (100, 15)
    assert (settings.db_connections, settings.db_heartbeat_interval, settings.persistent_room_timeout) == (5, 300, 0)
    assert settings.private_message_min_level == "visitor"
    assert settings.change_subject_min_level == "participant"
    assert ChatSettings.for_cluster(cluster).pk == settings.pk


def test_a_node_reads_its_clusters_chat_settings(build):
    cluster = build.cluster()
    node = build.node("imp-1a", cluster)
    settings = ChatSettings.for_cluster(cluster)
    settings.max_rooms = 4200
    settings.save()
    assert ChatSettings.for_node(node).max_rooms == 4200


def test_default_occupancy_above_room_limit_is_refused_by_clean_and_database(build):
    settings = ChatSettings.for_cluster(build.cluster())
    settings.max_users_per_room, settings.default_max_occupancy = 10, 11
    with pytest.raises(ValidationError) as exc:
        settings.full_clean()
    assert "default_max_occupancy" in exc.value.message_dict
    with pytest.raises(IntegrityError), transaction.atomic():
        settings.save()


def test_more_persistent_rooms_than_rooms_are_refused_by_clean_and_database(build):
    settings = ChatSettings.for_cluster(build.cluster())
    settings.max_rooms, settings.max_persistent_rooms = 2000, 2001
    with pytest.raises(ValidationError) as exc:
        settings.full_clean()
    assert exc.value.message_dict == {
        "max_persistent_rooms": [
            "Maximum number of persistent chat rooms allowed cannot exceed the maximum number of rooms allowed "
            "(ad hoc plus persistent rooms, at most 16500 per server)."
        ]
    }
    with pytest.raises(IntegrityError), transaction.atomic():
        settings.save()


def test_history_default_above_archive_maximum_is_refused(build):
    settings = ChatSettings.for_cluster(build.cluster())
    settings.history_max, settings.history_default = 10, 20
    with pytest.raises(ValidationError) as exc:
        settings.full_clean()
    assert exc.value.message_dict["history_default"][0].startswith("Number of messages in chat history")


def test_set_to_default_restores_every_setting(build):
    settings = ChatSettings.for_cluster(build.cluster())
    settings.enable_persistent_chat, settings.max_rooms, settings.history_default = True, 7, 3
    settings.reset_to_defaults()
    assert (settings.enable_persistent_chat, settings.max_rooms, settings.history_default) == (False, 5500, 15)


def test_system_alias_is_first_and_resolves_to_its_node(build):
    cluster = build.cluster(cluster_id="mycup")
    node = build.node("imp-1a", cluster)
    ChatAlias.objects.create(alias="chat.example.com", node=node, is_primary=True)
    system = f"conference-{node.pk}-mycup.example.com"
    assert aliases_of(node) == [system, "chat.example.com"]
    assert node_for_alias(system) == node
    assert node_for_alias("CHAT.example.com") == node
    assert home_node_for_room(f"ops@{system}/andy") == node
    assert home_node_for_room("ops@unknown.example.com") is None
    assert home_node_for_room("not-a-jid") is None


def test_system_alias_stops_resolving_when_the_administrator_manages_aliases(build):
    cluster = build.cluster(cluster_id="mycup")
    node = build.node("imp-1a", cluster)
    ChatSettings.objects.create(cluster=cluster, auto_manage_aliases=False)
    assert aliases_of(node) == []
    assert node_for_alias(f"conference-{node.pk}-mycup.example.com") is None


def test_alias_equal_to_the_domain_is_refused(build):
    node = build.node("imp-1a", build.cluster())
    with pytest.raises(ValidationError) as exc:
        ChatAlias(alias="example.com", node=node).full_clean()
    assert "cannot be the IM and Presence domain" in exc.value.message_dict["alias"][0]


def test_alias_already_used_by_another_node_is_refused(build):
    cluster = build.cluster()
    first, second = build.node("imp-1a", cluster), build.node("imp-1b", cluster)
    ChatAlias.objects.create(alias="chat.example.com", node=first)
    with pytest.raises(ValidationError) as exc:
        ChatAlias(alias="Chat.Example.com", node=second).full_clean()
    assert exc.value.message_dict["alias"] == [
        "The alias chat.example.com is already used by imp-1a; aliases must be unique across the cluster."
    ]
    other_system = f"conference-{first.pk}-{cluster.cluster_id}.example.com"
    with pytest.raises(ValidationError):
        ChatAlias(alias=other_system, node=second).full_clean()


def test_database_for_node_is_none_until_assigned(build):
    node = build.node("imp-1a", build.cluster())
    assert database_for_node(node) is None
    db = make_db()
    PersistentChatAssignment.objects.create(node=node, database=db)
    assert database_for_node(node) == db


def test_ha_group_nodes_must_share_one_database(build):
    cluster = build.cluster()
    a, b = build.node("imp-1a", cluster), build.node("imp-1b", cluster)
    build.group("group1", a, b, ha=True)
    db1, db2 = make_db("db1"), make_db("db2")
    PersistentChatAssignment.objects.create(node=a, database=db1)
    with pytest.raises(ValidationError) as exc:
        PersistentChatAssignment(node=b, database=db2).full_clean()
    assert "must use the same external database" in exc.value.messages[0]
    PersistentChatAssignment(node=b, database=db1).full_clean()


def test_one_database_cannot_serve_two_groups(build):
    cluster = build.cluster()
    a, b, c, d = (build.node(f"imp-{n}", cluster) for n in ("1a", "1b", "2a", "2b"))
    build.group("group1", a, b, ha=True)
    build.group("group2", c, d, ha=True)
    db = make_db()
    PersistentChatAssignment.objects.create(node=a, database=db)
    with pytest.raises(ValidationError) as exc:
        PersistentChatAssignment(node=c, database=db).full_clean()
    assert exc.value.messages == [
        "tcmadb@127.0.0.1:5432 is already used by redundancy group group1; a database serves one redundancy group."
    ]


def test_without_ha_each_node_needs_its_own_database(build):
    cluster = build.cluster()
    a, b = build.node("imp-1a", cluster), build.node("imp-1b", cluster)
    build.group("group1", a, b, ha=False)
    db = make_db()
    PersistentChatAssignment.objects.create(node=a, database=db)
    with pytest.raises(ValidationError) as exc:
        PersistentChatAssignment(node=b, database=db).full_clean()
    assert "without high availability each node needs its own database" in exc.value.messages[0]
