"""Rooms and the rules the chat settings impose on them, independent of any wire format.

A ``Room`` is the in-memory state a Text Conference Manager keeps for a room it hosts:
its configuration, members and occupants, its recent messages (``RecentHistory``) and the ids
of recent posts (so a post retried after a lost acknowledgement is stored once). ``Policy`` is
the part of the cluster's chat settings (reference 4.1, 4.2) the service enforces; it is read
once when the service starts. The stored forms of rooms and messages are in ``stanzas``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from bisect import bisect_left, bisect_right
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum

from messaging.chat.errors import ChatError, ErrorCode
from messaging.tc.stanzas import AllowPm, ChatMessage, RoomConfig

# Posts remembered per room (sender and client id), so a post retried after a lost
# acknowledgement is stored once.
RECENT_POSTS_KEPT = 2000
DEFAULT_HISTORY_KEPT = 100  # the chat settings' default archive maximum


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
MODERATOR_AFFILIATIONS = {Affiliation.ADMIN, Affiliation.OWNER}  # their role in the room is moderator
# XEP-0045 §5.2's hierarchies, lowest first: what a moderator may do to an occupant depends on both.
AFFILIATION_RANK = {
    Affiliation.OUTCAST: 0,
    Affiliation.NONE: 1,
    Affiliation.MEMBER: 2,
    Affiliation.ADMIN: 3,
    Affiliation.OWNER: 4,
}
ROLE_RANK = {Role.NONE: 0, Role.VISITOR: 1, Role.PARTICIPANT: 2, Role.MODERATOR: 3}
# The chat settings' participation levels (``ParticipationLevel``) are roles: "visitor" lets
# everyone in the room, "moderator" only moderators.
PARTICIPATION_MODERATOR = "moderator"
# The chat settings' lowest level for private messages as the owner form's ``allowpm``, and back
# (``none``: nobody, which only a room's owner can choose).
ALLOW_PM_OF_LEVEL = {"visitor": AllowPm.ANYONE, "participant": AllowPm.PARTICIPANTS, "moderator": AllowPm.MODERATORS}
LEVEL_OF_ALLOW_PM = {allow: level for level, allow in ALLOW_PM_OF_LEVEL.items()}
MAX_SUBJECT = 255  # tc_rooms.subject
MAX_NICK_BYTES = 1023  # a nickname is the resource of an occupant JID (RFC 7622)
MAX_CONFIG_TEXT = 255  # a room's name or description


# Room passwords are kept as salted scrypt hashes (``scrypt$n$r$p$salt$hash``), never as sent,
# and the owner form never shows them. A join of a protected room costs one hash on the Text
# Conference Manager's loop: about 20 ms here at these costs (40 ms at n = 2**14).
SCRYPT = {"n": 2**13, "r": 8, "p": 1}


def hash_room_secret(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, dklen=32, **SCRYPT)
    encoded = [base64.b64encode(part).decode() for part in (salt, digest)]
    return "$".join(["scrypt", str(SCRYPT["n"]), str(SCRYPT["r"]), str(SCRYPT["p"]), *encoded])


def room_secret_matches(password: str, stored: str) -> bool:
    try:
        kind, n, r, p, salt, digest = stored.split("$")
        if kind != "scrypt":
            return False
        expected = base64.b64decode(digest)
        given = hashlib.scrypt(
            password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p), dklen=len(expected)
        )
    except (ValueError, TypeError):
        return False  # not a hash this version wrote: no password matches it
    return hmac.compare_digest(given, expected)


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
    moderated_default: bool = False
    owners_change_moderated: bool = True
    max_users_per_room: int = 1000
    default_max_occupancy: int = 50
    owners_change_max_occupancy: bool = True
    owners_change_members_only: bool = True
    change_subject_min_level: str = "participant"
    private_message_min_level: str = "visitor"
    owners_change_private_message_level: bool = True
    invite_min_level: str = "participant"
    only_moderators_invite: bool = True
    owners_change_only_moderators_invite: bool = True
    owners_change_subject_level: bool = False
    history_default: int = 15
    history_max: int = 100
    db_connections: int = 5
    db_heartbeat_interval: int = 300
    persistent_room_timeout: float = 0  # minutes; 0 = never

    @classmethod
    def from_settings(cls, settings) -> Policy:
        names = [name for name in cls.__dataclass_fields__ if name != "persistent_chat_enabled"]
        return cls(
            persistent_chat_enabled=settings.enable_persistent_chat,
            **{name: getattr(settings, name) for name in names},
        )

    def history_count(self, asked: int | None) -> int:
        """Messages sent on join: the default, or what the client asks up to the archive maximum."""
        return self.history_default if asked is None else min(asked, self.history_max)

    def page_size(self, asked: int | None) -> int:
        return self.history_max if asked is None else min(asked, self.history_max)

    def check_create(
        self,
        creator: str,
        persistent: bool,
        rooms_hosted: int,
        persistent_hosted: int,
        administrators: frozenset[str] | None = None,
    ) -> None:
        """Refuse a new room the settings do not allow; counts are the home node's rooms.

        ``administrators`` are the JIDs of the cluster's group chat system administrators, or
        None when "Enable Group Chat System Administrators" is off there.
        """
        if persistent:
            if not self.persistent_chat_enabled:
                raise ChatError(
                    ErrorCode.PERSISTENT_CHAT_DISABLED,
                    "Persistent chat is not enabled on this cluster; create an ad hoc room instead.",
                )
            if self.only_admins_create_persistent:
                if administrators is None:
                    raise ChatError(
                        ErrorCode.FORBIDDEN,
                        "Only group chat system administrators may create persistent chat rooms here, and "
                        "group chat system administrators are not enabled on this cluster.",
                    )
                if creator.lower() not in administrators:
                    raise ChatError(
                        ErrorCode.FORBIDDEN,
                        f"Only group chat system administrators may create persistent chat rooms here; "
                        f"{creator} is not one.",
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

    def default_config(self, name: str, persistent: bool) -> RoomConfig:
        """A new room's configuration as the chat settings give it."""
        return RoomConfig(
            name=name,
            persistent=persistent,
            members_only=self.members_only_default,
            max_occupants=self.default_max_occupancy,
            change_subject=self.change_subject_min_level != "moderator",
            moderated=self.moderated_default,
            allow_pm=ALLOW_PM_OF_LEVEL[self.private_message_min_level],
            allow_invites=not self.only_moderators_invite,
        )

    def locked_fields(self) -> set[str]:
        """``RoomConfig`` fields the chat settings let no room owner change."""
        locked = {"whois"}  # rooms are non-anonymous: Jabber clients fail in anonymous rooms
        if not self.owners_change_members_only:
            locked.add("members_only")
        if not self.owners_change_max_occupancy:
            locked.add("max_occupants")
        if not self.owners_change_subject_level:
            locked.add("change_subject")
        if not self.owners_change_moderated:
            locked.add("moderated")
        if not self.owners_change_private_message_level:
            locked.add("allow_pm")
        if not self.owners_change_only_moderators_invite:
            locked.add("allow_invites")
        return locked

    def configure(self, current: RoomConfig, changes: dict) -> RoomConfig:
        """``current`` with an owner's changes (``RoomConfig`` attribute → form text or value),
        checked against the chat settings; whether the room may become persistent is the
        caller's to check (it needs the node's room counts)."""
        config = replace(current)
        locked = self.locked_fields()
        for attr, raw in changes.items():
            if attr not in RoomConfig.FIELDS.values():
                raise ChatError(ErrorCode.BAD_REQUEST, f"A room has no setting {attr!r}.")
            try:
                value = RoomConfig.parse(attr, raw) if isinstance(raw, str) else raw
            except ValueError as exc:
                raise ChatError(ErrorCode.NOT_ACCEPTABLE, f"{_LABELS[attr]}: {exc}.") from None
            if attr == "secret":
                if not value:
                    continue  # the form never shows the stored password: empty keeps it
                if len(value) > MAX_CONFIG_TEXT:
                    raise ChatError(
                        ErrorCode.NOT_ACCEPTABLE, f"{_LABELS[attr]} may hold at most {MAX_CONFIG_TEXT} characters."
                    )
                config.secret = hash_room_secret(value)
                continue
            if value == getattr(current, attr):
                continue
            if attr in locked:
                if attr == "whois":
                    raise ChatError(
                        ErrorCode.NOT_ACCEPTABLE,
                        "Rooms here show every occupant's real JID to everyone (whois = anyone); "
                        "anonymous rooms are not offered.",
                    )
                raise ChatError(ErrorCode.NOT_ALLOWED, f"Room owners may not change {_LABELS[attr]} here.")
            if attr == "max_occupants" and not 1 <= value <= self.max_users_per_room:
                raise ChatError(
                    ErrorCode.NOT_ACCEPTABLE,
                    f"A room holds at most {self.max_users_per_room} users at one time; "
                    f"choose a maximum occupancy of 1–{self.max_users_per_room}.",
                )
            if attr in ("name", "description", "secret") and len(value) > MAX_CONFIG_TEXT:
                raise ChatError(
                    ErrorCode.NOT_ACCEPTABLE, f"{_LABELS[attr]} may hold at most {MAX_CONFIG_TEXT} characters."
                )
            setattr(config, attr, value)
        if config.password_protected and not config.secret:
            raise ChatError(
                ErrorCode.NOT_ACCEPTABLE,
                "A password-protected room needs a password: fill in muc#roomconfig_roomsecret.",
            )
        return config

    def new_room_config(
        self, name: str, persistent: bool, members_only: bool | None, max_occupants: int | None
    ) -> RoomConfig:
        """The configuration of a new room: the defaults, changed where owners may change them."""
        changes = {}
        if members_only is not None:
            changes["members_only"] = members_only
        if max_occupants is not None:
            changes["max_occupants"] = max_occupants
        return self.configure(self.default_config(name, persistent), changes)


