"""The JSON chat protocol: decode client frames into commands, encode server events.

This module knows the wire format and nothing else: the router core (``messaging.router``)
and the Text Conference service (``messaging.tc``) work on plain values, and the XMPP front end
sits beside this one. Every message type and error code is listed in ``docs/chat-protocol.md``;
the error codes themselves are ``messaging.chat.errors``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from messaging.chat.errors import RETRYABLE, ChatError, ErrorCode

__all__ = ["RETRYABLE", "ChatError", "ErrorCode", "ProtocolError", "decode", "encode"]

MAX_FRAME_BYTES = 256 * 1024
MAX_BODY_CHARS = 64000
MAX_ROOM_NAME = 255
MAX_SUBJECT = 255
MAX_CID = 128
MAX_INTEGER = 2**63 - 1  # message ids and counts are PostgreSQL bigints


class ProtocolError(ChatError):
    """A frame that is not a valid request (bad JSON, unknown type, a wrong field)."""

    def __init__(self, message: str, request_id: str | None = None) -> None:
        super().__init__(ErrorCode.BAD_REQUEST, message)
        self.request_id = request_id


# --- Commands (client → server) --------------------------------------------------------------


@dataclass(frozen=True)
class Command:
    """Base of every request; ``id`` is the client's request id, echoed in the reply."""

    id: str | None


@dataclass(frozen=True)
class SignIn(Command):
    user: str
    password: str = field(repr=False)  # never in a log line


@dataclass(frozen=True)
class CreateRoom(Command):
    room: str
    persistent: bool = True
    subject: str = ""
    members_only: bool | None = None
    max_occupants: int | None = None
    members: tuple[str, ...] = ()


@dataclass(frozen=True)
class Join(Command):
    room: str
    since: int | None = None
    history: int | None = None
    password: str = ""  # a password-protected room's


@dataclass(frozen=True)
class Leave(Command):
    room: str


@dataclass(frozen=True)
class Post(Command):
    room: str
    body: str
    cid: str


@dataclass(frozen=True)
class History(Command):
    room: str
    before: int | None = None
    after: int | None = None
    limit: int | None = None


@dataclass(frozen=True)
class Presence(Command):
    room: str


@dataclass(frozen=True)
class ListRooms(Command):
    pass


@dataclass(frozen=True)
class Ping(Command):
    pass


@dataclass(frozen=True)
class _Spec:
    cls: type
    required: dict[str, type] = field(default_factory=dict)
    optional: dict[str, type] = field(default_factory=dict)


SPECS: dict[str, _Spec] = {
    "sign_in": _Spec(SignIn, {"user": str, "password": str}),
    "create": _Spec(
        CreateRoom,
        {"room": str},
        {"persistent": bool, "subject": str, "members_only": bool, "max_occupants": int, "members": list},
    ),
    "join": _Spec(Join, {"room": str}, {"since": int, "history": int, "password": str}),
    "leave": _Spec(Leave, {"room": str}),
    "post": _Spec(Post, {"room": str, "body": str, "cid": str}),
    "history": _Spec(History, {"room": str}, {"before": int, "after": int, "limit": int}),
    "presence": _Spec(Presence, {"room": str}),
    "rooms": _Spec(ListRooms),
    "ping": _Spec(Ping),
}


def _type_name(kind: type) -> str:
    return {str: "a string", bool: "true or false", int: "an integer", list: "a list"}[kind]


