"""A user's bookmarks and private XML in the config DB (``messaging.bookmarks``), what the XMPP
front end reads and writes: one row per room, the limits, a whole-set replace that keeps a kept
room's extensions and its place, one user's rows apart from another's, and the rows going with
the user. Run again with the config DB on PostgreSQL (the unique indexes hold the longest keys
the front end lets through)."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction

from messaging import bookmarks
from messaging.bookmarks import BookmarkData, LimitReached
from messaging.models import Bookmark, PrivateXml
from messaging.models.bookmarks import ROOM_JID_MAX_LENGTH
from topology.models import EndUser

pytestmark = [pytest.mark.django_db, pytest.mark.configdb]

OPS, DEV, QA = "ops@conference.example.com", "dev@conference.example.com", "qa@conference.example.com"


@pytest.fixture
def users():
    return [EndUser.objects.create(user_id=name, jid=f"{name}@example.com") for name in ("andy", "bob")]


def test_a_publish_adds_or_replaces_the_users_bookmark_of_a_room_and_the_newest_comes_last(users):
    bookmarks.publish("andy", BookmarkData(OPS, name="Ops", autojoin=True, nick="Andy"))
    bookmarks.publish("andy", BookmarkData(DEV, autojoin=True))
    bookmarks.publish("andy", BookmarkData(OPS, name="Ops", autojoin=False, nick="Andy"))
    assert [(b.room, b.autojoin) for b in bookmarks.bookmarks_of("andy")] == [(DEV, True), (OPS, False)]
    assert bookmarks.bookmarks_of("bob") == []
    assert bookmarks.retract("andy", DEV) is True
    assert bookmarks.retract("andy", DEV) is False
    assert bookmarks.retract("bob", OPS) is False  # Bob's retract never reaches Andy's row
    assert [b.room for b in bookmarks.bookmarks_of("andy")] == [OPS]


def test_a_replace_makes_the_set_whole_and_a_kept_room_keeps_its_extensions_and_place(users):
    extensions = "<extensions xmlns='urn:xmpp:bookmarks:1'><pinned xmlns='urn:x:test'/></extensions>"
    bookmarks.publish("andy", BookmarkData(OPS, autojoin=True, extensions=extensions))
    bookmarks.publish("andy", BookmarkData(DEV, autojoin=True))
    bookmarks.replace("andy", [BookmarkData(QA, autojoin=True), BookmarkData(OPS, autojoin=True)])
    kept = bookmarks.bookmarks_of("andy")
    assert [b.room for b in kept] == [OPS, QA]
    assert kept[0].extensions == extensions
    bookmarks.replace("andy", [])
    assert bookmarks.bookmarks_of("andy") == []


def test_the_limits_refuse_what_is_beyond_them_and_keep_what_is_stored(users, settings):
    settings.BOOKMARKS_MAX_ITEMS = 2
    settings.PRIVATE_XML_MAX_ELEMENTS = 1
    bookmarks.publish("andy", BookmarkData(OPS))
    bookmarks.publish("andy", BookmarkData(DEV))
    with pytest.raises(LimitReached, match="You have 2 bookmarks"):
        bookmarks.publish("andy", BookmarkData(QA))
    bookmarks.publish("andy", BookmarkData(DEV, autojoin=True))  # a replace is not one more
    with pytest.raises(LimitReached):
        bookmarks.replace("andy", [BookmarkData(OPS), BookmarkData(DEV), BookmarkData(QA)])
    assert [b.room for b in bookmarks.bookmarks_of("andy")] == [OPS, DEV]
    bookmarks.store_private_xml("andy", "urn:x:one", "prefs", "<prefs xmlns='urn:x:one'/>")
    with pytest.raises(LimitReached):
        bookmarks.store_private_xml("andy", "urn:x:two", "prefs", "<prefs xmlns='urn:x:two'/>")
    bookmarks.store_private_xml("bob", "urn:x:two", "prefs", "<prefs xmlns='urn:x:two'>b</prefs>")  # Bob's own
    assert bookmarks.private_xml("andy", "urn:x:two", "prefs") is None
    assert bookmarks.private_xml("bob", "urn:x:two", "prefs") == "<prefs xmlns='urn:x:two'>b</prefs>"


def test_a_room_is_bookmarked_once_per_user_and_the_rows_go_with_the_user(users):
    andy, bob = users
    longest = "r" * (ROOM_JID_MAX_LENGTH - len("@c.example.com")) + "@c.example.com"
    Bookmark.objects.create(user=andy, room_jid=longest)
    Bookmark.objects.create(user=bob, room_jid=longest)
    PrivateXml.objects.create(user=andy, namespace="u" * 1024, element="e" * 255, xml="<e/>")
    with pytest.raises(IntegrityError), transaction.atomic():
        Bookmark.objects.create(user=andy, room_jid=longest)
    andy.delete()
    assert list(Bookmark.objects.values_list("user__user_id", flat=True)) == ["bob"]
    assert PrivateXml.objects.count() == 0
