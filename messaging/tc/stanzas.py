"""The stored forms of rooms and messages, as the product keeps them in the external database.

``tc_rooms.config`` holds a ``jabber:x:data`` room configuration form and ``tc_messages.msg``
the whole groupchat ``<message/>`` stanza. Both are written here and read back here. The
database may also hold rows written by other software (Cisco's own TC, a merged database), so
stored XML is parsed with defusedxml: no DTD, no entity expansion, no external fetch.
"""

from __future__ import annotations

import contextlib
import hashlib
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from xml.sax.saxutils import unescape

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring as safe_fromstring

DATA_FORMS_NS = "jabber:x:data"
IMP_NS = "urn:imp-admin:chat"
ROOMCONFIG_FORM_TYPE = "http://jabber.org/protocol/muc#roomconfig"

# What ElementTree writes for the characters it escapes in an attribute value.
_ATTRIBUTE_ENTITIES = {"&quot;": '"', "&#10;": "\n", "&#13;": "\r", "&#09;": "\t"}

# PostgreSQL regular expressions that read the client id and the sender of a stanza written by
# ``ChatMessage.to_stanza`` without parsing it: its attributes come in a fixed order, no
# attribute value holds a '"' and no text holds a '<'. The database applies them to many rows
# at once when a room's recent posts are needed to recognise a retried post; a row they do not
# match (written by other software) is parsed instead.
STANZA_CID_PATTERN = '^<message from="[^"]*" to="[^"]*" type="groupchat" id="([^"]*)"'
STANZA_SENDER_PATTERN = f'<sender xmlns="{IMP_NS}" jid="([^"]*)"'


_EPOCH = datetime(1970, 1, 1)


def stanza_id_for(room: str, stamp: datetime, stored: str) -> str:
    """The XEP-0359 ``stanza-id`` of a room message, made only of what the database keeps and a
    merge copies as it is: the room JID, the stamp and the stored stanza (``tc_messages``).
    ``tc_messages.msg_id`` is renumbered by a merge, so it cannot be the id. The stamp in
    microseconds leads, so a query by id finds its row by ``(room_jid, stamp)``."""
    micros = (stamp.replace(tzinfo=None) - _EPOCH) // timedelta(microseconds=1)
    digest = hashlib.blake2b(f"{room}\n{stored}".encode(), digest_size=6).hexdigest()
    return f"{micros}-{digest}"


def stamp_of_stanza_id(stanza_id: str) -> datetime | None:
    """The stamp a ``stanza_id_for`` id names, or None for an id this service never gave."""
    micros, dash, digest = stanza_id.partition("-")
    if not dash or not micros.isdigit() or len(digest) != 12 or len(micros) > 18:
        return None
    try:
        return _EPOCH + timedelta(microseconds=int(micros))
    except OverflowError:
        return None


def parse_xml(text: str) -> ET.Element | None:
    """Parse stored XML; None when it is not well-formed or declares a DTD or entities."""
    try:
        return safe_fromstring(text, forbid_dtd=True)
    except (ET.ParseError, DefusedXmlException):
        return None


def unescape_attribute(value: str) -> str:
    """The value of an attribute as ElementTree escaped it (for the patterns above)."""
    return unescape(value, _ATTRIBUTE_ENTITIES) if "&" in value else value


class AllowPm(StrEnum):
    """``muc#roomconfig_allowpm``: who may send private messages in the room (XEP-0045 §10.2)."""

    ANYONE = "anyone"
    PARTICIPANTS = "participants"
    MODERATORS = "moderators"
    NONE = "none"


class Whois(StrEnum):
    """``muc#roomconfig_whois``: who may see occupants' real JIDs."""

    ANYONE = "anyone"
    MODERATORS = "moderators"


# ``RoomConfig`` attributes held as booleans (form values 1/0, true/false).
BOOLEAN_FIELDS = frozenset(
    {"persistent", "members_only", "change_subject", "public", "moderated", "password_protected", "allow_invites"}
)


