"""Rooms and the rules the chat settings impose on them, independent of any wire format.

A ``Room`` is the in-memory state a Text Conference Manager keeps for a room it hosts:
its configuration, members and occupants, and the ids of recent posts (so a post retried
after a lost acknowledgement is stored once). ``Policy`` is the part of the cluster's chat
settings (reference 4.1, 4.2) the service enforces; it is read once when the service starts.

Stored forms follow the product: ``tc_rooms.config`` holds a ``jabber:x:data`` room
configuration form, ``tc_messages.msg`` the whole groupchat ``<message/>`` stanza.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from messaging.chat.protocol import ChatError, ErrorCode

DATA_FORMS_NS = "jabber:x:data"
IMP_NS = "urn:imp-admin:chat"
RECENT_POSTS_KEPT = 2000


class RoomType(StrEnum):
    """``tc_rooms.type``."""

    PERSISTENT = "persistent"
    AD_HOC = "ad-hoc"


class Affiliation(StrEnum):
    """``tc_users.affiliation`` (reference 7)."""

    NONE = "none"
    OUTCAST = "outcast"
    MEMBER = "member"
    ADMIN = "admin"
    OWNER = "owner"


class Role(StrEnum):
    """``tc_users.role``; a stored member out of the room has role ``none``."""

    NONE = "none"
    VISITOR = "visitor"
    PARTICIPANT = "participant"
    MODERATOR = "moderator"


MEMBER_AFFILIATIONS = {Affiliation.MEMBER, Affiliation.ADMIN, Affiliation.OWNER}


@dataclass(frozen=True)
class Policy:
    """The chat settings a Text Conference Manager enforces (a snapshot of ChatSettings)."""

    persistent_chat_enabled: bool = False
    archive_joins_and_exits: bool = False
    archive_room_messages: bool = True
    only_admins_create_persistent: bool = False
    max_persistent_rooms: int = 1500
    max_rooms: int = 5500
    members_only_default: bool = False
    users_add_themselves_as_members: bool = False
    max_users_per_room: int = 1000
    default_max_occupancy: int = 50
    owners_change_max_occupancy: bool = True
    owners_change_members_only: bool = True
    history_default: int = 15
    history_max: int = 100
    db_connections: int = 5
    db_heartbeat_interval: int = 300
    administrators: frozenset[str] = frozenset()

    @classmethod
    def from_settings(cls, settings, administrators=frozenset()) -> Policy:
        names = [name for name in cls.__dataclass_fields__ if name not in {"persistent_chat_enabled", "administrators"}]
        return cls(
            persistent_chat_enabled=settings.enable_persistent_chat,
            administrators=frozenset(administrators),
            **{name: getattr(settings, name) for name in names},
        )

    def history_count(self, asked: int | None) -> int:
        """Messages sent on join: the default, or what the client asks up to the archive maximum."""
        return self.history_default if asked is None else min(asked, self.history_max)

    def page_size(self, asked: int | None) -> int:
        return self.history_max if asked is None else min(asked, self.history_max)

    def check_create(self, creator: str, persistent: bool, rooms_hosted: int, persistent_hosted: int) -> None:
        """Refuse a new room the settings do not allow; counts are the home node's rooms."""
        if persistent:
            if not self.persistent_chat_enabled:
                raise ChatError(
                    ErrorCode.PERSISTENT_CHAT_DISABLED,
                    "Persistent chat is not enabled on this cluster; create an ad hoc room instead.",
                )
            if self.only_admins_create_persistent and creator not in self.administrators:
                raise ChatError(
                    ErrorCode.FORBIDDEN,
                    "Only group chat system administrators may create persistent chat rooms here.",
                )
            if persistent_hosted >= self.max_persistent_rooms:
                raise ChatError(
                    ErrorCode.ROOM_LIMIT,
                    f"The node already holds {persistent_hosted} persistent chat rooms, the most allowed "
                    f"({self.max_persistent_rooms}).",
                )
        if rooms_hosted >= self.max_rooms:
            raise ChatError(
                ErrorCode.ROOM_LIMIT,
                f"The node already holds {rooms_hosted} rooms, the most allowed ({self.max_rooms}).",
            )

    def new_room_config(
        self, name: str, persistent: bool, subject: str, members_only: bool | None, max_occupants: int | None
    ) -> RoomConfig:
        """The configuration of a new room: the defaults, changed where owners may change them."""
        chosen_members_only = self.members_only_default
        if members_only is not None and members_only != chosen_members_only:
            if not self.owners_change_members_only:
                raise ChatError(ErrorCode.FORBIDDEN, "Room owners may not change whether rooms are members-only.")
            chosen_members_only = members_only
        occupancy = self.default_max_occupancy
        if max_occupants is not None and max_occupants != occupancy:
            if not self.owners_change_max_occupancy:
                raise ChatError(ErrorCode.FORBIDDEN, "Room owners may not change the maximum occupancy of a room.")
            if max_occupants > self.max_users_per_room:
                raise ChatError(
                    ErrorCode.BAD_REQUEST,
                    f"A room holds at most {self.max_users_per_room} users at one time; "
                    f"choose a maximum occupancy of 1–{self.max_users_per_room}.",
                )
            occupancy = max_occupants
        return RoomConfig(
            name=name, persistent=persistent, members_only=chosen_members_only, max_occupants=occupancy, subject=subject
        )


