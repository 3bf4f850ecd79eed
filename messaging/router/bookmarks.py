"""Bookmarks over XMPP: the part of PEP (XEP-0163, on XEP-0060) that bookmarks need, on the
user's own bare JID, and XEP-0049 private XML storage.

What clients use (docs/chat-protocol.md, "Bookmarks"):

- converse.js 14 (the Web Chat page) looks for ``pubsub#publish-options`` on the bare JID, then
  uses XEP-0402 (node ``urn:xmpp:bookmarks:1``, one item per room) when ``urn:xmpp:bookmarks:1#compat``
  is there, XEP-0048 in PEP (node ``storage:bookmarks``, one item) otherwise.
- Gajim uses XEP-0402 when the bare JID has ``#compat-pep`` and ``pubsub#config-node-max``, XEP-0048
  in PEP with ``urn:xmpp:bookmarks-conversion:0``, and XEP-0049 (``jabber:iq:private``) without
  ``pubsub#publish-options``.

All three are views of one set of bookmarks per user (``messaging.bookmarks``, in the config DB),
which is what ``#compat`` and ``#compat-pep`` promise: a room bookmarked one way is there the
other ways. The nodes are never created or configured by clients: both exist for every user,
keep their items (``persist_items``), are the owner's alone (``access_model`` whitelist), and a
publish whose publish-options ask for anything else gets ``precondition-not-met``.

This module only reads and writes stanzas; the rows are ``messaging.bookmarks``'s.
"""

from __future__ import annotations

import logging
import xml.etree.ElementTree as ET

from django.conf import settings

from messaging import bookmarks
from messaging.bookmarks import BookmarkData, LimitReached
from messaging.models.bookmarks import ROOM_JID_MAX_LENGTH
from messaging.router.xmlstream import CLIENT_NS, child, element, q, tostring
from messaging.tc.stanzas import parse_xml
from topology.agent.db import in_worker_thread

logger = logging.getLogger(__name__)

PUBSUB_NS = "http://jabber.org/protocol/pubsub"
PUBSUB_OWNER_NS = f"{PUBSUB_NS}#owner"
PUBSUB_EVENT_NS = f"{PUBSUB_NS}#event"
PUBSUB_ERRORS_NS = f"{PUBSUB_NS}#errors"
PUBLISH_OPTIONS = f"{PUBSUB_NS}#publish-options"
PRIVATE_NS = "jabber:iq:private"
BOOKMARKS_NS = "urn:xmpp:bookmarks:1"  # XEP-0402
LEGACY_NS = "storage:bookmarks"  # XEP-0048, in PEP and in private XML storage
STANZA_ERROR_NS = "urn:ietf:params:xml:ns:xmpp-stanzas"
DISCO_INFO_NS = "http://jabber.org/protocol/disco#info"
DISCO_ITEMS_NS = "http://jabber.org/protocol/disco#items"
DATA_NS = "jabber:x:data"

NAMESPACES = frozenset({PUBSUB_NS, PUBSUB_OWNER_NS, PRIVATE_NS})  # the IQs this module answers
NODES = (BOOKMARKS_NS, LEGACY_NS)
LEGACY_ITEM = "current"  # XEP-0048 §3.2: the one item of storage:bookmarks

# disco#info on the user's own bare JID: exactly what is served here.
ACCOUNT_IDENTITIES = (("account", "registered"), ("pubsub", "pep"))
ACCOUNT_FEATURES = (
    DISCO_INFO_NS,
    DISCO_ITEMS_NS,
    PUBSUB_NS,
    f"{PUBSUB_NS}#access-whitelist",
    f"{PUBSUB_NS}#auto-create",
    f"{PUBSUB_NS}#config-node-max",
    f"{PUBSUB_NS}#item-ids",
    f"{PUBSUB_NS}#persistent-items",
    f"{PUBSUB_NS}#publish",
    PUBLISH_OPTIONS,
    f"{PUBSUB_NS}#retract-items",
    f"{PUBSUB_NS}#retrieve-items",
    f"{BOOKMARKS_NS}#compat",
    f"{BOOKMARKS_NS}#compat-pep",
)

