"""XEP-0045 occupant use cases over XMPP, beyond joining, posting and leaving: a nickname change
in a room (§7.6), private messages between occupants (§7.5), and mediated invitations and their
declines (§7.8.2), and a visitor's request for voice (§8.6); also XEP-0249 direct invitations
(converse.js sends those), checked by the room as mediated ones are.

Each becomes one request to the Text Conference Manager hosting the room (``messaging.tc.requests``,
through the router core), which checks it; this module only reads and writes the stanzas. A
refusal comes back as a ChatError, which the XMPP front end turns into the stanza error.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from messaging.chat.errors import ChatError, ErrorCode
from messaging.router.muc_admin import Refused, role_of
from messaging.router.xmlstream import CLIENT_NS
from messaging.tc import requests

MUC_USER_NS = "http://jabber.org/protocol/muc#user"
DATA_NS = "jabber:x:data"
MUC_REQUEST = "http://jabber.org/protocol/muc#request"  # XEP-0045 §8.6 voice requests
CONFERENCE_NS = "jabber:x:conference"  # XEP-0249
DELAY_NS = "urn:xmpp:delay"  # XEP-0203
NICK_CHANGED = "303"  # XEP-0045 status code: the occupant's nickname changed
REGISTER_NS = "jabber:iq:register"
MUC_REGISTER = "http://jabber.org/protocol/muc#register"  # XEP-0045 §7.10


def q(ns: str, name: str) -> str:
    return f"{{{ns}}}{name}"


async def change_nick(front, stream, room: str, nick: str) -> None:
    """§7.6: presence to room/newnick from an occupant. The occupant gets its own unavailable
    presence (303 with the new nick) and its new one, both with 110; the room tells the others."""
    session = stream.session
    answer = await front.router.change_nick(session, room, nick)
    user = session.user.jid
    for stanza in nick_change(front, stream, room, user, answer.old_nick, answer.nick, answer.affiliation, answer.role):
        stream.send(stanza)


def nick_change(
    front, stream, room: str, user: str, old: str, new: str, affiliation: str, role: str = "", mine: bool = True
) -> list[ET.Element]:
    """The two presences of a nickname change (XEP-0045 §7.6, example 57–58): unavailable from
    the old occupant JID with status 303 and the new nick on the item, then available from the
    new one; 110 when they are the recipient's own."""
    own = ["110"] if mine else []
    role = role or role_of(affiliation)
    arrived = front._occupant_presence(room, new, user, stream, codes=own, affiliation=affiliation, role=role)
    if old == new:
        return [arrived]
    gone = front._occupant_presence(
        room, old, user, stream, "unavailable", codes=[NICK_CHANGED, *own], affiliation=affiliation
    )
    item = gone.find(q(MUC_USER_NS, "x")).find(q(MUC_USER_NS, "item"))
    item.set("nick", new)
    item.set("role", role)  # still in the room, under another name
    return [gone, arrived]


async def private_message(front, stream, message: ET.Element, room: str, nick: str) -> None:
    """§7.5: a message to an occupant JID goes to that occupant's full JID, from the sender's
    occupant JID; it is not stored. A groupchat message to an occupant JID is a ``bad-request``;
    one without a body (a chat state) is dropped."""
    kind = message.get("type") or "normal"
    if kind == "groupchat":
        raise ChatError(ErrorCode.BAD_REQUEST, f"Send groupchat messages to the room ({room}), not to an occupant.")
    if kind not in ("chat", "normal"):
        return
    body = message.find(q(CLIENT_NS, "body"))
    if body is None or not (body.text or "").strip():
        return
    content = {"body": body.text, "id": message.get("id") or "", "message_type": kind}
    await front.router.send_private(stream.session, room, nick, content)


def private_stanza(binding, event: dict) -> ET.Element:
    """A private message as its recipient gets it: from the sender's occupant JID, with the
    (empty) ``muc#user`` element that tells clients it came through a room."""
    stanza = ET.Element(
        q(CLIENT_NS, "message"),
        {"from": f"{event['room']}/{event['nick']}", "to": binding.full_jid, "type": event.get("message_type", "chat")},
    )
    if event.get("id"):
        stanza.set("id", event["id"])
    ET.SubElement(stanza, q(CLIENT_NS, "body")).text = event["body"]
    ET.SubElement(stanza, q(MUC_USER_NS, "x"))
    return stanza