@dataclass
class RoomConfig:
    """A room's configuration, stored as a ``jabber:x:data`` form in ``tc_rooms.config``."""

    name: str
    persistent: bool
    members_only: bool
    max_occupants: int
    subject: str = ""

    FIELDS = {
        "muc#roomconfig_roomname": "name",
        "muc#roomconfig_persistentroom": "persistent",
        "muc#roomconfig_membersonly": "members_only",
        "muc#roomconfig_maxusers": "max_occupants",
        "muc#roomconfig_roomdesc": "subject",
    }

    def to_xml(self) -> str:
        form = ET.Element("x", {"xmlns": DATA_FORMS_NS, "type": "submit"})
        hidden = ET.SubElement(form, "field", {"var": "FORM_TYPE", "type": "hidden"})
        ET.SubElement(hidden, "value").text = "http://jabber.org/protocol/muc#roomconfig"
        for var, attr in self.FIELDS.items():
            value = getattr(self, attr)
            text = ("1" if value else "0") if isinstance(value, bool) else str(value)
            ET.SubElement(ET.SubElement(form, "field", {"var": var}), "value").text = text
        return ET.tostring(form, encoding="unicode")

    @classmethod
    def from_xml(cls, text: str, fallback_name: str, room_type: str, default_occupancy: int) -> RoomConfig:
        """Parse a stored form; rooms written by other software may lack fields or the form."""
        values: dict[str, str] = {}
        try:
            # Our own stored forms; expat (2.4+) refuses entity expansion attacks and never
            # fetches external entities.
            root = ET.fromstring(text) if text else None  # noqa: S314
        except ET.ParseError:
            root = None
        if root is not None:
            for item in root.iter():
                if item.tag.endswith("field") and item.get("var") in cls.FIELDS:
                    value = next((child.text for child in item if child.tag.endswith("value")), None)
                    values[cls.FIELDS[item.get("var")]] = value or ""
        occupancy = values.get("max_occupants", "")
        return cls(
            name=values.get("name") or fallback_name,
            persistent=room_type == RoomType.PERSISTENT,
            members_only=values.get("members_only") in {"1", "true"},
            max_occupants=int(occupancy) if occupancy.isdigit() else default_occupancy,
            subject=values.get("subject", ""),
        )


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
        try:
            root = ET.fromstring(stanza)  # noqa: S314 (stored stanzas, as above)
        except ET.ParseError:
            return cls(room, msg_id, "", "", stanza, stamp, "")
        body = next((child.text or "" for child in root if child.tag.endswith("body")), "")
        sender = next((child.get("jid", "") for child in root if child.tag.endswith("sender")), "")
        nick = (root.get("from") or "").partition("/")[2]
        return cls(room, msg_id, sender, nick, body, stamp, root.get("id") or "")

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
        }


@dataclass
class Occupant:
    """A user in a room, and the node whose XCP Router holds the user's session."""

    jid: str
    nick: str
    router: str


@dataclass
class Room:
    """A room loaded by the Text Conference Manager hosting it."""

    jid: str
    room_type: RoomType
    creator: str
    config: RoomConfig
    members: dict[str, Affiliation] = field(default_factory=dict)
    occupants: dict[str, Occupant] = field(default_factory=dict)
    # Next tc_messages.msg_id as of our last read or commit; a different value in the
    # database means another node wrote to the room (during a hand-over).
    known_next_msg_id: int = 1
    recent_posts: OrderedDict[tuple[str, str], int] = field(default_factory=OrderedDict)

    @property
    def persistent(self) -> bool:
        return self.room_type == RoomType.PERSISTENT

    def nick_jid(self, nick: str) -> str:
        return f"{self.jid}/{nick}"

    def is_member(self, jid: str) -> bool:
        return self.members.get(jid) in MEMBER_AFFILIATIONS

    def check_join(self, jid: str, policy: Policy) -> None:
        if jid in self.occupants:
            return
        if self.members.get(jid) == Affiliation.OUTCAST:
            raise ChatError(ErrorCode.FORBIDDEN, f"You are banned from {self.jid}.")
        if self.config.members_only and not self.is_member(jid):
            raise ChatError(
                ErrorCode.MEMBERS_ONLY, f"{self.jid} is for members only; ask a room owner to add you as a member."
            )
        limit = min(self.config.max_occupants, policy.max_users_per_room)
        if len(self.occupants) >= limit:
            raise ChatError(ErrorCode.ROOM_FULL, f"{self.jid} is full: it holds at most {limit} users at one time.")

    def remember_post(self, sender: str, cid: str, msg_id: int) -> None:
        self.recent_posts[(sender, cid)] = msg_id
        while len(self.recent_posts) > RECENT_POSTS_KEPT:
            self.recent_posts.popitem(last=False)

    def stored_post(self, sender: str, cid: str) -> int | None:
        """The msg_id a post with this client id already got, if it was stored."""
        return self.recent_posts.get((sender, cid))


def nick_for(jid: str) -> str:
    return jid.split("@", 1)[0]


def bare_room_jid(room: str, default_alias: str) -> str:
    """``name`` becomes ``name@<alias>``; a full room JID is kept (lower-cased, as JIDs compare)."""
    room = room.strip()
    if "@" not in room:
        room = f"{room}@{default_alias}"
    local, _, domain = room.partition("@")
    if not local or not domain or "/" in room or any(ch.isspace() for ch in room):
        raise ChatError(ErrorCode.BAD_REQUEST, f"{room!r} is not a room name or a room JID (name@alias).")
    return f"{local.lower()}@{domain.lower()}"