# The configuration every bookmark node has; a publish-option must agree with it.
TRUE, FALSE = ("1", "true"), ("0", "false")
NODE_OPTIONS = {
    "pubsub#persist_items": TRUE,
    "pubsub#access_model": ("whitelist",),
    "pubsub#send_last_published_item": ("never",),
    "pubsub#notify_retract": TRUE,
    "pubsub#notify_delete": TRUE + FALSE,  # nodes are never deleted: nothing to notify either way
}
# XEP-0060 §6.5.7 and §7: what a request may be that is not served here → its feature name.
UNSUPPORTED = {
    "create": "create-nodes",
    "configure": "config-node",
    "default": "retrieve-default",
    "delete": "delete-nodes",
    "purge": "purge-nodes",
    "subscribe": "subscribe",
    "unsubscribe": "subscribe",
    "options": "subscription-options",
    "subscriptions": "retrieve-subscriptions",
    "affiliations": "retrieve-affiliations",
}
OWN_ONLY = "You can read and change only your own bookmarks and private data."


class Refused(Exception):
    """A request refused: the stanza error's type, condition and text, and the XEP-0060
    application condition (``pubsub#errors``) when there is one."""

    def __init__(self, kind: str, condition: str, text: str = "", app: str = "", **app_attrs: str) -> None:
        super().__init__(text)
        self.kind, self.condition, self.text, self.app, self.app_attrs = kind, condition, text, app, app_attrs


def _error(iq: ET.Element, refused: Refused) -> ET.Element:
    reply = ET.Element(iq.tag, {"type": "error"})
    for name, value in (("id", iq.get("id")), ("from", iq.get("to"))):
        if value is not None:
            reply.set(name, value)
    error = child(reply, CLIENT_NS, "error", {"type": refused.kind})
    child(error, STANZA_ERROR_NS, refused.condition)
    if refused.text:
        child(error, STANZA_ERROR_NS, "text", text=refused.text)
    if refused.app:
        child(error, PUBSUB_ERRORS_NS, refused.app, refused.app_attrs)
    return reply


def _size(element: ET.Element) -> int:
    return len(tostring(element, "").encode())


# --- who is asked ------------------------------------------------------------------------------


def is_own_account(stream, to: str | None) -> bool:
    """``to`` is the signed-in user's bare JID (or absent: RFC 6120 §10.3.3, the account)."""
    return not to or to.lower() == stream.session.user.jid


def _addressee(front, stream, to: str) -> None:
    """Bookmarks and private data live on the user's own bare JID: another user's is refused
    (whether or not that user exists), anything else has no such service."""
    if is_own_account(stream, to):
        return
    if "@" in to and "/" not in to and not front._is_conference(to.partition("@")[2]):
        raise Refused("auth", "forbidden", OWN_ONLY)
    raise Refused("cancel", "service-unavailable")


# --- entry points from the XMPP front end --------------------------------------------------------


async def iq(front, stream, iq: ET.Element, payload: ET.Element, to: str) -> None:
    """A ``pubsub``, ``pubsub#owner`` or ``jabber:iq:private`` IQ. A refusal is a stanza error;
    the stream stays up whatever the request holds."""
    try:
        _addressee(front, stream, to)
        ns = payload.tag[1:].partition("}")[0]
        if ns == PRIVATE_NS:
            reply = await _private(stream, iq, payload)
        elif ns == PUBSUB_NS and payload.tag == q(PUBSUB_NS, "pubsub"):
            reply = await _pubsub(front, stream, iq, payload)
        else:
            operation = next(iter(payload), None)
            name = operation.tag.rpartition("}")[2] if operation is not None else "configure"
            raise Refused("cancel", "feature-not-implemented", "", "unsupported", feature=UNSUPPORTED.get(name, name))
    except Refused as refused:
        stream.send(_error(iq, refused))
        return
    except Exception:
        logger.exception("Bookmarks request of %s failed", stream.session.user.jid)
        refused = Refused("wait", "internal-server-error", "Bookmarks could not be read or stored; try again.")
        stream.send(_error(iq, refused))
        return
    stream.send(front._result(iq, reply))


