"""Every messaging URL for every persona: login redirect, read-only GET ok and POST 403,
operator and super administrator allowed."""

from __future__ import annotations

import pytest
from django.urls import reverse

from messaging.models import ChatAlias, GroupChatAdministrator
from tests.messaging.conftest import make_external_database

pytestmark = pytest.mark.django_db


@pytest.fixture
def objects(build):
    cluster = build.cluster()
    node = build.node("imp-1a", cluster)
    database = make_external_database("tcmadb", "tcuser", hostname="tcdb.invalid")
    alias = ChatAlias.objects.create(alias="chat.example.com", node=node)
    administrator = GroupChatAdministrator.objects.create(cluster=cluster, im_address="andy@example.com")
    return {"db": database.pk, "alias": alias.pk, "cluster": cluster.pk, "administrator": administrator.pk}


def pages(objects):
    """(url name, args) of every page that answers GET."""
    return [
        ("messaging:chatsettings_edit", []),
        ("messaging:chatalias_list", []),
        ("messaging:chatalias_add", []),
        ("messaging:chatalias_edit", [objects["alias"]]),
        ("messaging:chatalias_delete", [objects["alias"]]),
        ("messaging:groupchatadministrator_list", []),
        ("messaging:groupchatadministrator_add", []),
        ("messaging:groupchatadministrator_edit", [objects["administrator"]]),
        ("messaging:groupchatadministrator_delete", [objects["administrator"]]),
        ("messaging:externaldatabase_list", []),
        ("messaging:externaldatabase_add", []),
        ("messaging:externaldatabase_detail", [objects["db"]]),
        ("messaging:externaldatabase_edit", [objects["db"]]),
        ("messaging:externaldatabase_delete", [objects["db"]]),
        ("messaging:verify_ha", []),
    ]


def changes(objects):
    """(url name, args) of every URL that changes something on POST."""
    return [
        ("messaging:chatsettings_edit", []),
        ("messaging:chatalias_add", []),
        ("messaging:chatalias_edit", [objects["alias"]]),
        ("messaging:chatalias_delete", [objects["alias"]]),
        ("messaging:chatalias_bulk_delete", []),
        ("messaging:groupchatadministrator_enable", []),
        ("messaging:groupchatadministrator_add", []),
        ("messaging:groupchatadministrator_edit", [objects["administrator"]]),
        ("messaging:groupchatadministrator_delete", [objects["administrator"]]),
        ("messaging:externaldatabase_add", []),
        ("messaging:externaldatabase_edit", [objects["db"]]),
        ("messaging:externaldatabase_delete", [objects["db"]]),
        ("messaging:externaldatabase_check", [objects["db"]]),
        ("messaging:externaldatabase_install", [objects["db"]]),
        ("messaging:verify_ha", []),
    ]


def test_anonymous_visitors_are_sent_to_the_login_page(personas, objects):
    for name, args in pages(objects) + changes(objects):
        url = reverse(name, args=args)
        for method in ("get", "post"):
            response = getattr(personas["anonymous"], method)(url)
            assert response.status_code == 302, (method, url)
            assert response["Location"].startswith(reverse("login")), url


@pytest.mark.parametrize("persona", ["read_only", "operator", "super_admin"])
def test_every_signed_in_role_can_open_every_page(personas, objects, persona):
    for name, args in pages(objects):
        response = personas[persona].get(reverse(name, args=args))
        assert response.status_code == 200, (persona, name)


def test_read_only_users_are_refused_every_change(personas, objects):
    for name, args in changes(objects):
        response = personas["read_only"].post(reverse(name, args=args), {"cluster": objects["cluster"]})
        assert response.status_code == 403, name


@pytest.mark.parametrize("persona", ["operator", "super_admin"])
def test_operators_and_super_administrators_may_run_checks_and_set_defaults(personas, objects, persona):
    client = personas[persona]
    response = client.post(reverse("messaging:externaldatabase_check", args=[objects["db"]]))
    assert response.status_code == 302
    response = client.post(
        reverse("messaging:chatsettings_edit"), {"cluster": objects["cluster"], "action": "defaults"}
    )
    assert response.status_code == 302
    response = client.post(reverse("messaging:chatalias_delete", args=[objects["alias"]]))
    assert response.status_code == 302
    assert not ChatAlias.objects.exists()


def test_status_panel_is_readable_by_read_only_and_stops_polling_when_idle(personas, objects):
    url = reverse("messaging:externaldatabase_status", args=[objects["db"]])
    assert personas["anonymous"].get(url).status_code == 302
    assert personas["read_only"].get(url).status_code == 286


def test_the_verify_results_are_readable_by_read_only_and_stop_polling_when_idle(personas, objects):
    url = reverse("messaging:verify_ha_results")
    assert personas["anonymous"].get(url).status_code == 302
    assert personas["read_only"].get(url).status_code == 286
