"""What the chat services refuse, and why: the error codes every front end maps to its wire
format (JSON ``error`` frames, XMPP stanza errors), raised by the router core and the Text
Conference service alike."""

from __future__ import annotations

from enum import StrEnum


class ErrorCode(StrEnum):
    """Error codes a server sends; ``RETRYABLE`` ones mean "try the same request again"."""

    BAD_REQUEST = "bad-request"
    NOT_SIGNED_IN = "not-signed-in"
    ALREADY_SIGNED_IN = "already-signed-in"
    UNKNOWN_USER = "unknown-user"
    NOT_AUTHORIZED = "not-authorized"
    THROTTLED = "throttled"
    ROOM_NOT_FOUND = "room-not-found"
    MESSAGE_NOT_FOUND = "message-not-found"
    OCCUPANT_NOT_FOUND = "occupant-not-found"
    ROOM_EXISTS = "room-exists"
    NOT_IN_ROOM = "not-in-room"
    NICK_IN_USE = "nick-in-use"
    MEMBERS_ONLY = "members-only"
    ROOM_FULL = "room-full"
    ROOM_LIMIT = "room-limit"
    FORBIDDEN = "forbidden"
    NOT_ALLOWED = "not-allowed"
    NOT_ACCEPTABLE = "not-acceptable"
    LAST_OWNER = "last-owner"
    PERSISTENT_CHAT_DISABLED = "persistent-chat-disabled"
    DATABASE_UNAVAILABLE = "database-unavailable"
    ROOM_UNAVAILABLE = "room-unavailable"
    INTERNAL = "internal-error"


RETRYABLE = {ErrorCode.DATABASE_UNAVAILABLE, ErrorCode.ROOM_UNAVAILABLE, ErrorCode.INTERNAL}


class ChatError(Exception):
    """A request the service refuses; ``code`` is an ErrorCode, ``message`` a sentence."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = ErrorCode(code)
        self.message = message

    @property
    def retry(self) -> bool:
        return self.code in RETRYABLE