async def disco_info(front, stream, iq: ET.Element, to: str) -> None:
    """XEP-0030 on the user's own bare JID: the account and its PEP service, and what they do."""
    query = next(iter(iq))
    if query.get("node"):
        stream.send(_error(iq, Refused("cancel", "item-not-found")))
        return
    reply = element(DISCO_INFO_NS, "query")
    for category, kind in ACCOUNT_IDENTITIES:
        child(reply, DISCO_INFO_NS, "identity", {"category": category, "type": kind})
    for feature in ACCOUNT_FEATURES:
        child(reply, DISCO_INFO_NS, "feature", {"var": feature})
    stream.send(front._result(iq, reply))


async def disco_items(front, stream, iq: ET.Element, to: str) -> None:
    """XEP-0060 §5.2 on the user's own bare JID: the bookmark nodes, once they hold an item."""
    query = next(iter(iq))
    if query.get("node"):
        stream.send(_error(iq, Refused("cancel", "item-not-found")))
        return
    reply = element(DISCO_ITEMS_NS, "query")
    if await in_worker_thread(bookmarks.bookmarks_of)(stream.session.user.user_id):
        for node in NODES:
            child(reply, DISCO_ITEMS_NS, "item", {"jid": stream.session.user.jid, "node": node})
    stream.send(front._result(iq, reply))


# --- bookmarks as XML ----------------------------------------------------------------------------


def _boolean(value: str | None, what: str) -> bool:
    value = (value or "false").strip().lower()
    if value not in TRUE + FALSE:
        raise Refused("modify", "bad-request", f"{what} is true, false, 1 or 0.", "invalid-payload")
    return value in TRUE


def _room(value: str | None) -> str:
    """A room's bare JID, lower case, from a client."""
    room = (value or "").strip().lower()
    local, at, domain = room.partition("@")
    if not at or not local or not domain or "/" in room or "@" in domain or any(c.isspace() for c in room):
        raise Refused("modify", "bad-request", f"{value!r} is not a room's bare JID (room@service).", "invalid-payload")
    if len(room.encode()) > ROOM_JID_MAX_LENGTH:  # bytes: the unique index holds them
        raise Refused(
            "modify", "not-acceptable", f"A room JID of at most {ROOM_JID_MAX_LENGTH} bytes.", "invalid-payload"
        )
    return room


def _check_size(payload: ET.Element) -> None:
    if _size(payload) > settings.BOOKMARK_MAX_BYTES:
        raise Refused(
            "modify",
            "not-acceptable",
            f"A bookmark takes at most {settings.BOOKMARK_MAX_BYTES} bytes of XML.",
            "payload-too-big",
        )


def _conference(ns: str, conference: ET.Element, room: str) -> BookmarkData:
    """The bookmark a ``<conference/>`` of XEP-0402 (``ns`` ``urn:xmpp:bookmarks:1``, the room in
    the item id) or XEP-0048 (``storage:bookmarks``, the room in ``jid``) holds."""
    _check_size(conference)
    extensions = conference.find(q(ns, "extensions")) if ns == BOOKMARKS_NS else None
    return BookmarkData(
        room=room,
        name=conference.get("name") or "",
        autojoin=_boolean(conference.get("autojoin"), "autojoin"),
        nick=conference.findtext(q(ns, "nick")) or "",
        password=conference.findtext(q(ns, "password")) or "",
        extensions=tostring(extensions, "") if extensions is not None else "",
    )


def _conference_element(ns: str, bookmark: BookmarkData) -> ET.Element:
    conference = element(ns, "conference", {"name": bookmark.name or None})
    conference.set("autojoin", "true" if bookmark.autojoin else "false")
    if ns == LEGACY_NS:
        conference.set("jid", bookmark.room)
    if bookmark.nick:
        child(conference, ns, "nick", text=bookmark.nick)
    if bookmark.password:
        child(conference, ns, "password", text=bookmark.password)
    if ns == BOOKMARKS_NS and bookmark.extensions:
        extensions = parse_xml(bookmark.extensions)
        if extensions is not None:
            conference.append(extensions)
    return conference


