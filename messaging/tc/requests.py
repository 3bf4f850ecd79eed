"""What a Text Conference Manager is asked, and what it answers: one dataclass per request and
one per answer, so the router core, both front ends and the service name the same fields.

A request reaches the TC of its own node as the object itself (``TextConferenceManager.handle``)
and another node's over the bus as a JSON object (``to_wire``/``request_from_wire``, with its
``op``); the answer travels back the same way, ``{"ok": true, …}``, or ``{"ok": false, "code",
"message"}`` for a refusal (``answer_from_wire`` raises it as the ChatError it was). Room
messages inside answers are the wire-neutral dicts of ``ChatMessage.as_event``, the form every
front end renders.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar

from messaging.chat.errors import ChatError, ErrorCode

# --- answers -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    """Base of every answer."""

    def to_wire(self) -> dict[str, Any]:
        return {"ok": True, **_plain(self)}

    def fields(self) -> dict[str, Any]:
        """The answer's fields as plain values (what the JSON front end replies)."""
        return _plain(self)


@dataclass(frozen=True)
class Created(Answer):
    room: str
    persistent: bool
    members_only: bool


@dataclass(frozen=True)
class Joined(Answer):
    room: str
    subject: str
    persistent: bool
    members_only: bool
    occupants: tuple[str, ...]
    last_msg_id: int
    history: tuple[dict, ...]
    # Who set the subject (their nickname), the joiner's affiliation, and every occupant's
    # {user, nick, affiliation}: what XEP-0045 occupant presence says.
    subject_nick: str = ""
    affiliation: str = "none"
    roster: tuple[dict, ...] = ()  # {user, nick, affiliation, role}
    role: str = "participant"


@dataclass(frozen=True)
class Left(Answer):
    room: str


@dataclass(frozen=True)
class Resynced(Answer):
    room: str


@dataclass(frozen=True)
class Posted(Answer):
    room: str
    msg_id: int
    cid: str
    message: dict
    new: bool  # False: a repeat of a stored post (same sender and cid), not broadcast again


@dataclass(frozen=True)
class HistoryPage(Answer):
    room: str
    messages: tuple[dict, ...]


@dataclass(frozen=True)
class ArchivePage(Answer):
    room: str
    messages: tuple[dict, ...]
    complete: bool  # the page reaches the end of the query


@dataclass(frozen=True)
class RoomInfo(Answer):
    """What XEP-0030 disco#info says of a room."""

    room: str
    name: str
    description: str
    subject: str
    persistent: bool
    members_only: bool
    public: bool
    max_occupants: int
    occupants: int
    affiliation: str
    moderated: bool = False
    password_protected: bool = False
    reserved_nick: str = ""  # the asking user's (XEP-0045 §7.12), if any


@dataclass(frozen=True)
class Occupants(Answer):
    room: str
    occupants: tuple[dict, ...]  # {user, nick}


@dataclass(frozen=True)
class RoomList(Answer):
    rooms: tuple[dict, ...]  # {room, type, subject, public}


@dataclass(frozen=True)
class Configuration(Answer):
    """A room's configuration (the XEP-0045 owner form's values) and the limits the chat
    settings put on it: which fields an owner may change, and the largest maximum occupancy."""

    room: str
    name: str
    description: str
    persistent: bool
    members_only: bool
    max_occupants: int
    change_subject: bool
    public: bool
    whois: str
    occupancy_limit: int
    locked: tuple[str, ...] = ()  # fields the chat settings let no owner change
    moderated: bool = False
    password_protected: bool = False
    secret: str = ""  # for the room's owners only (the owner form)
    allow_pm: str = "anyone"
    allow_invites: bool = False


@dataclass(frozen=True)
class Affiliations(Answer):
    """The room's users with one affiliation: {user, affiliation, nick, reason}."""

    room: str
    items: tuple[dict, ...]


@dataclass(frozen=True)
class Roles(Answer):
    """The room's occupants with one role (XEP-0045 §8.5 voice list, §9.8 moderator list):
    {user, nick, role, affiliation}."""

    room: str
    items: tuple[dict, ...]