async def mediated(front, stream, message: ET.Element, x: ET.Element, room: str) -> None:
    """§7.8.2: ``<x xmlns='…muc#user'>`` to the room with ``<invite to=…>`` (one or more) from an
    occupant, or ``<decline to=…>`` from someone invited. The room passes each on, from the room,
    naming who sent it."""
    session = stream.session
    items = [(item, "invite") for item in x.findall(q(MUC_USER_NS, "invite"))]
    items += [(item, "decline") for item in x.findall(q(MUC_USER_NS, "decline"))]
    if not items:
        raise ChatError(ErrorCode.BAD_REQUEST, "Send an <invite to='user@domain'/> or a <decline/> to the room.")
    for item, kind in items:
        to = (item.get("to") or "").strip()
        jid = to.partition("/")[0].lower()
        local, _, domain = jid.partition("@")
        if not local or not domain or "@" in domain or any(ch.isspace() for ch in jid):
            raise Refused("modify", "jid-malformed", f"{to!r} is not a user's JID (user@domain).")
        reason = (item.findtext(q(MUC_USER_NS, "reason")) or "").strip()
        if kind == "invite":
            await front.router.invite(session, room, jid, reason, message.get("id") or "")
        else:
            await front.router.decline(session, room, jid, reason, message.get("id") or "")


async def direct_invite(front, stream, message: ET.Element, x: ET.Element, room: str) -> None:
    """XEP-0249: ``<x xmlns='jabber:x:conference' jid='room'/>`` in a message to the invitee's own
    JID. Only these are carried between users (one-to-one chat is not): the room checks the
    invitation as a mediated one (the inviter is in it, the chat settings allow it, a members-only
    room makes the invitee a member), and the invitee gets it from the inviter's full JID."""
    to = (message.get("to") or "").strip()
    jid = to.partition("/")[0].lower()
    local, _, domain = jid.partition("@")
    if not local or not domain or any(ch.isspace() for ch in jid):
        raise Refused("modify", "jid-malformed", f"{to!r} is not a user's JID (user@domain).")
    reason = (x.get("reason") or "").strip()
    session = stream.session
    await front.router.invite(session, room, jid, reason, message.get("id") or "", direct_from=session.binding.full_jid)


def mediated_stanza(binding, event: dict) -> ET.Element:
    """An invitation or a decline as the room passes it on: from the room, ``<invite from=…>`` or
    ``<decline from=…>`` with the reason, and a body for clients that know neither (as Prosody).
    A direct invitation (XEP-0249) comes from the inviter, as the inviter wrote it."""
    room, sender, reason = event["room"], event["from"], event.get("reason") or ""
    if event.get("direct_from"):
        stanza = ET.Element(q(CLIENT_NS, "message"), {"from": event["direct_from"], "to": binding.full_jid})
        if event.get("id"):
            stanza.set("id", event["id"])
        ET.SubElement(stanza, q(CONFERENCE_NS, "x"), {"jid": room, **({"reason": reason} if reason else {})})
        _kept_since(stanza, binding, event)
        return stanza
    stanza = ET.Element(q(CLIENT_NS, "message"), {"from": room, "to": binding.full_jid})
    if event.get("id"):
        stanza.set("id", event["id"])
    x = ET.SubElement(stanza, q(MUC_USER_NS, "x"))
    item = ET.SubElement(x, q(MUC_USER_NS, event["type"]), {"from": sender})
    if reason:
        ET.SubElement(item, q(MUC_USER_NS, "reason")).text = reason
    what = "invited you to the room" if event["type"] == "invite" else "declined your invitation to the room"
    ET.SubElement(stanza, q(CLIENT_NS, "body")).text = f"{sender} {what} {room}" + (f" ({reason})" if reason else "")
    _kept_since(stanza, binding, event)
    return stanza


def _kept_since(stanza: ET.Element, binding, event: dict) -> None:
    """An invitation kept while its invitee was signed in nowhere says when it was sent, with
    XEP-0203 delayed delivery from the user's server, as XEP-0160 (offline messages) has it."""
    if event.get("stamp"):
        domain = binding.full_jid.partition("@")[2].partition("/")[0]
        ET.SubElement(stanza, q(DELAY_NS, "delay"), {"from": domain, "stamp": event["stamp"]}).text = "Offline Storage"


def request_form(message: ET.Element) -> ET.Element | None:
    """The ``muc#request`` data form of a message (a voice request or a moderator's answer)."""
    for form in message.findall(q(DATA_NS, "x")):
        if _field(form, "FORM_TYPE") == MUC_REQUEST:
            return form
    return None