def _storage(ns: str, storage: ET.Element) -> list[BookmarkData]:
    """The bookmarks of an XEP-0048 ``<storage/>`` (its ``<url/>`` bookmarks are not kept)."""
    conferences = storage.findall(q(ns, "conference"))
    if len(conferences) > settings.BOOKMARKS_MAX_ITEMS:
        raise Refused(
            "modify",
            "not-acceptable",
            f"{len(conferences)} bookmarks are more than the most kept for a user ({settings.BOOKMARKS_MAX_ITEMS}).",
        )
    return [_conference(ns, conference, _room(conference.get("jid"))) for conference in conferences]


def _storage_element(marks: list[BookmarkData]) -> ET.Element:
    storage = element(LEGACY_NS, "storage")
    for bookmark in marks:
        storage.append(_conference_element(LEGACY_NS, bookmark))
    return storage


def _items(node: str, marks: list[BookmarkData]) -> list[ET.Element]:
    """The node's items, oldest first: one per room (XEP-0402), or the one ``current``."""
    if node == LEGACY_NS:
        item = element(PUBSUB_NS, "item", {"id": LEGACY_ITEM})
        item.append(_storage_element(marks))
        return [item]
    items = []
    for bookmark in marks:
        item = element(PUBSUB_NS, "item", {"id": bookmark.room})
        item.append(_conference_element(BOOKMARKS_NS, bookmark))
        items.append(item)
    return items


# --- PEP (XEP-0060 on the bare JID) ----------------------------------------------------------------


def _node(element: ET.Element) -> str:
    node = element.get("node")
    if not node:
        raise Refused("modify", "bad-request", "Name the node.", "nodeid-required")
    return node


async def _pubsub(front, stream, iq: ET.Element, pubsub: ET.Element) -> ET.Element | None:
    kind = iq.get("type")
    operations = [child for child in pubsub if child.tag != q(PUBSUB_NS, "publish-options")]
    if len(operations) != 1:
        raise Refused("modify", "bad-request", "One pubsub request at a time.")
    operation = operations[0]
    name = operation.tag.rpartition("}")[2] if operation.tag.startswith(f"{{{PUBSUB_NS}}}") else ""
    if name == "items" and kind == "get":
        return await _retrieve(stream, operation)
    if name == "publish" and kind == "set":
        return await _publish(stream, operation, pubsub.find(q(PUBSUB_NS, "publish-options")))
    if name == "retract" and kind == "set":
        await _retract(stream, operation)
        return None
    if name in UNSUPPORTED:
        raise Refused("cancel", "feature-not-implemented", "", "unsupported", feature=UNSUPPORTED[name])
    raise Refused("modify", "bad-request", f"A pubsub {kind} of <{name or operation.tag}/> is not a request.")


async def _retrieve(stream, items: ET.Element) -> ET.Element:
    """XEP-0060 §6.5: all items, the last ``max_items``, or those named."""
    node = _node(items)
    if node not in NODES:
        raise Refused("cancel", "item-not-found", f"Only {' and '.join(NODES)} are kept here.")
    marks = await in_worker_thread(bookmarks.bookmarks_of)(stream.session.user.user_id)
    found = _items(node, marks) if marks else []
    wanted = {item.get("id") for item in items.findall(q(PUBSUB_NS, "item"))}
    if wanted:
        found = [item for item in found if item.get("id") in wanted]
    limit = items.get("max_items")
    if limit is not None:
        if not limit.strip().isdigit():
            raise Refused("modify", "bad-request", "max_items is a whole number.")
        found = found[len(found) - int(limit) :] if int(limit) else []
    reply = element(PUBSUB_NS, "pubsub")
    child(reply, PUBSUB_NS, "items", {"node": node}).extend(found)
    return reply


