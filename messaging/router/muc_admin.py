"""XEP-0045 owner and admin use cases over XMPP: the room configuration form (``muc#owner``,
§10.1–§10.2: instant and reserved rooms), room destruction (§10.9), and the member lists
(``muc#admin`` affiliations, §9 and §10.3–§10.8).

Each IQ becomes one request to the Text Conference Manager hosting the room
(``messaging.tc.requests``), which checks who asks and what the chat settings allow; this module
only reads and writes the stanzas. A refusal comes back as a ChatError, which the XMPP front end
turns into the stanza error (``ERROR_CONDITIONS`` in ``xmpp``); what the service does not offer
at all is a ``Refused`` with its XMPP condition.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from messaging.chat.errors import ChatError, ErrorCode
from messaging.tc import requests
from messaging.tc.stanzas import ROOMCONFIG_FORM_TYPE, RoomConfig

MUC_OWNER_NS = "http://jabber.org/protocol/muc#owner"
MUC_ADMIN_NS = "http://jabber.org/protocol/muc#admin"
DATA_NS = "jabber:x:data"

# The owner form: field → (type, label); values come from ``requests.Configuration``.
FORM_FIELDS = {
    "muc#roomconfig_roomname": ("text-single", "Room name"),
    "muc#roomconfig_roomdesc": ("text-single", "Room description"),
    "muc#roomconfig_persistentroom": ("boolean", "Make the room persistent"),
    "muc#roomconfig_membersonly": ("boolean", "Make the room members-only"),
    "muc#roomconfig_maxusers": ("text-single", "Maximum number of occupants"),
    "muc#roomconfig_changesubject": ("boolean", "Allow occupants to change the subject"),
    "muc#roomconfig_publicroom": ("boolean", "List the room in the directory"),
    "muc#roomconfig_whois": ("list-single", "Who may discover occupants' real JIDs"),
    "muc#roomconfig_moderatedroom": ("boolean", "Make the room moderated (only occupants with voice post)"),
    "muc#roomconfig_passwordprotectedroom": ("boolean", "Password required to enter"),
    "muc#roomconfig_roomsecret": ("text-private", "Password"),
    "muc#roomconfig_allowpm": ("list-single", "Who may send private messages"),
    "muc#roomconfig_allowinvites": ("boolean", "Allow members to invite others to a members-only room"),
}
# Options of the list-single fields: (value, label).
FORM_OPTIONS = {
    "muc#roomconfig_whois": (("anyone", "Anyone"),),
    "muc#roomconfig_allowpm": (
        ("anyone", "Anyone"),
        ("participants", "Participants and moderators"),
        ("moderators", "Moderators only"),
        ("none", "Nobody"),
    ),
}
AFFILIATIONS = ("owner", "admin", "member", "outcast", "none")
ROLES = ("moderator", "participant", "visitor", "none")


class Refused(Exception):
    """A request this service does not serve: the XMPP error type and condition, and why."""

    def __init__(self, kind: str, condition: str, text: str) -> None:
        super().__init__(text)
        self.kind = kind
        self.condition = condition
        self.text = text


def q(ns: str, name: str) -> str:
    return f"{{{ns}}}{name}"


async def owner_iq(router, session, iq: ET.Element, query: ET.Element, room: str) -> ET.Element | None:
    """A ``muc#owner`` IQ from an occupant's session: the payload of the result, or None."""
    user = session.user.jid
    if iq.get("type") == "get":
        answer = await router.route(room, requests.GetConfiguration(room=room, user=user))
        return configuration_form(answer)
    destroy = query.find(q(MUC_OWNER_NS, "destroy"))
    if destroy is not None:
        reason = (destroy.findtext(q(MUC_OWNER_NS, "reason")) or "").strip()
        # The room tells its occupants, the owner too, with an unavailable presence (``kicked``).
        await router.route(room, requests.Destroy(room=room, user=user, reason=reason))
        return None
    form = query.find(q(DATA_NS, "x"))
    if form is None:
        raise ChatError(ErrorCode.BAD_REQUEST, "Send the room configuration form (jabber:x:data) or <destroy/>.")
    if form.get("type") == "cancel":
        return None  # the room keeps its configuration (rooms here are usable at once, never locked)
    if form.get("type") != "submit":
        raise ChatError(ErrorCode.BAD_REQUEST, "Submit the room configuration form with type='submit'.")
    await router.route(room, requests.Configure(room=room, user=user, changes=submitted_changes(form)))
    return None


