"""Group Chat Server Alias Mapping, Find and List: Delete Selected (reference 4.4)."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from messaging.models import ChatAlias
from tests.conftest import _client_for

pytestmark = pytest.mark.django_db
LIST = reverse("messaging:chatalias_list")
DELETE_SELECTED = reverse("messaging:chatalias_bulk_delete")


@pytest.fixture
def aliases(build):
    cluster = build.cluster("cluster1")
    a, b = build.node("imp-1a", cluster), build.node("imp-1b", cluster)
    return [
        ChatAlias.objects.create(alias="chat-a.example.com", node=a, is_primary=True),
        ChatAlias.objects.create(alias="chat-b.example.com", node=b),
        ChatAlias.objects.create(alias="keep.example.com", node=b),
    ]


def csrf_token(page: str) -> str:
    return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)[1]


def shown(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def test_an_operator_deletes_the_selected_aliases_after_confirming(operator, aliases):
    from auditlog.models import LogEntry

    client = _client_for(operator, enforce_csrf=True)
    first, second, _ = aliases
    page = client.get(LIST).content.decode()
    assert 'data-action="delete-selected">Delete Selected</button>' in page
    for alias in aliases:
        assert f'name="pk" value="{alias.pk}"' in page
    token = csrf_token(page)

    asked = client.post(DELETE_SELECTED, {"csrfmiddlewaretoken": token, "pk": [first.pk, second.pk]})
    confirmation = asked.content.decode()
    assert asked.status_code == 200
    assert "Delete Selected Group Chat Server Aliases" in confirmation
    assert "chat-a.example.com (imp-1a) — primary" in confirmation and "chat-b.example.com (imp-1b)" in confirmation
    assert "keep.example.com" not in confirmation
    assert ChatAlias.objects.count() == 3  # nothing deleted before the confirmation

    token = csrf_token(confirmation)
    data = {"csrfmiddlewaretoken": token, "pk": [first.pk, second.pk], "confirm": "yes"}
    response = client.post(DELETE_SELECTED, data, follow=True)
    assert response.redirect_chain == [(LIST, 302)]
    assert list(ChatAlias.objects.values_list("alias", flat=True)) == ["keep.example.com"]
    assert "Deleted 2 group chat server aliases: chat-a.example.com, chat-b.example.com." in shown(response)
    assert any(m.startswith("Restart Cisco XCP Text Conference Manager on these nodes") for m in shown(response))
    deleted = LogEntry.objects.filter(content_type__model="chatalias", action=LogEntry.Action.DELETE)
    assert sorted(deleted.values_list("object_repr", "actor__username")) == [
        ("chat-a.example.com", "operator"),
        ("chat-b.example.com", "operator"),
    ]


def test_delete_selected_without_the_csrf_token_is_refused(operator, aliases):
    client = _client_for(operator, enforce_csrf=True)
    response = client.post(DELETE_SELECTED, {"pk": [aliases[0].pk], "confirm": "yes"})
    assert response.status_code == 403
    assert ChatAlias.objects.count() == 3


def test_delete_selected_with_nothing_ticked_says_so(operator_client, aliases):
    response = operator_client.post(DELETE_SELECTED, {"confirm": "yes"}, follow=True)
    assert "Select at least one group chat server alias to delete." in shown(response)
    assert ChatAlias.objects.count() == 3


def test_read_only_users_see_no_delete_selected_and_are_refused(read_only_client, aliases):
    page = read_only_client.get(LIST).content.decode()
    assert "keep.example.com" in page
    assert "Delete Selected" not in page and 'name="pk"' not in page
    for data in ({"pk": [aliases[0].pk]}, {"pk": [aliases[0].pk], "confirm": "yes"}):
        assert read_only_client.post(DELETE_SELECTED, data).status_code == 403
    assert ChatAlias.objects.count() == 3


def test_the_list_page_is_titled_with_the_plural_aliases(read_only_client, aliases):
    page = read_only_client.get(LIST).content.decode()
    assert "<title>Find and List Group Chat Server Aliases · imp-admin</title>" in page
    assert "Aliass" not in page