@dataclass(frozen=True)
class Moderators(Answer):
    """Where a visitor's voice request goes (XEP-0045 §8.6): the room's moderators, each with the
    node whose router holds their session ({user, router}); ``nick``: the visitor's nickname."""

    room: str
    nick: str
    moderators: tuple[dict, ...]


@dataclass(frozen=True)
class NickChanged(Answer):
    """An occupant's nickname in the room, before and after (XEP-0045 §7.6)."""

    room: str
    old_nick: str
    nick: str
    affiliation: str
    role: str = "participant"


@dataclass(frozen=True)
class Recipient(Answer):
    """Where a private message goes (XEP-0045 §7.5): the occupant's JID and the node whose router
    holds the occupant's session; ``nick`` is the sender's nickname in the room."""

    room: str
    user: str
    router: str
    nick: str


@dataclass(frozen=True)
class Invited(Answer):
    """An invitation the room lets go out (XEP-0045 §7.8.2): ``nick`` is the inviter's nickname;
    ``member_added``: the invitee became a member of the members-only room."""

    room: str
    invitee: str
    nick: str
    member_added: bool


@dataclass(frozen=True)
class Registration(Answer):
    """A user's registration with a room (XEP-0045 §7.10): the nickname reserved for them, if
    they are registered (every owner, admin and member is)."""

    room: str
    nick: str
    registered: bool


@dataclass(frozen=True)
class Done(Answer):
    """A change was stored (subject, affiliations, destruction)."""

    room: str


# --- requests ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    """Base of every request: ``op`` names it on the bus, ``answer`` is its answer's class."""

    op: ClassVar[str]
    answer: ClassVar[type[Answer]]

    def to_wire(self) -> dict[str, Any]:
        return {"op": self.op, **_plain(self)}


@dataclass(frozen=True)
class RoomRequest(Request):
    """A request about one room, by one user (the user's bare JID)."""

    room: str
    user: str


@dataclass(frozen=True)
class CreateRoom(RoomRequest):
    op: ClassVar[str] = "create"
    answer: ClassVar[type[Answer]] = Created
    persistent: bool = True
    subject: str = ""
    members_only: bool | None = None
    max_occupants: int | None = None
    members: tuple[str, ...] = ()


@dataclass(frozen=True)
class Join(RoomRequest):
    op: ClassVar[str] = "join"
    answer: ClassVar[type[Answer]] = Joined
    nick: str = ""
    router: str = ""  # the node whose XCP Router holds the user's session
    since: int | None = None  # everything after this msg_id …
    history: int | None = None  # … or this many of the last messages
    password: str = ""  # a password-protected room's (XEP-0045 §7.2.6)


@dataclass(frozen=True)
class Leave(RoomRequest):
    op: ClassVar[str] = "leave"
    answer: ClassVar[type[Answer]] = Left


@dataclass(frozen=True)
class Resync(Request):
    """A router restates which of its users are in a room (after the room moved)."""

    op: ClassVar[str] = "resync"
    answer: ClassVar[type[Answer]] = Resynced
    room: str
    occupants: tuple[tuple[str, ...], ...]  # (user, nick, role); the role may be missing or ""
    router: str


@dataclass(frozen=True)
class Post(RoomRequest):
    op: ClassVar[str] = "post"
    answer: ClassVar[type[Answer]] = Posted
    body: str
    cid: str
    nick: str = ""
    joined: bool = False  # the user's router vouches the user is in the room
    router: str = ""
    role: str = ""  # the role the room last gave the occupant, as their router heard it (it vouches)


@dataclass(frozen=True)
class History(RoomRequest):
    op: ClassVar[str] = "history"
    answer: ClassVar[type[Answer]] = HistoryPage
    before: int | None = None
    after: int | None = None
    limit: int | None = None


@dataclass(frozen=True)
class Archive(RoomRequest):
    """An archive query (XEP-0313): by stanza-id (after_id/before_id), by time (start/end, ISO
    8601), paged (limit; ``last``: the page before ``before_id``, or the last page)."""

    op: ClassVar[str] = "archive"
    answer: ClassVar[type[Answer]] = ArchivePage
    after_id: str | None = None
    before_id: str | None = None
    start: str | None = None
    end: str | None = None
    limit: int | None = None
    last: bool = False