# What each setting is called in messages (the owner form's labels).
_LABELS = {
    "name": "the room name",
    "description": "the room description",
    "persistent": "whether the room is persistent",
    "members_only": "whether the room is members-only",
    "max_occupants": "the maximum occupancy of a room",
    "change_subject": "whether participants may change the subject",
    "public": "whether the room is listed",
    "whois": "who may see real JIDs",
    "moderated": "whether the room is moderated",
    "password_protected": "whether the room needs a password",
    "secret": "the room's password",
    "allow_pm": "who may send private messages",
    "allow_invites": "whether members may invite others to a members-only room",
}


class RecentHistory:
    """The last messages of a room, kept by the node hosting it, so joins and history requests
    are answered without the database.

    Holds every stored message of the room whose msg_id is ``floor`` or more (floor 0: the
    whole room), and at least ``keep`` of them when the room has that many (``keep`` is the
    chat settings' "Maximum number of messages that can be retrieved from the archive").
    Stored stanzas are parsed on first use: loading a thousand rooms reads their recent rows
    but parses only what is asked for.
    """

    def __init__(self, room: str, keep: int, floor: int = 0) -> None:
        self.room = room
        self.keep = max(0, keep)
        self.floor = floor
        self._ids: list[int] = []
        self._items: dict[int, ChatMessage | tuple[datetime, str]] = {}

    @classmethod
    def from_rows(cls, room: str, keep: int, rows: list[tuple[int, datetime, str]], next_msg_id: int) -> RecentHistory:
        """From the room's last ``keep`` stored rows (msg_id, stamp, msg), newest first."""
        if keep <= 0:
            floor = next_msg_id
        elif len(rows) < keep:
            floor = 0  # the room has no more messages than these
        else:
            floor = rows[-1][0]
        history = cls(room, keep, floor)
        for msg_id, stamp, msg in reversed(rows):
            history._ids.append(msg_id)
            history._items[msg_id] = (stamp, msg)
        return history

    def __len__(self) -> int:
        return len(self._ids)

    def add(self, message: ChatMessage) -> None:
        """A message just committed to the room (ids only grow)."""
        if self._ids and message.msg_id <= self._ids[-1]:
            return
        self._ids.append(message.msg_id)
        self._items[message.msg_id] = message
        excess = len(self._ids) - self.keep
        if excess > max(16, self.keep // 4):  # trimmed in steps, not on every message
            dropped = self._ids[:excess]
            del self._ids[:excess]
            for msg_id in dropped:
                del self._items[msg_id]
            self.floor = dropped[-1] + 1

    def last(self, limit: int, before: int | None = None) -> list[ChatMessage] | None:
        """The last ``limit`` messages (older than ``before``), oldest first; None when the
        database may hold some of them and memory does not."""
        end = len(self._ids) if before is None else bisect_left(self._ids, before)
        if end < limit and self.floor > 0:
            return None
        return [self._message(msg_id) for msg_id in self._ids[max(0, end - limit) : end]]

    def after(self, after: int, limit: int) -> list[ChatMessage] | None:
        """Up to ``limit`` messages newer than ``after``, oldest first; None when not all held."""
        if after + 1 < self.floor:
            return None
        start = bisect_right(self._ids, after)
        return [self._message(msg_id) for msg_id in self._ids[start : start + limit]]

    def get(self, msg_id: int) -> ChatMessage | None:
        """The message with this id if memory holds it."""
        return self._message(msg_id) if msg_id in self._items else None

    def find(self, stanza_id: str) -> ChatMessage | None:
        """The held message with this XEP-0359 stanza-id (newest first), if memory holds it."""
        for msg_id in reversed(self._ids):
            message = self._message(msg_id)
            if message.stanza_id == stanza_id:
                return message
        return None

    def _message(self, msg_id: int) -> ChatMessage:
        item = self._items[msg_id]
        if isinstance(item, ChatMessage):
            return item
        message = ChatMessage.from_row(self.room, msg_id, *item)
        self._items[msg_id] = message
        return message


@dataclass
class Occupant:
    """A user in a room, and the node whose XCP Router holds the user's session. The role lasts
    for this visit only (XEP-0045 §5.1): it is never stored, and a user who enters again (after a
    failover too) gets the role their affiliation and the room's moderation give."""

    jid: str
    nick: str
    router: str
    role: Role = Role.PARTICIPANT


def reaches(role: Role, level: str) -> bool:
    """Whether an occupant with ``role`` has the chat settings' participation ``level``."""
    return ROLE_RANK[role] >= ROLE_RANK[Role(level)]


@dataclass
class Room:
    """A room loaded by the Text Conference Manager hosting it."""

    jid: str
    room_type: RoomType
    creator: str
    config: RoomConfig
    members: dict[str, Affiliation] = field(default_factory=dict)
    # Member JID → the nickname ``tc_users.nick_jid`` keeps for them, where it is not their JID's
    # localpart (what a new row gets): registered with the room (XEP-0045 §7.10), or taken when
    # they added themselves as members.
    nicks: dict[str, str] = field(default_factory=dict)
    subject: str = ""  # tc_rooms.subject
    subject_nick: str = ""  # who set it (from tc_rooms.spacket)
    occupants: dict[str, Occupant] = field(default_factory=dict)
    # Next tc_messages.msg_id as of our last read or commit; a different value in the
    # database means another node wrote to the room (during a hand-over).
    known_next_msg_id: int = 1
    history: RecentHistory | None = None
    # (sender, client id) → msg_id of every stored post whose msg_id is dedup_from or more.
    recent_posts: OrderedDict[tuple[str, str], int] = field(default_factory=OrderedDict)
    dedup_from: int = 0

    def __post_init__(self) -> None:
        if self.history is None:
            self.history = RecentHistory(self.jid, DEFAULT_HISTORY_KEPT)

    @property
    def persistent(self) -> bool:
        return self.room_type == RoomType.PERSISTENT

    def nick_jid(self, nick: str) -> str:
        return f"{self.jid}/{nick}"

    def is_member(self, jid: str) -> bool:
        return self.members.get(jid) in MEMBER_AFFILIATIONS

    def affiliation(self, jid: str) -> Affiliation:
        return self.members.get(jid, Affiliation.NONE)

    def reserved_nick(self, jid: str) -> str:
        """The user's reserved nickname in the room (XEP-0045 §7.12): every owner, admin and
        member has the one ``tc_users.nick_jid`` keeps (their JID's localpart unless they
        registered another, §7.10); outcasts and users with no affiliation have none."""
        if not self.is_member(jid):
            return ""
        return self.nicks.get(jid) or nick_for(jid)

    def check_nick(self, jid: str, nick: str) -> None:
        """Refuse ``jid`` a nickname another occupant has, or another member reserved (XEP-0045
        §7.2.9, §7.6); two members who reserved the same one may both use it."""
        if any(o.nick == nick and o.jid != jid for o in self.occupants.values()):
            raise ChatError(ErrorCode.NICK_IN_USE, f"Someone else in {self.jid} has the nickname {nick}.")
        if self.reserved_nick(jid) == nick:
            return
        if any(member != jid and self.reserved_nick(member) == nick for member in self.members):
            raise ChatError(
                ErrorCode.NICK_IN_USE, f"{nick} is the registered nickname of another member of {self.jid}."
            )

    def default_role(self, jid: str) -> Role:
        """The role a user enters with (XEP-0045 §5.1.2): owners and admins moderate; in a
        moderated room users with no affiliation are visitors; everyone else participates."""
        affiliation = self.affiliation(jid)
        if affiliation in MODERATOR_AFFILIATIONS:
            return Role.MODERATOR
        if self.config.moderated and affiliation == Affiliation.NONE:
            return Role.VISITOR
        return Role.PARTICIPANT

    def role(self, jid: str) -> Role:
        """The user's role in the room now (``none``: not in it)."""
        occupant = self.occupants.get(jid)
        return occupant.role if occupant is not None else Role.NONE

    def add_occupant(self, jid: str, nick: str, router: str) -> Occupant:
        """A user enters (or is restated after the room moved): with the default role."""
        occupant = self.occupants[jid] = Occupant(jid, nick, router, self.default_role(jid))
        return occupant

    def is_moderator(self, jid: str) -> bool:
        """Whether the user moderates the room: an occupant by role (owners and admins enter
        as moderators, and may make others moderators, XEP-0045 §9.6), anyone else by
        affiliation."""
        if jid in self.occupants:
            return self.occupants[jid].role == Role.MODERATOR
        return self.affiliation(jid) in MODERATOR_AFFILIATIONS

    def presence_event(self, user: str, nick: str, status: str, kicked: str = "") -> dict:
        """What the room broadcasts when an occupant enters (``joined``), leaves (``left``) or is
        put out (``kicked``: 301 banned, 307 kicked, 321 no longer a member, 322 the room became
        members-only, or ``destroyed``), with the occupant's affiliation and role."""
        event = {"event": "presence", "room": self.jid, "user": user, "nick": nick, "status": status}
        event["affiliation"] = str(self.affiliation(user))
        event["role"] = str(self.role(user))
        if kicked:
            event["kicked"] = kicked
        return event

    def owners(self) -> list[str]:
        return sorted(jid for jid, affiliation in self.members.items() if affiliation == Affiliation.OWNER)

    def check_password(self, password: str) -> None:
        """XEP-0045 §7.2.6: a password-protected room lets in only whoever gives its password."""
        if not self.config.password_protected:
            return
        if not password:
            raise ChatError(ErrorCode.NOT_AUTHORIZED, f"{self.jid} is password-protected; join with its password.")
        if not room_secret_matches(password, self.config.secret):
            raise ChatError(ErrorCode.NOT_AUTHORIZED, f"That is not the password of {self.jid}.")

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

    def record(self, message: ChatMessage) -> None:
        """A message just committed to the room."""
        self.history.add(message)
        self.remember_post(message.sender, message.cid, message.msg_id)

    def remember_post(self, sender: str, cid: str, msg_id: int) -> None:
        self.recent_posts[(sender, cid)] = msg_id
        self._forget_oldest_posts()

    def remember_older_posts(self, posts: list[tuple[str, str, int]], since: int) -> None:
        """(sender, cid, msg_id) of every stored post from msg_id ``since`` up to the oldest
        one remembered, oldest first (read when a loaded room gets its first post)."""
        merged = OrderedDict(((sender, cid), msg_id) for sender, cid, msg_id in posts)
        merged.update(self.recent_posts)
        self.recent_posts = merged
        self.dedup_from = min(self.dedup_from, since)
        self._forget_oldest_posts()

    def _forget_oldest_posts(self) -> None:
        while len(self.recent_posts) > RECENT_POSTS_KEPT:
            _, msg_id = self.recent_posts.popitem(last=False)
            self.dedup_from = max(self.dedup_from, msg_id + 1)

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
