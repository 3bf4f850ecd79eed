"""A user's bookmarks of rooms and private XML storage, in the config DB (``Bookmark``,
``PrivateXml``): what the XMPP front end's PEP and XEP-0049 requests read and write
(``messaging.router.bookmarks``), with the limits of ``settings.BOOKMARKS_MAX_ITEMS`` and
``PRIVATE_XML_MAX_ELEMENTS``. Both nodes of a redundancy group read the same rows, so a user's
bookmarks are the same on the backup node after a failover.

One set of bookmarks serves the three ways clients keep them: XEP-0402 items (one per room),
XEP-0048's ``storage:bookmarks`` in PEP and in private XML storage (all rooms in one element).
A client that writes the whole set through one of the last two replaces it.

Plain functions of the user's ID that know nothing of XMPP framing; they run in a worker thread.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.db import transaction

from messaging.models import Bookmark, PrivateXml
from topology.models import EndUser


class LimitReached(Exception):
    """The user holds the most bookmarks (or private XML elements) allowed; the message says so."""


@dataclass(frozen=True)
class BookmarkData:
    """One bookmark as clients give it (XEP-0402 ``<conference/>``, XEP-0048 ``<conference/>``)."""

    room: str  # the room's bare JID, lower case
    name: str = ""
    autojoin: bool = False
    nick: str = ""
    password: str = ""
    extensions: str = ""  # the XEP-0402 <extensions/> element as XML, or ""

    @classmethod
    def of(cls, row: Bookmark) -> BookmarkData:
        return cls(row.room_jid, row.name, row.autojoin, row.nick, row.password, row.extensions)

    def fields(self) -> dict:
        return {
            "name": self.name,
            "autojoin": self.autojoin,
            "nick": self.nick,
            "password": self.password,
            "extensions": self.extensions,
        }


def _user(user_id: str) -> EndUser:
    """The user's row, locked until the end of the transaction: a user's writes take turns, so
    the limits hold."""
    return EndUser.objects.select_for_update().only("pk").get(user_id=user_id)


def _too_many(count: int) -> LimitReached:
    return LimitReached(
        f"You have {count} bookmarks, the most kept for a user ({settings.BOOKMARKS_MAX_ITEMS}): remove one first."
    )


def bookmarks_of(user_id: str) -> list[BookmarkData]:
    """The user's bookmarks, the one published longest ago first."""
    rows = Bookmark.objects.filter(user__user_id=user_id).order_by("published", "pk")
    return [BookmarkData.of(row) for row in rows]


def publish(user_id: str, bookmark: BookmarkData) -> None:
    """Add the bookmark, or replace the user's bookmark of the same room."""
    with transaction.atomic():
        user = _user(user_id)
        updated = Bookmark.objects.filter(user=user, room_jid=bookmark.room)
        if not updated.exists():
            count = Bookmark.objects.filter(user=user).count()
            if count >= settings.BOOKMARKS_MAX_ITEMS:
                raise _too_many(count)
        Bookmark.objects.update_or_create(user=user, room_jid=bookmark.room, defaults=bookmark.fields())


def retract(user_id: str, room: str) -> bool:
    """Remove the user's bookmark of ``room``; False when there was none."""
    deleted, _ = Bookmark.objects.filter(user__user_id=user_id, room_jid=room).delete()
    return deleted > 0


def replace(user_id: str, bookmarks: list[BookmarkData]) -> None:
    """Make ``bookmarks`` the user's whole set (XEP-0048 ``storage:bookmarks``, which has no
    ``<extensions/>``: a room bookmarked before keeps its own)."""
    wanted = {bookmark.room: bookmark for bookmark in bookmarks}  # a room twice: the last one counts
    if len(wanted) > settings.BOOKMARKS_MAX_ITEMS:
        raise LimitReached(
            f"{len(wanted)} bookmarks are more than the most kept for a user ({settings.BOOKMARKS_MAX_ITEMS})."
        )
    with transaction.atomic():
        user = _user(user_id)
        kept = {row.room_jid: row for row in Bookmark.objects.filter(user=user)}
        Bookmark.objects.filter(user=user).exclude(room_jid__in=list(wanted)).delete()
        for room, bookmark in wanted.items():
            fields = bookmark.fields()
            if room in kept:
                fields["extensions"] = kept[room].extensions
                if BookmarkData.of(kept[room]) == BookmarkData(room, **fields):
                    continue  # unchanged: it keeps its place in the order
            Bookmark.objects.update_or_create(user=user, room_jid=room, defaults=fields)


def private_xml(user_id: str, namespace: str, element: str) -> str | None:
    """The element the user stored under (namespace, name), as XML; None when there is none."""
    row = PrivateXml.objects.filter(user__user_id=user_id, namespace=namespace, element=element).first()
    return row.xml if row is not None else None


def store_private_xml(user_id: str, namespace: str, element: str, xml: str) -> None:
    """Store (or replace) the user's element under (namespace, name)."""
    with transaction.atomic():
        user = _user(user_id)
        stored = PrivateXml.objects.filter(user=user)
        if not stored.filter(namespace=namespace, element=element).exists():
            count = stored.count()
            if count >= settings.PRIVATE_XML_MAX_ELEMENTS:
                raise LimitReached(
                    f"You keep {count} elements in private XML storage, the most allowed "
                    f"({settings.PRIVATE_XML_MAX_ELEMENTS}): store an empty one in a namespace to remove it."
                )
        PrivateXml.objects.update_or_create(user=user, namespace=namespace, element=element, defaults={"xml": xml})


def remove_private_xml(user_id: str, namespace: str, element: str) -> None:
    PrivateXml.objects.filter(user__user_id=user_id, namespace=namespace, element=element).delete()