def configuration_form(answer: requests.Configuration) -> ET.Element:
    """The owner form (XEP-0045 §10.2, the ``muc#roomconfig`` FORM_TYPE) with the room's values;
    fields the chat settings let no owner change say so."""
    values = {
        "muc#roomconfig_roomname": answer.name,
        "muc#roomconfig_roomdesc": answer.description,
        "muc#roomconfig_persistentroom": _bool(answer.persistent),
        "muc#roomconfig_membersonly": _bool(answer.members_only),
        "muc#roomconfig_maxusers": str(answer.max_occupants),
        "muc#roomconfig_changesubject": _bool(answer.change_subject),
        "muc#roomconfig_publicroom": _bool(answer.public),
        "muc#roomconfig_whois": answer.whois,
        "muc#roomconfig_moderatedroom": _bool(answer.moderated),
        "muc#roomconfig_passwordprotectedroom": _bool(answer.password_protected),
        "muc#roomconfig_roomsecret": answer.secret,
        "muc#roomconfig_allowpm": answer.allow_pm,
        "muc#roomconfig_allowinvites": _bool(answer.allow_invites),
    }
    query = ET.Element(q(MUC_OWNER_NS, "query"))
    form = ET.SubElement(query, q(DATA_NS, "x"), {"type": "form"})
    ET.SubElement(form, q(DATA_NS, "title")).text = f"Configuration of {answer.room}"
    hidden = ET.SubElement(form, q(DATA_NS, "field"), {"var": "FORM_TYPE", "type": "hidden"})
    ET.SubElement(hidden, q(DATA_NS, "value")).text = ROOMCONFIG_FORM_TYPE
    for var, (kind, label) in FORM_FIELDS.items():
        item = ET.SubElement(form, q(DATA_NS, "field"), {"var": var, "type": kind, "label": label})
        attr = RoomConfig.FIELDS[var]
        if attr in answer.locked:
            ET.SubElement(item, q(DATA_NS, "desc")).text = "The chat settings let no room owner change this."
        elif attr == "max_occupants":
            ET.SubElement(item, q(DATA_NS, "desc")).text = f"1–{answer.occupancy_limit}"
        elif attr == "allow_invites":
            ET.SubElement(
                item, q(DATA_NS, "desc")
            ).text = (
                "In a members-only room; elsewhere the chat settings' lowest participation level to invite decides."
            )
        ET.SubElement(item, q(DATA_NS, "value")).text = values[var]
        for value, label in FORM_OPTIONS.get(var, ()):
            option = ET.SubElement(item, q(DATA_NS, "option"), {"label": label})
            ET.SubElement(option, q(DATA_NS, "value")).text = value
    return query


def submitted_changes(form: ET.Element) -> dict[str, str]:
    """The values of a submitted owner form, by ``RoomConfig`` attribute (an empty form: an
    instant room, XEP-0045 §10.1.2). Fields this service does not know are left alone."""
    changes: dict[str, str] = {}
    for item in form.findall(q(DATA_NS, "field")):
        var = item.get("var")
        value = item.findtext(q(DATA_NS, "value")) or ""
        if var == "FORM_TYPE" and value.strip() not in ("", ROOMCONFIG_FORM_TYPE):
            raise ChatError(
                ErrorCode.BAD_REQUEST, f"The room configuration form's FORM_TYPE is {ROOMCONFIG_FORM_TYPE}."
            )
        if var in RoomConfig.FIELDS:
            changes[RoomConfig.FIELDS[var]] = value
    return changes