def _check_options(options: ET.Element | None) -> None:
    """XEP-0060 §7.1.5: every publish-option must hold for the node, or ``precondition-not-met``
    (a client may then configure the node, which is not offered, or publish without them)."""
    form = options.find(q(DATA_NS, "x")) if options is not None else None
    if form is None:
        return
    for field in form.findall(q(DATA_NS, "field")):
        var = field.get("var") or ""
        value = (field.findtext(q(DATA_NS, "value")) or "").strip()
        if var == "FORM_TYPE":
            if value != PUBLISH_OPTIONS:
                raise Refused("modify", "bad-request", f"The publish-options FORM_TYPE is {PUBLISH_OPTIONS}.")
        elif var == "pubsub#max_items":
            if value != "max" and not (value.isdigit() and int(value) > 0):
                raise Refused("cancel", "conflict", "pubsub#max_items is max or a number.", "precondition-not-met")
        elif value.lower() not in NODE_OPTIONS.get(var, ()):
            allowed = NODE_OPTIONS.get(var)
            why = f"{var} is {allowed[-1]} here" if allowed else f"{var} cannot be chosen here"
            raise Refused("cancel", "conflict", f"{why}: bookmark nodes are the owner's alone.", "precondition-not-met")


async def _publish(stream, publish: ET.Element, options: ET.Element | None) -> ET.Element:
    """XEP-0060 §7.1 on a bookmark node, which exists for every user (XEP-0163 auto-create);
    the user's session is told (XEP-0163 §4.3)."""
    node = _node(publish)
    if node not in NODES:
        raise Refused("cancel", "not-allowed", f"Only bookmarks are kept here ({' and '.join(NODES)}).")
    items = publish.findall(q(PUBSUB_NS, "item"))
    if len(items) != 1:
        raise Refused("modify", "bad-request", "Publish one item.", "item-required" if not items else "invalid-payload")
    item = items[0]
    payloads = list(item)
    if len(payloads) != 1:
        app = "payload-required" if not payloads else "invalid-payload"
        raise Refused("modify", "bad-request", "An item holds one element.", app)
    payload = payloads[0]
    _check_options(options)
    user_id = stream.session.user.user_id
    try:
        if node == BOOKMARKS_NS:
            if payload.tag != q(BOOKMARKS_NS, "conference"):
                raise Refused(
                    "modify", "bad-request", f"Items of {node} are <conference xmlns='{node}'/>.", "invalid-payload"
                )
            if not item.get("id"):
                raise Refused("modify", "bad-request", "The item id is the room's JID.", "item-required")
            bookmark = _conference(BOOKMARKS_NS, payload, _room(item.get("id")))
            await in_worker_thread(bookmarks.publish)(user_id, bookmark)
            item_id = bookmark.room
            published = _items(node, [bookmark])[0]
        else:
            if payload.tag != q(LEGACY_NS, "storage"):
                raise Refused(
                    "modify", "bad-request", f"The item of {node} is <storage xmlns='{node}'/>.", "invalid-payload"
                )
            marks = _storage(LEGACY_NS, payload)
            await in_worker_thread(bookmarks.replace)(user_id, marks)
            item_id = LEGACY_ITEM
            published = _items(node, await in_worker_thread(bookmarks.bookmarks_of)(user_id))[0]
    except LimitReached as exc:
        raise Refused("modify", "not-acceptable", str(exc), "max-items-exceeded") from None
    _notify(stream, node, published)
    reply = element(PUBSUB_NS, "pubsub")
    child(child(reply, PUBSUB_NS, "publish", {"node": node}), PUBSUB_NS, "item", {"id": item_id})
    return reply


async def _retract(stream, retract: ET.Element) -> None:
    """XEP-0060 §7.2: remove one bookmark (XEP-0402), or all of them (``current`` of XEP-0048)."""
    node = _node(retract)
    if node not in NODES:
        raise Refused("cancel", "item-not-found", f"Only {' and '.join(NODES)} are kept here.")
    ids = [item.get("id") for item in retract.findall(q(PUBSUB_NS, "item"))]
    if len(ids) != 1 or not ids[0]:
        raise Refused("modify", "bad-request", "Retract one item, by its id.", "item-required")
    user_id = stream.session.user.user_id
    if node == BOOKMARKS_NS:
        if not await in_worker_thread(bookmarks.retract)(user_id, ids[0].strip().lower()):
            raise Refused("cancel", "item-not-found", f"You have no bookmark of {ids[0]}.")
    else:
        if ids[0] != LEGACY_ITEM or not await in_worker_thread(bookmarks.bookmarks_of)(user_id):
            raise Refused("cancel", "item-not-found", f"{node} holds one item, {LEGACY_ITEM}, once you have bookmarks.")
        await in_worker_thread(bookmarks.replace)(user_id, [])
    if retract.get("notify", "").lower() in TRUE:
        _notify(stream, node, element(PUBSUB_EVENT_NS, "retract", {"id": ids[0]}))