async def voice_request(front, stream, form: ET.Element, room: str) -> None:
    """§8.6: a visitor submits the form (``muc#role`` participant) and the room passes it to its
    moderators; a moderator submits it back with ``muc#request_allow`` true and
    ``muc#roomnick``, and the room gives that occupant voice (a role change as in §8.3).
    A moderator's answer that does not allow changes nothing."""
    session = stream.session
    if form.get("type") not in (None, "submit"):
        raise ChatError(ErrorCode.BAD_REQUEST, "Submit the voice request form with type='submit'.")
    allow = _field(form, "muc#request_allow")
    if allow is None:  # a visitor's request
        if (_field(form, "muc#role") or "participant") != "participant":
            raise ChatError(ErrorCode.BAD_REQUEST, "A voice request asks for the participant role (muc#role).")
        await front.router.request_voice(session, room)
        return
    if allow.strip().lower() not in ("1", "true"):
        return
    nick = (_field(form, "muc#roomnick") or "").strip()
    if not nick:
        raise ChatError(ErrorCode.BAD_REQUEST, "Name the occupant to give voice to (muc#roomnick).")
    item = {"nick": nick, "role": "participant", "reason": ""}
    await front.router.route(room, requests.SetRoles(room=room, user=session.user.jid, items=(item,)))


def voice_request_stanza(binding, event: dict) -> ET.Element:
    """A visitor's voice request as a moderator gets it (XEP-0045 §8.6, example 90): a form from
    the room to approve."""
    stanza = ET.Element(q(CLIENT_NS, "message"), {"from": event["room"], "to": binding.full_jid})
    form = ET.SubElement(stanza, q(DATA_NS, "x"), {"type": "form"})
    ET.SubElement(form, q(DATA_NS, "title")).text = "Voice request"
    ET.SubElement(form, q(DATA_NS, "instructions")).text = (
        'To approve this request for voice, select the "Grant voice to this person?" checkbox and click OK. '
        "To skip this request, click the cancel button."
    )
    for var, kind, label, value in (
        ("FORM_TYPE", "hidden", None, MUC_REQUEST),
        ("muc#role", "list-single", "Requested role", "participant"),
        ("muc#jid", "jid-single", "User ID", event["user"]),
        ("muc#roomnick", "text-single", "Room Nickname", event["nick"]),
        ("muc#request_allow", "boolean", "Grant voice to this person?", "false"),
    ):
        attrs = {"var": var, "type": kind, **({"label": label} if label else {})}
        ET.SubElement(ET.SubElement(form, q(DATA_NS, "field"), attrs), q(DATA_NS, "value")).text = value
    return stanza


def _field(form: ET.Element, var: str) -> str | None:
    for item in form.findall(q(DATA_NS, "field")):
        if item.get("var") == var:
            return item.findtext(q(DATA_NS, "value")) or ""
    return None


async def register(front, stream, iq: ET.Element, query: ET.Element, room: str) -> None:
    """XEP-0045 §7.10, registering with a room: ``get`` answers ``<registered/>`` and the
    reserved nickname to a member, the form (``muc#register_roomnick``) to a user who may become
    one; ``set`` submits the form. The room decides (``messaging.tc.occupants``)."""
    session = stream.session
    if iq.get("type") == "get":
        answer = await front.router.route(room, requests.Register(room=room, user=session.user.jid))
        reply = ET.Element(q(REGISTER_NS, "query"))
        if answer.registered:
            ET.SubElement(reply, q(REGISTER_NS, "registered"))
            ET.SubElement(reply, q(REGISTER_NS, "username")).text = answer.nick
        else:
            ET.SubElement(
                reply, q(REGISTER_NS, "instructions")
            ).text = f"Choose the nickname to reserve in {room}; you become a member of the room."
            form = ET.SubElement(reply, q(DATA_NS, "x"), {"type": "form"})
            ET.SubElement(form, q(DATA_NS, "title")).text = f"Register with {room}"
            hidden = ET.SubElement(form, q(DATA_NS, "field"), {"var": "FORM_TYPE", "type": "hidden"})
            ET.SubElement(hidden, q(DATA_NS, "value")).text = MUC_REGISTER
            field = ET.SubElement(
                form, q(DATA_NS, "field"), {"var": "muc#register_roomnick", "type": "text-single", "label": "Nickname"}
            )
            ET.SubElement(field, q(DATA_NS, "required"))
        stream.send(front._result(iq, reply))
        return
    if query.find(q(REGISTER_NS, "remove")) is not None:
        raise Refused("cancel", "not-allowed", f"A room owner or admin removes members of {room}.")
    form = query.find(q(DATA_NS, "x"))
    nick = _field(form, "muc#register_roomnick") if form is not None else None
    if form is None or form.get("type") != "submit" or _field(form, "FORM_TYPE") != MUC_REGISTER or not nick:
        raise ChatError(
            ErrorCode.BAD_REQUEST,
            f"Submit the {MUC_REGISTER} form with the nickname in muc#register_roomnick.",
        )
    await front.router.route(room, requests.Register(room=room, user=session.user.jid, nick=nick))
    stream.send(front._result(iq))