async def admin_iq(router, session, iq: ET.Element, query: ET.Element, room: str) -> ET.Element | None:
    """A ``muc#admin`` IQ: read an affiliation or a role list (get), or change affiliations or
    roles (set). Items name either affiliations or roles, never both in one request."""
    user = session.user.jid
    items = query.findall(q(MUC_ADMIN_NS, "item"))
    if not items:
        raise ChatError(ErrorCode.BAD_REQUEST, "Name the affiliation (or the users) in <item/> elements.")
    by_role = [item.get("role") is not None and item.get("affiliation") is None for item in items]
    if any(by_role):
        if not all(by_role):
            raise ChatError(ErrorCode.BAD_REQUEST, "Change roles and affiliations in separate requests.")
        return await _roles_iq(router, user, iq, items, room)
    if iq.get("type") == "get":
        if len(items) != 1 or items[0].get("affiliation") not in AFFILIATIONS[:4]:
            raise ChatError(ErrorCode.BAD_REQUEST, "Ask for one list: owner, admin, member or outcast.")
        answer = await router.route(
            room, requests.GetAffiliations(room=room, user=user, affiliation=items[0].get("affiliation"))
        )
        return affiliation_list(answer)
    changes = []
    for item in items:
        change = {
            "user": (item.get("jid") or "").partition("/")[0],
            "nick": item.get("nick") or "",
            "affiliation": item.get("affiliation") or "",
            "reason": (item.findtext(q(MUC_ADMIN_NS, "reason")) or "").strip(),
        }
        if item.get("jid") and item.get("nick") is not None:
            # With a JID, the nick is the member's reserved nickname; empty unsets it (XEP-0045 §9.5).
            change["reserved_nick"] = item.get("nick")
        changes.append(change)
    await router.route(room, requests.SetAffiliations(room=room, user=user, items=tuple(changes)))
    return None


async def _roles_iq(router, user: str, iq: ET.Element, items: list[ET.Element], room: str) -> ET.Element | None:
    """§8.2–§8.5, §9.6–§9.8: the voice or moderator list, or role changes by nick."""
    if iq.get("type") == "get":
        if len(items) != 1 or items[0].get("role") not in ("participant", "moderator"):
            raise ChatError(ErrorCode.BAD_REQUEST, "Ask for one list: participant (voice) or moderator.")
        answer = await router.route(room, requests.GetRoles(room=room, user=user, role=items[0].get("role")))
        query = ET.Element(q(MUC_ADMIN_NS, "query"))
        for entry in answer.items:
            attrs = {"affiliation": entry["affiliation"], "jid": entry["user"], "nick": entry["nick"]}
            ET.SubElement(query, q(MUC_ADMIN_NS, "item"), {**attrs, "role": entry["role"]})
        return query
    changes = []
    for item in items:
        if item.get("role") not in ROLES:
            raise ChatError(ErrorCode.BAD_REQUEST, f"{item.get('role')!r} is not a role ({', '.join(ROLES)}).")
        reason = (item.findtext(q(MUC_ADMIN_NS, "reason")) or "").strip()
        changes.append({"nick": item.get("nick") or "", "role": item.get("role"), "reason": reason})
    await router.route(room, requests.SetRoles(room=room, user=user, items=tuple(changes)))
    return None


def affiliation_list(answer: requests.Affiliations) -> ET.Element:
    query = ET.Element(q(MUC_ADMIN_NS, "query"))
    for entry in answer.items:
        attrs = {"affiliation": entry["affiliation"], "jid": entry["user"]}
        if entry.get("nick"):
            attrs["nick"] = entry["nick"]
        ET.SubElement(query, q(MUC_ADMIN_NS, "item"), attrs)
    return query


def role_of(affiliation: str) -> str:
    """An occupant's role where the room did not say it (events of an older node): owners and
    admins moderate, everyone else participates."""
    return "moderator" if affiliation in ("owner", "admin") else "participant"


def _bool(value: bool) -> str:
    return "1" if value else "0"