@dataclass(frozen=True)
class Info(RoomRequest):
    op: ClassVar[str] = "info"
    answer: ClassVar[type[Answer]] = RoomInfo


@dataclass(frozen=True)
class Presence(RoomRequest):
    op: ClassVar[str] = "presence"
    answer: ClassVar[type[Answer]] = Occupants


@dataclass(frozen=True)
class ListRooms(Request):
    """The rooms of a home node (its aliases)."""

    op: ClassVar[str] = "rooms"
    answer: ClassVar[type[Answer]] = RoomList
    home: str
    user: str


@dataclass(frozen=True)
class GetConfiguration(RoomRequest):
    """The owner configuration form's values (XEP-0045 §10.2); owners only."""

    op: ClassVar[str] = "get_config"
    answer: ClassVar[type[Answer]] = Configuration


@dataclass(frozen=True)
class Configure(RoomRequest):
    """A submitted owner form (XEP-0045 §10.1.2, §10.2): the fields given, by ``RoomConfig``
    attribute; none given accepts the room as it is (an instant room)."""

    op: ClassVar[str] = "configure"
    answer: ClassVar[type[Answer]] = Configuration
    changes: dict = field(default_factory=dict)


@dataclass(frozen=True)
class GetAffiliations(RoomRequest):
    """A member, outcast, admin or owner list (XEP-0045 §9.5, §9.8, §10.5, §10.8)."""

    op: ClassVar[str] = "get_affiliations"
    answer: ClassVar[type[Answer]] = Affiliations
    affiliation: str = "member"


@dataclass(frozen=True)
class SetAffiliations(RoomRequest):
    """Changes to the member lists: {user or nick, affiliation, reason} each, applied together."""

    op: ClassVar[str] = "set_affiliations"
    answer: ClassVar[type[Answer]] = Done
    items: tuple[dict, ...] = ()


@dataclass(frozen=True)
class GetRoles(RoomRequest):
    """The occupants with one role: the voice list (participant, XEP-0045 §8.5) or the moderator
    list (§9.8); moderators only."""

    op: ClassVar[str] = "get_roles"
    answer: ClassVar[type[Answer]] = Roles
    role: str = "participant"


@dataclass(frozen=True)
class SetRoles(RoomRequest):
    """A moderator changes occupants' roles, each named by nickname: {nick, role, reason}; role
    ``none`` kicks (XEP-0045 §8.2), ``participant``/``visitor`` grant or revoke voice (§8.3–§8.4),
    ``moderator`` grants moderator status (§9.6–§9.7). Roles last for the occupant's visit."""

    op: ClassVar[str] = "set_roles"
    answer: ClassVar[type[Answer]] = Done
    items: tuple[dict, ...] = ()


@dataclass(frozen=True)
class RequestVoice(RoomRequest):
    """A visitor asks for voice (XEP-0045 §8.6); the visitor's router passes the request on to
    the moderators the answer names."""

    op: ClassVar[str] = "request_voice"
    answer: ClassVar[type[Answer]] = Moderators


@dataclass(frozen=True)
class SetSubject(RoomRequest):
    """An occupant changes the room's subject (XEP-0045 §8.1)."""

    op: ClassVar[str] = "set_subject"
    answer: ClassVar[type[Answer]] = Done
    subject: str = ""


@dataclass(frozen=True)
class Destroy(RoomRequest):
    """An owner destroys the room (XEP-0045 §10.9)."""

    op: ClassVar[str] = "destroy"
    answer: ClassVar[type[Answer]] = Done
    reason: str = ""


@dataclass(frozen=True)
class ChangeNick(RoomRequest):
    """An occupant takes another nickname in the room (XEP-0045 §7.6). The user's router vouches
    that the user is in the room as ``old_nick`` (the occupant list may be being rebuilt after
    the room moved)."""

    op: ClassVar[str] = "change_nick"
    answer: ClassVar[type[Answer]] = NickChanged
    nick: str = ""
    old_nick: str = ""
    router: str = ""
    role: str = ""  # the role the room last gave the occupant, as their router heard it (it vouches)