def decode(frame: str | bytes) -> Command:
    """Turn one client frame into a Command; raise ProtocolError saying what is wrong."""
    if isinstance(frame, bytes):
        if len(frame) > MAX_FRAME_BYTES:
            raise ProtocolError(f"A frame may hold at most {MAX_FRAME_BYTES} bytes.")
        try:
            frame = frame.decode()
        except UnicodeDecodeError:
            raise ProtocolError("A frame must be UTF-8 JSON text.") from None
    if len(frame) > MAX_FRAME_BYTES:
        raise ProtocolError(f"A frame may hold at most {MAX_FRAME_BYTES} bytes.")
    try:
        data = json.loads(frame)
    except RecursionError:
        raise ProtocolError("A frame may not nest lists or objects that deeply.") from None
    except ValueError:
        raise ProtocolError('A frame must be one JSON object, such as {"type": "ping"}.') from None
    if not isinstance(data, dict):
        raise ProtocolError('A frame must be a JSON object with a "type" field.')
    request_id = data.get("id")
    if request_id is not None and not isinstance(request_id, str | int):
        raise ProtocolError('The field "id" must be a string or an integer.')
    request_id = None if request_id is None else str(request_id)
    kind = data.get("type")
    spec = SPECS.get(kind) if isinstance(kind, str) else None
    if spec is None:
        raise ProtocolError(f"Unknown message type {kind!r}; expected one of: {', '.join(SPECS)}.", request_id)
    values: dict[str, Any] = {}
    for name, expected in (*spec.required.items(), *spec.optional.items()):
        if name not in data or (data[name] is None and name in spec.optional):
            if name in spec.required:
                raise ProtocolError(f'A {kind} message needs the field "{name}".', request_id)
            continue
        value = data[name]
        # bool is an int in Python; keep true/false out of integer fields.
        if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
            raise ProtocolError(f'The field "{name}" of a {kind} message must be {_type_name(expected)}.', request_id)
        values[name] = value
    unknown = set(data) - set(spec.required) - set(spec.optional) - {"type", "id"}
    if unknown:
        raise ProtocolError(f"A {kind} message has no field {', '.join(sorted(unknown))}.", request_id)
    _check_values(kind, values, request_id)
    if "members" in values:
        values["members"] = tuple(values["members"])
    return spec.cls(id=request_id, **values)


def _check_values(kind: str, values: dict[str, Any], request_id: str | None) -> None:
    def fail(message: str):
        raise ProtocolError(message, request_id)

    for name in ("user", "room"):
        if name in values and not values[name].strip():
            fail(f'The field "{name}" cannot be empty.')
    if "room" in values and len(values["room"]) > MAX_ROOM_NAME + 254:
        fail("A room name may hold at most 255 characters before its @alias.")
    if "subject" in values and len(values["subject"]) > MAX_SUBJECT:
        fail(f"A subject may hold at most {MAX_SUBJECT} characters.")
    if kind == "post":
        if not values["body"].strip():
            fail("A post needs a body that is not blank.")
        if len(values["body"]) > MAX_BODY_CHARS:
            fail(f"A message body may hold at most {MAX_BODY_CHARS} characters.")
        if not values["cid"] or len(values["cid"]) > MAX_CID:
            fail(f'The field "cid" must be 1–{MAX_CID} characters, unique per message of the sender.')
    for name, value in values.items():
        if isinstance(value, int) and not isinstance(value, bool) and value > MAX_INTEGER:
            fail(f'The field "{name}" must be at most {MAX_INTEGER}.')
    for name in ("since", "before", "after"):
        if name in values and values[name] < 0:
            fail(f'The field "{name}" must be a message id, 0 or more.')
    for name in ("history", "limit", "max_occupants"):
        if name in values and values[name] < (1 if name == "max_occupants" else 0):
            fail(f'The field "{name}" must be {"1" if name == "max_occupants" else "0"} or more.')
    if "members" in values and not all(isinstance(member, str) and member for member in values["members"]):
        fail('The field "members" must be a list of user IDs or JIDs.')


# --- Events (server → client) ----------------------------------------------------------------


def encode(event: dict[str, Any]) -> str:
    """One server frame."""
    return json.dumps(event, separators=(",", ":"), ensure_ascii=False)


def reply(request_id: str | None, kind: str, **fields: Any) -> dict[str, Any]:
    """A reply to a request: ``re`` carries the request's id."""
    return {"type": kind, "re": request_id, **fields}


def error(request_id: str | None, exc: ChatError) -> dict[str, Any]:
    return {"type": "error", "re": request_id, "code": str(exc.code), "message": exc.message, "retry": exc.retry}


def reconnect(node: str, host: str, port: int, reason: str, delay_min: int = 0, delay_max: int = 0) -> dict:
    """Server notice: sign in again on ``node`` at ``host:port`` after a delay in the range."""
    return {
        "type": "reconnect",
        "node": node,
        "host": host,
        "port": port,
        "reason": reason,
        "delay_min": delay_min,
        "delay_max": delay_max,
    }