@dataclass
class RoomConfig:
    """A room's configuration, stored as a ``jabber:x:data`` form in ``tc_rooms.config`` (the
    XEP-0045 owner form's fields). Rooms stored before a field existed take the default."""

    name: str
    persistent: bool
    members_only: bool
    max_occupants: int
    description: str = ""
    change_subject: bool = True  # participants may change the subject (moderators always may)
    public: bool = True  # listed by disco#items on the conference service
    whois: Whois = Whois.ANYONE
    moderated: bool = False  # only occupants with voice (participants, moderators) post
    password_protected: bool = False  # a join needs ``secret`` (XEP-0045 §7.2.6)
    secret: str = field(default="", repr=False)  # the room's password, for its owners' eyes only
    allow_pm: AllowPm = AllowPm.ANYONE
    allow_invites: bool = False  # members of a members-only room who are not moderators may invite

    FIELDS = {
        "muc#roomconfig_roomname": "name",
        "muc#roomconfig_roomdesc": "description",
        "muc#roomconfig_persistentroom": "persistent",
        "muc#roomconfig_membersonly": "members_only",
        "muc#roomconfig_maxusers": "max_occupants",
        "muc#roomconfig_changesubject": "change_subject",
        "muc#roomconfig_publicroom": "public",
        "muc#roomconfig_whois": "whois",
        "muc#roomconfig_moderatedroom": "moderated",
        "muc#roomconfig_passwordprotectedroom": "password_protected",
        "muc#roomconfig_roomsecret": "secret",
        "muc#roomconfig_allowpm": "allow_pm",
        "muc#roomconfig_allowinvites": "allow_invites",
    }

    def to_xml(self) -> str:
        form = ET.Element("x", {"xmlns": DATA_FORMS_NS, "type": "submit"})
        hidden = ET.SubElement(form, "field", {"var": "FORM_TYPE", "type": "hidden"})
        ET.SubElement(hidden, "value").text = ROOMCONFIG_FORM_TYPE
        for var, attr in self.FIELDS.items():
            value = getattr(self, attr)
            text = ("1" if value else "0") if isinstance(value, bool) else str(value)
            ET.SubElement(ET.SubElement(form, "field", {"var": var}), "value").text = text
        return ET.tostring(form, encoding="unicode")

    @classmethod
    def from_xml(cls, text: str, defaults: RoomConfig) -> RoomConfig:
        """Parse a stored form; rooms written by other software may lack fields or the form,
        which keep the ``defaults`` (``persistent`` always comes from them: ``tc_rooms.type``)."""
        values: dict[str, str] = {}
        root = parse_xml(text) if text else None
        if root is not None:
            for item in root.iter():
                if item.tag.endswith("field") and item.get("var") in cls.FIELDS:
                    value = next((child.text for child in item if child.tag.endswith("value")), None)
                    values[cls.FIELDS[item.get("var")]] = value or ""
        config = replace(defaults)
        for attr, value in values.items():
            if attr == "persistent":
                continue
            with contextlib.suppress(ValueError):
                setattr(config, attr, config.parse(attr, value))
        config.name = config.name or defaults.name
        return config

    @classmethod
    def parse(cls, attr: str, value: str):
        """A form field's text as the attribute's value; ValueError when it is not one."""
        if attr in BOOLEAN_FIELDS:
            if value.strip().lower() in ("1", "true"):
                return True
            if value.strip().lower() in ("0", "false"):
                return False
            raise ValueError(f"{value!r} is not a boolean (1 or 0)")
        if attr == "max_occupants":
            if not value.strip().isdigit():
                raise ValueError(f"{value!r} is not a number of users")
            return int(value)
        if attr == "whois":
            return Whois(value.strip())
        if attr == "allow_pm":
            try:
                return AllowPm(value.strip())
            except ValueError:
                raise ValueError(f"{value!r} is not one of anyone, participants, moderators, none") from None
        return value


@dataclass(frozen=True)
class ChatMessage:
    """A room message as stored in ``tc_messages`` and broadcast to occupants."""

    room: str
    msg_id: int
    sender: str
    nick: str
    body: str
    stamp: datetime
    cid: str
    stanza_id: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if not self.stanza_id:
            object.__setattr__(self, "stanza_id", stanza_id_for(self.room, self.stamp, self.to_stanza()))

    def to_stanza(self) -> str:
        """The whole ``<message/>`` as the product stores it in ``tc_messages.msg``."""
        message = ET.Element(
            "message", {"from": f"{self.room}/{self.nick}", "to": self.room, "type": "groupchat", "id": self.cid}
        )
        ET.SubElement(message, "body").text = self.body
        ET.SubElement(message, "sender", {"xmlns": IMP_NS, "jid": self.sender})
        return ET.tostring(message, encoding="unicode")

    @classmethod
    def from_row(cls, room: str, msg_id: int, stamp: datetime, stanza: str) -> ChatMessage:
        """A stored message; a stanza that does not parse is shown as its raw text."""
        stanza_id = stanza_id_for(room, stamp, stanza)
        root = parse_xml(stanza)
        if root is None:
            return cls(room, msg_id, "", "", stanza, stamp, "", stanza_id)
        body = next((child.text or "" for child in root if child.tag.endswith("body")), "")
        sender = next((child.get("jid", "") for child in root if child.tag.endswith("sender")), "")
        nick = (root.get("from") or "").partition("/")[2]
        return cls(room, msg_id, sender, nick, body, stamp, root.get("id") or "", stanza_id)

    def as_event(self) -> dict:
        """Wire-neutral fields of the message (the codec adds the type)."""
        return {
            "room": self.room,
            "msg_id": self.msg_id,
            "from": self.sender,
            "nick": self.nick,
            "body": self.body,
            "stamp": self.stamp.isoformat(),
            "cid": self.cid,
            "stanza_id": self.stanza_id,
        }


def subject_stanza(room: str, nick: str, subject: str) -> str:
    """The subject change as the product keeps it in ``tc_rooms.spacket`` (its last subject packet)."""
    message = ET.Element("message", {"from": f"{room}/{nick}" if nick else room, "to": room, "type": "groupchat"})
    ET.SubElement(message, "subject").text = subject
    return ET.tostring(message, encoding="unicode")


def subject_nick(spacket: str) -> str:
    """The nickname of whoever set the subject, read from a stored subject packet ('' if none)."""
    root = parse_xml(spacket) if spacket else None
    return (root.get("from") or "").partition("/")[2] if root is not None else ""