def _notify(stream, node: str, item: ET.Element) -> None:
    """The event (XEP-0060 §7.1.2.1, §7.2.2.1) sent to the user's session, from their bare JID;
    each user has one session, so it is the only one to tell."""
    session = stream.session
    message = element(
        CLIENT_NS, "message", {"from": session.user.jid, "to": session.binding.full_jid, "type": "headline"}
    )
    items = child(child(message, PUBSUB_EVENT_NS, "event"), PUBSUB_EVENT_NS, "items", {"node": node})
    if item.tag == q(PUBSUB_NS, "item"):  # the published item, in the event namespace
        event_item = child(items, PUBSUB_EVENT_NS, "item", {"id": item.get("id")})
        event_item.extend(list(item))
    else:
        items.append(item)
    stream.send(message)


# --- XEP-0049 private XML storage ----------------------------------------------------------------

RESERVED = ("jabber:client", "jabber:server", PRIVATE_NS)
PRIVATE_KEY_BYTES = (1024, 255)  # namespace, element name: what PrivateXml's unique index holds


async def _private(stream, iq: ET.Element, query: ET.Element) -> ET.Element | None:
    """Get or set elements keyed by namespace and name; ``storage:bookmarks`` is the user's
    bookmarks. Storing an empty element removes what was stored under its key."""
    elements = list(query)
    if not elements:
        raise Refused("modify", "not-acceptable", "Name the element: <query xmlns='jabber:iq:private'><x xmlns='…'/>.")
    keys = []
    for item in elements:
        ns, _, name = item.tag[1:].partition("}") if item.tag.startswith("{") else ("", "", item.tag)
        if not ns or ns in RESERVED or ns.startswith("jabber:iq:"):
            raise Refused("modify", "not-acceptable", f"Private data is kept in a namespace of its own, not {ns!r}.")
        if len(ns.encode()) > PRIVATE_KEY_BYTES[0] or len(name.encode()) > PRIVATE_KEY_BYTES[1]:
            raise Refused(
                "modify",
                "not-acceptable",
                f"A namespace of at most {PRIVATE_KEY_BYTES[0]} bytes and a name of at most {PRIVATE_KEY_BYTES[1]}.",
            )
        keys.append((ns, name))
    user_id = stream.session.user.user_id
    reply = element(PRIVATE_NS, "query")
    if iq.get("type") == "get":
        for ns, name in keys:
            if (ns, name) == (LEGACY_NS, "storage"):
                reply.append(_storage_element(await in_worker_thread(bookmarks.bookmarks_of)(user_id)))
                continue
            stored = await in_worker_thread(bookmarks.private_xml)(user_id, ns, name)
            found = parse_xml(stored) if stored else None
            reply.append(found if found is not None else element(ns, name))
        return reply
    for (ns, name), item in zip(keys, elements, strict=True):
        if (ns, name) == (LEGACY_NS, "storage"):
            marks = _storage(LEGACY_NS, item)
            continue
        if _size(item) > settings.PRIVATE_XML_MAX_BYTES:
            raise Refused(
                "modify", "not-acceptable", f"A private element takes at most {settings.PRIVATE_XML_MAX_BYTES} bytes."
            )
    try:
        for (ns, name), item in zip(keys, elements, strict=True):
            if (ns, name) == (LEGACY_NS, "storage"):
                await in_worker_thread(bookmarks.replace)(user_id, marks)
            elif len(item) or (item.text or "").strip() or item.attrib:
                await in_worker_thread(bookmarks.store_private_xml)(user_id, ns, name, tostring(item, ""))
            else:
                await in_worker_thread(bookmarks.remove_private_xml)(user_id, ns, name)
    except LimitReached as exc:
        raise Refused("modify", "not-acceptable", str(exc)) from None
    return None