@dataclass(frozen=True)
class PrivateMessage(RoomRequest):
    """Whom an occupant's private message to ``room/to_nick`` goes to (XEP-0045 §7.5). The body
    does not travel here: the room stores nothing of it; the sender's router delivers it."""

    op: ClassVar[str] = "private_message"
    answer: ClassVar[type[Answer]] = Recipient
    to_nick: str = ""
    nick: str = ""  # the sender's nickname as the sender's router knows it (it vouches)
    router: str = ""
    role: str = ""  # the role the room last gave the occupant, as their router heard it (it vouches)


@dataclass(frozen=True)
class Invite(RoomRequest):
    """An occupant invites ``invitee`` (a bare JID) to the room (XEP-0045 §7.8.2); the inviter's
    router delivers the invitation."""

    op: ClassVar[str] = "invite"
    answer: ClassVar[type[Answer]] = Invited
    invitee: str = ""
    nick: str = ""  # the inviter's nickname as the inviter's router knows it (it vouches)
    router: str = ""
    role: str = ""  # the role the room last gave the occupant, as their router heard it (it vouches)
    known: bool = True  # whether the invitee is a user of IM and Presence (the router read it)


@dataclass(frozen=True)
class Register(RoomRequest):
    """A user registers ``nick`` with the room (XEP-0045 §7.10), or with no ``nick`` asks how
    they stand."""

    op: ClassVar[str] = "register"
    answer: ClassVar[type[Answer]] = Registration
    nick: str = ""


REQUESTS: dict[str, type[Request]] = {
    cls.op: cls
    for cls in (
        CreateRoom,
        Join,
        Leave,
        Resync,
        Post,
        History,
        Archive,
        Info,
        Presence,
        ListRooms,
        GetConfiguration,
        Configure,
        GetAffiliations,
        SetAffiliations,
        GetRoles,
        SetRoles,
        RequestVoice,
        SetSubject,
        Destroy,
        ChangeNick,
        PrivateMessage,
        Invite,
        Register,
    )
}


# --- the wire of the bus -----------------------------------------------------------------------

# What the wire adds to a request or an answer: its kind, and the bus's own addressing.
BUS_FIELDS = {"op", "ok", "rid", "reply_to"}


def request_from_wire(data: dict) -> Request:
    """A request as another node's router sent it; unknown ops and fields are refused."""
    op = data.get("op")
    cls = REQUESTS.get(op) if isinstance(op, str) else None
    if cls is None:
        raise ChatError(ErrorCode.BAD_REQUEST, f"Unknown request {op!r}.")
    return _build(cls, {key: value for key, value in data.items() if key not in BUS_FIELDS})


def answer_from_wire(request: Request, data: dict) -> Answer:
    """The answer to ``request`` as the TC sent it; a refusal is raised as its ChatError."""
    if not data.get("ok"):
        raise ChatError(ErrorCode(data.get("code", ErrorCode.INTERNAL)), data.get("message", "The request failed."))
    return _build(request.answer, {key: value for key, value in data.items() if key not in BUS_FIELDS})


def error_to_wire(exc: ChatError) -> dict[str, Any]:
    return {"ok": False, "code": str(exc.code), "message": exc.message}


def _build(cls: type, values: dict) -> Any:
    names = {item.name for item in dataclasses.fields(cls)}
    unknown = set(values) - names
    if unknown:
        raise ChatError(ErrorCode.BAD_REQUEST, f"{cls.__name__} has no field {', '.join(sorted(unknown))}.")
    try:
        return cls(**{key: _tuples(value) for key, value in values.items()})
    except TypeError as exc:
        raise ChatError(ErrorCode.BAD_REQUEST, f"{cls.__name__}: {exc}") from None


def _tuples(value: Any) -> Any:
    """JSON has lists only; the dataclasses hold tuples."""
    if isinstance(value, list):
        return tuple(_tuples(item) for item in value)
    return value


def _plain(item: Any) -> dict[str, Any]:
    return {f.name: getattr(item, f.name) for f in dataclasses.fields(item)}
