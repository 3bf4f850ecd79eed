"""XMPP front end of the XCP Router: RFC 6120/6121 client-to-server on the node's XMPP client
port (TCP, STARTTLS required before authentication), and RFC 7395 XMPP over WebSocket on the
router's WebSocket port (subprotocol ``xmpp``).

This module knows XMPP and nothing of rooms: it turns stanzas into requests to the router core
(``XcpRouter.join``/``post``/``leave``/``route``) and the core's events into stanzas. The
supported extensions and what each does here are listed in ``docs/chat-protocol.md``.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import functools
import logging
import secrets
import ssl
import uuid
import xml.etree.ElementTree as ET
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.conf import settings
from scramp import ScramException, ScramMechanism

from messaging.chat.directory import UserInfo, lookup_user
from messaging.chat.errors import ChatError, ErrorCode
from messaging.router import bookmarks, muc_admin, muc_user
from messaging.router.xmlstream import (
    CLIENT_NS,
    STREAM_NS,
    StreamError,
    StreamParser,
    child,
    element,
    find,
    q,
    stream_error,
    stream_header,
    tostring,
)
from messaging.tc import requests
from topology.agent.db import in_worker_thread

logger = logging.getLogger(__name__)

TLS_NS = "urn:ietf:params:xml:ns:xmpp-tls"
SASL_NS = "urn:ietf:params:xml:ns:xmpp-sasl"
BIND_NS = "urn:ietf:params:xml:ns:xmpp-bind"
SESSION_NS = "urn:ietf:params:xml:ns:xmpp-session"
STANZA_ERROR_NS = "urn:ietf:params:xml:ns:xmpp-stanzas"
FRAMING_NS = "urn:ietf:params:xml:ns:xmpp-framing"
SM_NS = "urn:xmpp:sm:3"
PING_NS = "urn:xmpp:ping"
ROSTER_NS = "jabber:iq:roster"
REGISTER_NS = "jabber:iq:register"
DISCO_INFO_NS = "http://jabber.org/protocol/disco#info"
DISCO_ITEMS_NS = "http://jabber.org/protocol/disco#items"
MUC_NS = "http://jabber.org/protocol/muc"
MUC_USER_NS = "http://jabber.org/protocol/muc#user"
MAM_NS = "urn:xmpp:mam:2"
RSM_NS = "http://jabber.org/protocol/rsm"
DATA_NS = "jabber:x:data"
FORWARD_NS = "urn:xmpp:forward:0"
DELAY_NS = "urn:xmpp:delay"
SID_NS = "urn:xmpp:sid:0"

SCRAM_MECHANISMS = ("SCRAM-SHA-256", "SCRAM-SHA-1")
RECIPIENT = "\ufdd0recipient\ufdd0"  # stands for the recipient's JID in a live message written once
RESERVED_NICK_NODE = "x-roomuser-item"  # XEP-0045 §7.12
MAX_RESOURCE = 1023
SM_MAX_UNACKED = 5000  # stanzas kept for XEP-0198 resumption; past it the session cannot be resumed
SM_MODULUS = 2**32  # XEP-0198 counters wrap at 2^32
SM_REQUEST_EVERY = 20  # stanzas sent between two requests for the client's acknowledgement (<r/>)
OUTBOX_LIMIT = 10000  # stanzas queued for a client before it counts as not reading

# Router error codes → (XMPP stanza error type, defined condition) (RFC 6120 §8.3, XEP-0045 §7–§10).
ERROR_CONDITIONS: dict[ErrorCode, tuple[str, str]] = {
    ErrorCode.BAD_REQUEST: ("modify", "bad-request"),
    ErrorCode.NOT_SIGNED_IN: ("auth", "not-authorized"),
    ErrorCode.NOT_AUTHORIZED: ("auth", "not-authorized"),
    ErrorCode.ALREADY_SIGNED_IN: ("cancel", "conflict"),
    ErrorCode.UNKNOWN_USER: ("cancel", "item-not-found"),
    ErrorCode.ROOM_NOT_FOUND: ("cancel", "item-not-found"),
    ErrorCode.MESSAGE_NOT_FOUND: ("cancel", "item-not-found"),
    ErrorCode.OCCUPANT_NOT_FOUND: ("cancel", "item-not-found"),
    ErrorCode.ROOM_EXISTS: ("cancel", "conflict"),
    ErrorCode.NOT_IN_ROOM: ("cancel", "not-acceptable"),
    ErrorCode.NICK_IN_USE: ("cancel", "conflict"),
    ErrorCode.MEMBERS_ONLY: ("auth", "registration-required"),
    ErrorCode.ROOM_FULL: ("wait", "service-unavailable"),
    ErrorCode.ROOM_LIMIT: ("cancel", "not-allowed"),
    ErrorCode.FORBIDDEN: ("auth", "forbidden"),
    ErrorCode.NOT_ALLOWED: ("cancel", "not-allowed"),
    ErrorCode.NOT_ACCEPTABLE: ("modify", "not-acceptable"),
    ErrorCode.LAST_OWNER: ("cancel", "conflict"),
    ErrorCode.PERSISTENT_CHAT_DISABLED: ("cancel", "not-allowed"),
    ErrorCode.DATABASE_UNAVAILABLE: ("wait", "resource-constraint"),
    ErrorCode.ROOM_UNAVAILABLE: ("wait", "recipient-unavailable"),
    ErrorCode.INTERNAL: ("wait", "internal-server-error"),
}


def bare(jid: str) -> str:
    return jid.split("/", 1)[0].lower()


def resource_of(jid: str) -> str:
    return jid.partition("/")[2]


def stanza_error(stanza: ET.Element, kind: str, condition: str, text: str = "") -> ET.Element:
    """The error reply to ``stanza`` (RFC 6120 §8.3): addresses swapped, the error appended."""
    reply = ET.Element(stanza.tag, {"type": "error"})
    for name, value in (("id", stanza.get("id")), ("to", stanza.get("from")), ("from", stanza.get("to"))):
        if value is not None:
            reply.set(name, value)
    error = child(reply, CLIENT_NS, "error", {"type": kind})
    child(error, STANZA_ERROR_NS, condition)
    if text:
        child(error, STANZA_ERROR_NS, "text", text=text)
    return reply


def chat_error(stanza: ET.Element, exc: ChatError) -> ET.Element:
    kind, condition = ERROR_CONDITIONS.get(exc.code, ("cancel", "undefined-condition"))
    return stanza_error(stanza, kind, condition, exc.message)


def _iso(stamp: str) -> str:
    """XEP-0082 date-time of a stored UTC stamp."""
    return datetime.fromisoformat(stamp).replace(tzinfo=UTC).isoformat().replace("+00:00", "Z")


def _parse_time(value: str) -> datetime:
    stamp = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)


@dataclass
class Transport:
    """How a stream's bytes travel: TCP (with STARTTLS) or WebSocket frames (RFC 7395)."""

    source: str
    websocket: bool = False

    async def read(self) -> bytes | None:
        raise NotImplementedError

    async def write(self, text: str) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError

    def open(self, stream_id: str, domain: str) -> str:
        if self.websocket:
            return f"<open xmlns='{FRAMING_NS}' id='{stream_id}' from='{domain}' version='1.0' xml:lang='en'/>"
        return stream_header(stream_id, domain)

    def end(self) -> str:
        return f"<close xmlns='{FRAMING_NS}'/>" if self.websocket else "</stream:stream>"

    @property
    def default_ns(self) -> str:
        """A WebSocket frame declares its namespace; a TCP stream's default is jabber:client."""
        return "" if self.websocket else CLIENT_NS

    def stream_element(self, name: str, inner: str) -> str:
        """``<stream:name>`` (features, error), self-contained in a WebSocket frame."""
        declared = f" xmlns:stream='{STREAM_NS}'" if self.websocket else ""
        return f"<stream:{name}{declared}>{inner}</stream:{name}>"

    def error(self, condition: str, text: str = "", extra: str = "") -> str:
        error = stream_error(condition, text, extra)
        if self.websocket:
            return error.replace("<stream:error>", f"<stream:error xmlns:stream='{STREAM_NS}'>", 1)
        return error


class TcpTransport(Transport):
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername") or ("", 0)
        super().__init__(source=str(peer[0]))
        self.reader = reader
        self.writer = writer
        self.secure = False

    async def read(self) -> bytes | None:
        data = await self.reader.read(16384)
        return data or None

    async def write(self, text: str) -> None:
        self.writer.write(text.encode())
        await self.writer.drain()

    async def starttls(self, context: ssl.SSLContext) -> None:
        await self.writer.start_tls(context)
        self.secure = True

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            self.writer.close()
            await asyncio.wait_for(self.writer.wait_closed(), 2)


class WebSocketTransport(Transport):
    """RFC 7395: each frame is one element; ``<open/>`` and ``<close/>`` frame the stream.

    The frames go through the same hardened parser as a TCP stream, inside a stream header of
    our own, so the same limits apply."""

    HEADER = f"<stream:stream xmlns='{CLIENT_NS}' xmlns:stream='{STREAM_NS}'>".encode()

    def __init__(self, ws) -> None:
        address = getattr(ws, "remote_address", None) or ("", 0)
        super().__init__(source=str(address[0]), websocket=True)
        self.ws = ws
        self.started = False

    async def read(self) -> bytes | None:
        from websockets.exceptions import ConnectionClosed

        try:
            frame = await self.ws.recv()
        except ConnectionClosed:
            return None
        data = frame.encode() if isinstance(frame, str) else frame
        if not self.started:
            self.started = True
            return self.HEADER + data
        return data

    async def write(self, text: str) -> None:
        await self.ws.send(text)

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.ws.close()


class StreamClosed(Exception):
    """The stream ended (by the client, by a stream error, or by the router)."""


class Written:
    """A stanza already written for streams whose default namespace is ``ns`` (a live room
    message: written once for every occupant, only the address differs); ``build`` makes its
    element again, for a resumption on the other kind of transport."""

    __slots__ = ("build", "ns", "text")

    def __init__(self, text: str, ns: str, build) -> None:
        self.text = text
        self.ns = ns
        self.build = build


def text_for(stanza: ET.Element | Written, ns: str) -> str:
    """The XML text of ``stanza`` in a stream whose default namespace is ``ns``."""
    if isinstance(stanza, Written):
        return stanza.text if stanza.ns == ns else tostring(stanza.build(), ns)
    return tostring(stanza, ns)


@dataclass(eq=False)
class XmppBinding:
    """The router core's way to an XMPP client (``messaging.router.core.Binding``): its events
    are rendered as stanzas; the stream ends itself after a stream error.

    With XEP-0198 resumption the binding outlives its connection: ``stream`` is the connection
    it writes to now; while ``detached`` (the connection dropped) stanzas are only kept in
    ``unacked``, the session stays in its rooms, and a client that resumes within
    ``resume_seconds`` gets them on its new connection."""

    stream: XmppStream
    full_jid: str = ""
    session: object = None  # the router core's Session
    # XEP-0198
    sm_enabled: bool = False
    sm_id: str = ""  # set when resumption was offered
    quoted_jid: str | None = None  # full_jid as an XML attribute value, written once
    resume_seconds: int = 0
    sent: int = 0  # stanzas sent (the client acknowledges these)
    handled: int = 0  # stanzas received and handled
    unacked: deque = field(default_factory=deque)  # (count, stanza) not acknowledged yet
    overflowed: bool = False  # more unacknowledged stanzas than kept: no resumption possible
    detached: bool = False
    expiry: asyncio.Task | None = None

    def deliver(self, event: dict) -> None:
        self.stream.front.render(self, event)

    def finish(self) -> None:
        pass

    def send(self, stanza: ET.Element | Written) -> None:
        """Send a stanza on the current connection, kept until acknowledged when XEP-0198 is on
        (also while detached, for the client to get it when it resumes)."""
        if self.sm_enabled and (isinstance(stanza, Written) or stanza.tag in STANZA_TAGS):
            self.sent += 1
            self.unacked.append((self.sent, stanza))
            if len(self.unacked) > SM_MAX_UNACKED:
                self.unacked.popleft()
                self.overflowed = True
                if self.detached:
                    self.stream.front.end_detached(self)
        stream = self.stream
        if not stream.closed:
            stream.send_raw(text_for(stanza, stream.transport.default_ns))
            if self.sm_enabled and self.sent % SM_REQUEST_EVERY == 0:
                # Clients acknowledge when asked; unasked, what is kept for resumption only grows.
                stream.send_raw(f"<r xmlns='{SM_NS}'/>")

    def acknowledged(self, h: int) -> None:
        """The client handled our stanzas up to ``h`` (mod 2^32): forget them."""
        while self.unacked and (h - self.unacked[0][0]) % SM_MODULUS < SM_MODULUS // 2:
            self.unacked.popleft()


class XmppStream:
    """One XMPP connection: stream negotiation, then stanzas for the router core."""

    def __init__(self, front: XmppFrontEnd, transport: Transport) -> None:
        self.front = front
        self.router = front.router
        self.transport = transport
        self.parser = StreamParser()
        self.stream_id = secrets.token_hex(8)
        self.domain = front.domain
        self.user = None  # UserInfo after SASL success
        self.session = None  # the router core's Session after resource binding
        self.scram = None
        self.scram_user = ""
        self.out: asyncio.Queue[str | None] = asyncio.Queue()
        self.closed = False
        self.clean_end = False  # ended by a close or a stream error: no XEP-0198 resumption
        self.replaced = False  # its session was resumed on another connection

    @property
    def secure(self) -> bool:
        return self.transport.websocket or getattr(self.transport, "secure", False)

    # --- the connection's life ------------------------------------------------------------------

    async def run(self) -> None:
        writer = asyncio.create_task(self._writer())
        try:
            while not self.closed:
                data = await self.transport.read()
                if data is None:
                    break
                try:
                    events = self.parser.feed(data)
                except StreamError as exc:
                    await self.fail(exc.condition, exc.text)
                    break
                for kind, item in events:
                    if kind == "open":
                        await self._stream_opened(item)
                    elif kind == "close":
                        self.send_raw(self.transport.end())
                        self.closed = self.clean_end = True
                        break
                    else:
                        await self._stanza(item)
                    if self.closed:
                        break
        except StreamClosed:
            pass
        except (ConnectionError, ssl.SSLError, asyncio.IncompleteReadError):
            pass
        except Exception:
            logger.exception("XMPP stream %s failed", self.stream_id)
            with contextlib.suppress(Exception):
                await self.fail("internal-server-error", "The server failed; connect again.")
        finally:
            self.closed = True
            self.out.put_nowait(None)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer, 2)
            writer.cancel()
            await self.transport.close()
            await self._ended()

    async def _ended(self) -> None:
        """The connection is gone: sign the session out, or keep it for the client to resume
        (XEP-0198) when resumption was enabled and the connection dropped rather than closed."""
        session = self.session
        if session is None or self.replaced:
            return
        binding = session.binding
        if binding.sm_id and not self.clean_end and not session.closing and not binding.overflowed:
            self.front.detach(binding)
            return
        self.front.resumable.pop(binding.sm_id, None)
        await self.router.signed_out(session)

    async def _writer(self) -> None:
        while True:
            parts = [await self.out.get()]
            while parts[-1] is not None and not self.out.empty():
                parts.append(self.out.get_nowait())
            ended = parts[-1] is None
            if ended:
                parts.pop()
            try:
                if self.transport.websocket:  # RFC 7395: one stanza a frame
                    for text in parts:
                        await self.transport.write(text)
                elif parts:  # a room's burst of messages leaves in one write (one TLS record or few)
                    await self.transport.write("".join(parts))
            except Exception:
                self.closed = True
                await self.transport.close()
                return
            if ended:
                if self.closed:  # the stream ended here: close, so the reader sees the end too
                    await self.transport.close()
                return

    def send_raw(self, text: str) -> None:
        if self.out.qsize() > OUTBOX_LIMIT:  # a client that does not read: end its stream
            self.closed = self.clean_end = True
            self.out = asyncio.Queue()
            self.out.put_nowait(self.transport.error("policy-violation", "You are not reading your stream."))
            self.out.put_nowait(None)
            return
        self.out.put_nowait(text)

    def send(self, stanza: ET.Element) -> None:
        """Send a stanza to the session's client, on whichever connection it has now (counted
        for XEP-0198 when enabled)."""
        if self.session is not None:
            self.session.binding.send(stanza)
        elif not self.closed:
            self.send_raw(tostring(stanza, self.transport.default_ns))

    async def fail(self, condition: str, text: str = "", extra: str = "") -> None:
        """Send a stream error and end the stream (RFC 6120 §4.9)."""
        if not self.header_sent:
            self.send_raw(self.transport.open(self.stream_id, self.domain))
            self.header_sent = True
        self.send_raw(self.transport.error(condition, text, extra))
        self.send_raw(self.transport.end())
        self.closed = self.clean_end = True
        self.out.put_nowait(None)

    header_sent = False

    async def _stream_opened(self, header: ET.Element) -> None:
        wanted = (header.get("to") or self.domain).lower()
        if wanted not in self.front.domains():
            self.domain = wanted
            await self.fail("host-unknown", f"This node serves {', '.join(sorted(self.front.domains()))}.")
            return
        self.domain = wanted
        self.send_raw(self.transport.open(self.stream_id, self.domain))
        self.header_sent = True
        if await self._turned_away():
            return
        if self.user is not None and self.user.serving != self.router.node.name:
            await self._see_other_host(self.user.serving, f"{self.user.user_id} is served by {self.user.serving}.")
            return
        features = element(STREAM_NS, "features")
        if not self.secure:
            child(child(features, TLS_NS, "starttls"), TLS_NS, "required")
        elif self.user is None:
            mechanisms = child(features, SASL_NS, "mechanisms")
            for name in (*SCRAM_MECHANISMS, "PLAIN"):
                child(mechanisms, SASL_NS, "mechanism", text=name)
        else:
            child(features, BIND_NS, "bind")
            child(child(features, SESSION_NS, "session"), SESSION_NS, "optional")
            child(features, SM_NS, "sm")
            child(features, "http://jabber.org/features/iq-register", "register")
        self.send_raw(self.transport.stream_element("features", "".join(tostring(item, "") for item in features)))

    def restart(self) -> None:
        """After STARTTLS and SASL success the client opens a new stream (RFC 6120 §4.3.3)."""
        self.parser = StreamParser()
        self.header_sent = False
        if self.transport.websocket:
            self.parser.feed(WebSocketTransport.HEADER)

    # --- stanzas ---------------------------------------------------------------------------------

    async def _stanza(self, stanza: ET.Element) -> None:
        if stanza.tag == q(FRAMING_NS, "open"):
            await self._stream_opened(stanza)
            return
        if stanza.tag == q(FRAMING_NS, "close"):
            self.send_raw(self.transport.end())
            self.closed = self.clean_end = True
            return
        if stanza.tag == q(TLS_NS, "starttls"):
            await self._starttls()
            return
        if stanza.tag.startswith(f"{{{SASL_NS}}}"):
            await self._sasl(stanza)
            return
        if self.user is None:
            await self.fail("not-authorized", "Authenticate first (SASL).")
            return
        if stanza.tag.startswith(f"{{{SM_NS}}}"):
            await self._stream_management(stanza)
            return
        if stanza.tag not in STANZA_TAGS:
            await self.fail("unsupported-stanza-type", f"{stanza.tag} is not a stanza.")
            return
        if self.session is None:
            if stanza.tag == q(CLIENT_NS, "iq") and find(stanza, BIND_NS, "bind") is not None:
                await self._bind(stanza)
            else:
                await self.fail("not-authorized", "Bind a resource first.")
            return
        binding = self.session.binding
        if binding.sm_enabled:
            binding.handled += 1
        await self.front.handle(self, stanza)

    async def _starttls(self) -> None:
        if self.transport.websocket or self.secure:
            await self.fail("policy-violation", "TLS is already in place.")
            return
        context = await self.front.tls_context()
        if context is None:
            self.send_raw(f"<failure xmlns='{TLS_NS}'/>")
            self.send_raw(self.transport.end())
            self.closed = True
            return
        await self.transport.write(f"<proceed xmlns='{TLS_NS}'/>")
        await self.transport.starttls(context)
        self.restart()

    # --- SASL (RFC 6120 §6) --------------------------------------------------------------------

    def _sasl_failure(self, condition: str, text: str = "") -> None:
        described = f"<text xml:lang='en'>{_escape(text)}</text>" if text else ""
        self.send_raw(f"<failure xmlns='{SASL_NS}'><{condition}/>{described}</failure>")

    async def _sasl(self, stanza: ET.Element) -> None:
        name = stanza.tag.rpartition("}")[2]
        if self.user is not None:
            await self.fail("policy-violation", "Already authenticated.")
            return
        if name == "abort":
            self.scram = None
            self._sasl_failure("aborted")
            return
        if not self.secure:
            self._sasl_failure("encryption-required", "Start TLS (STARTTLS) before authenticating.")
            await self.fail("policy-violation", "Authentication needs TLS first.")
            return
        try:
            payload = base64.b64decode((stanza.text or "").strip(), validate=True)
        except (binascii.Error, ValueError):
            self._sasl_failure("incorrect-encoding")
            return
        if name == "auth":
            mechanism = stanza.get("mechanism", "")
            if mechanism == "PLAIN":
                await self._plain(payload)
            elif mechanism in SCRAM_MECHANISMS:
                await self._scram_first(mechanism, payload)
            else:
                self._sasl_failure("invalid-mechanism", f"Offered: {', '.join((*SCRAM_MECHANISMS, 'PLAIN'))}.")
        elif name == "response" and self.scram is not None:
            await self._scram_final(payload)
        else:
            self._sasl_failure("malformed-request")

    async def _plain(self, payload: bytes) -> None:
        from topology import credentials

        try:
            _authzid, authcid, password = payload.decode().split("\0")
        except (UnicodeDecodeError, ValueError):
            self._sasl_failure("malformed-request", "PLAIN is authzid NUL authcid NUL password.")
            return
        try:
            info = await in_worker_thread(_plain_sign_in)(authcid, password, self.transport.source)
        except credentials.SignInRefused as exc:
            self._sasl_failure("not-authorized", str(exc))
            return
        await self._authenticated(info)

    async def _scram_first(self, mechanism: str, payload: bytes) -> None:
        from topology import credentials

        names: list[str] = []
        auth_fn = credentials.scram_auth_fn(mechanism)

        def keys(username: str):
            names.append(username)
            return auth_fn(username)

        server = ScramMechanism(mechanism).make_server(keys)
        source = self.transport.source

        def first(client_first: str) -> None:  # the keys and the throttle in one worker-thread call
            server.set_client_first(client_first)
            credentials.check_allowed(names[0] if names else "", source)

        try:
            await in_worker_thread(first)(payload.decode())
            challenge = server.get_server_first()
        except (ScramException, UnicodeDecodeError) as exc:
            self._sasl_failure("malformed-request", str(exc))
            return
        except credentials.SignInRefused as exc:
            self._sasl_failure("not-authorized", str(exc))
            return
        self.scram_user = names[0] if names else ""
        self.scram = server
        self.send_raw(f"<challenge xmlns='{SASL_NS}'>{base64.b64encode(challenge.encode()).decode()}</challenge>")

    async def _scram_final(self, payload: bytes) -> None:
        from topology import credentials

        server, self.scram = self.scram, None
        try:  # HMACs only: the salted password was derived when the password was set
            server.set_client_final(payload.decode())
            final = server.get_server_final()
        except (ScramException, UnicodeDecodeError):
            await credentials.arecord_failure(self.scram_user, self.transport.source)
            self._sasl_failure("not-authorized", credentials.WRONG_CREDENTIALS_MESSAGE)
            return
        info = await in_worker_thread(_scram_sign_in)(self.scram_user, self.transport.source)
        await self._authenticated(info, final)

    async def _authenticated(self, info: UserInfo | None, server_final: str = "") -> None:
        """SASL succeeded for ``info`` (None: the user was deleted meanwhile)."""
        from topology import credentials

        if info is None:
            self._sasl_failure("not-authorized", credentials.WRONG_CREDENTIALS_MESSAGE)
            return
        if info.serving is None:
            self._sasl_failure("account-disabled", f"{info.user_id} is not assigned to any IM and Presence node.")
            return
        self.user = info
        if self.router.fenced_reason:  # this node lost its lease: the other node of the group serves
            other = next((n for n in (info.backup, info.home) if n and n != self.router.node.name), None)
            if other is not None:
                self.user = info.__class__(info.user_id, info.jid, other, info.home, info.backup)
        data = base64.b64encode(server_final.encode()).decode() if server_final else ""
        self.send_raw(f"<success xmlns='{SASL_NS}'>{data}</success>")
        self.restart()

    async def _see_other_host(self, node_name: str, reason: str) -> None:
        """RFC 6120 §4.9.3.19: the user is served by another node; name its client address."""
        address = await self.router.client_address(node_name, websocket=self.transport.websocket)
        if self.transport.websocket:
            self.send_raw(f"<close xmlns='{FRAMING_NS}' see-other-uri={_quote(address)}/>")
            self.closed = self.clean_end = True
            self.out.put_nowait(None)
            return
        await self.fail("see-other-host", reason, address)

    async def _turned_away(self) -> bool:
        """A fenced node (its lease ran out: it lost touch with the config DB) answers a new
        stream at once, from what it knows without the config DB, which a sign-in would wait
        on: ``see-other-host`` naming its peer once the peer may have taken its users over,
        before that a retryable ``resource-constraint``."""
        router = self.router
        lease_lost = router.tc is not None and not router.tc.serving()
        if not router.fenced_reason and not lease_lost:
            return False
        snapshot = router.directory.snapshot
        peer = snapshot.peers.get(router.node.name)
        reason = router.fenced_reason or f"{router.node.name} lost touch with the config DB"
        if router.fenced_reason and peer in snapshot.nodes:
            await self._see_other_host(peer, f"{reason}; sign in on {peer}.")
        else:
            elsewhere = f" or sign in on {peer}" if peer else ""
            text = f"{reason}; it serves nobody until it is back. Try again in a few seconds{elsewhere}."
            await self.fail("resource-constraint", text)
        return True

    # --- resource binding (RFC 6120 §7) ----------------------------------------------------------

    async def _bind(self, iq: ET.Element) -> None:
        if iq.get("type") != "set":
            self.send(stanza_error(iq, "modify", "bad-request"))
            return
        asked = find(find(iq, BIND_NS, "bind"), BIND_NS, "resource")
        resource = (asked.text or "") if asked is not None else ""
        resource = resource.strip()[:MAX_RESOURCE] or f"imp-{secrets.token_hex(4)}"
        session = self.router.new_session(XmppBinding(self, f"{self.user.jid}/{resource}"))
        session.binding.session = session
        await self.router.sign_in(session, self.user)
        self.session = session
        reply = element(CLIENT_NS, "iq", {"type": "result", "id": iq.get("id")})
        child(child(reply, BIND_NS, "bind"), BIND_NS, "jid", text=session.binding.full_jid)
        self.send(reply)

    # --- XEP-0198 ----------------------------------------------------------------------------------

    async def _stream_management(self, item: ET.Element) -> None:
        binding = self.session.binding if self.session is not None else None
        name = item.tag.rpartition("}")[2]
        if name == "resume":
            await self._resume(item)
            return
        if binding is None:
            self.send_raw(f"<failed xmlns='{SM_NS}'><unexpected-request xmlns='{STANZA_ERROR_NS}'/></failed>")
            return
        if name == "enable":
            if binding.sm_enabled:
                self.send_raw(f"<failed xmlns='{SM_NS}'><unexpected-request xmlns='{STANZA_ERROR_NS}'/></failed>")
                return
            binding.sm_enabled = True
            offered = settings.XMPP_RESUME_SECONDS
            if item.get("resume") not in ("true", "1") or offered <= 0:
                self.send_raw(f"<enabled xmlns='{SM_NS}'/>")
                return
            binding.resume_seconds = min(_int(item.get("max")) or offered, offered)
            binding.sm_id = secrets.token_urlsafe(18)
            self.front.resumable[binding.sm_id] = binding
            self.send_raw(
                f"<enabled xmlns='{SM_NS}' id='{binding.sm_id}' resume='true' max='{binding.resume_seconds}'/>"
            )
        elif name == "r":
            self.send_raw(f"<a xmlns='{SM_NS}' h='{binding.handled % SM_MODULUS}'/>")
        elif name == "a":
            acked = _int(item.get("h"))
            if acked is not None:
                binding.acknowledged(acked)

    async def _resume(self, item: ET.Element) -> None:
        """XEP-0198 §5: take over the session of a connection that dropped (or has not been
        seen to drop yet), resend what the client did not acknowledge, go on where it was.
        The session must be this user's, on this node, still kept; a user moved by a failover
        was signed out here and signs in on the other node (then catches up by MAM)."""
        previd = item.get("previd") or ""
        acked = _int(item.get("h"))
        binding = self.front.resumable.get(previd)
        session = binding.session if binding is not None else None
        if (
            self.session is not None
            or acked is None
            or session is None
            or session.closing
            or binding.overflowed
            or session.user.jid != self.user.jid
        ):
            text = "No session to resume here: bind a resource, rejoin your rooms and catch up from the archive."
            self.send_raw(
                f"<failed xmlns='{SM_NS}'><item-not-found xmlns='{STANZA_ERROR_NS}'/>"
                f"<text xmlns='{STANZA_ERROR_NS}'>{text}</text></failed>"
            )
            return
        if binding.expiry is not None:
            binding.expiry.cancel()
            binding.expiry = None
        binding.detached = False
        old, binding.stream = binding.stream, self
        self.session = session
        if old is not self and not old.closed:  # the client is back before its old connection dropped
            old.replaced = True
            old.closed = True
            old.out.put_nowait(None)
        binding.acknowledged(acked)
        self.send_raw(f"<resumed xmlns='{SM_NS}' previd={_quote(previd)} h='{binding.handled % SM_MODULUS}'/>")
        for _count, stanza in binding.unacked:
            self.send_raw(text_for(stanza, self.transport.default_ns))
        logger.info("%s resumed its session (%d stanzas sent again)", binding.full_jid, len(binding.unacked))


STANZA_TAGS = {q(CLIENT_NS, "message"), q(CLIENT_NS, "presence"), q(CLIENT_NS, "iq")}


def _escape(text: str) -> str:
    from xml.sax.saxutils import escape

    return escape(text)


def _quote(text: str) -> str:
    from xml.sax.saxutils import quoteattr

    return quoteattr(text)


def _plain_sign_in(authcid: str, password: str, source: str) -> UserInfo | None:
    """SASL PLAIN in one worker-thread call: the password check (throttle, key derived again,
    success recorded) and where the user is served."""
    from topology import credentials

    user = credentials.authenticate(authcid, password, source)
    return lookup_user(user.user_id)


def _scram_sign_in(name: str, source: str) -> UserInfo | None:
    """After a SCRAM proof checked out: the success recorded and where the user is served, in
    one worker-thread call (None: the user was deleted during the exchange)."""
    from topology import credentials

    user = credentials.find_user(name)
    if user is None:
        return None
    credentials.record_success(user.user_id, source)
    return lookup_user(user.user_id)


class XmppFrontEnd:
    """The XMPP listener of a node's XCP Router, and the translation of stanzas to router calls."""

    def __init__(self, router) -> None:
        self.router = router
        self.domain = ""
        self.server: asyncio.base_events.Server | None = None
        self._tls: ssl.SSLContext | None = None
        self._tls_lock = asyncio.Lock()
        self._rendered: tuple[dict, str, str, str] | None = None  # the last live message written (_live_message)
        self.resumable: dict[str, XmppBinding] = {}  # XEP-0198 id → binding whose session may be resumed

    # --- XEP-0198 sessions kept for resumption ---------------------------------------------------

    def detach(self, binding: XmppBinding) -> None:
        """Its connection dropped: keep the session (its rooms, its stanzas) for the resumption
        timeout."""
        binding.detached = True
        binding.expiry = self.router.spawn(self._expire(binding))

    async def _expire(self, binding: XmppBinding) -> None:
        await asyncio.sleep(binding.resume_seconds)
        binding.expiry = None
        await self._end(binding)

    def end_detached(self, binding: XmppBinding) -> None:
        """End a detached session now (its user was moved, signed in again, or it kept too much)."""
        if binding.expiry is not None:
            binding.expiry.cancel()
            binding.expiry = None
        self.router.spawn(self._end(binding))

    async def _end(self, binding: XmppBinding) -> None:
        if self.resumable.get(binding.sm_id) is binding:
            del self.resumable[binding.sm_id]
        if binding.detached:
            binding.detached = False
            logger.info("%s did not resume its session; signed out", binding.full_jid)
            await self.router.signed_out(binding.session)

    def domains(self) -> set[str]:
        return {self.domain} if self.domain else set()

    async def tls_context(self) -> ssl.SSLContext | None:
        """The client port's TLS context: read (the node's certificate made first, if it has
        none) once, not by each of the many clients that STARTTLS at once after a failover."""
        async with self._tls_lock:
            if self._tls is None:
                from topology import credentials

                self._tls = await in_worker_thread(credentials.server_ssl_context)(self.router.node)
        return self._tls

    async def start(self, host: str, port: int) -> None:
        try:  # ready before the first client: a backup node meets its first clients all at once
            await self.tls_context()
        except Exception:
            logger.exception("The TLS context of the XMPP client port could not be made; trying again on STARTTLS")
        self.server = await asyncio.start_server(self._tcp_client, host, port)

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            self.server = None
        self.resumable.clear()

    async def _tcp_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await XmppStream(self, TcpTransport(reader, writer)).run()

    async def websocket_client(self, ws) -> None:
        await XmppStream(self, WebSocketTransport(ws)).run()

    # --- stanzas of a bound session --------------------------------------------------------------

    async def handle(self, stream: XmppStream, stanza: ET.Element) -> None:
        kind = stanza.tag.rpartition("}")[2]
        try:
            if kind == "iq":
                await self._iq(stream, stanza)
            elif kind == "presence":
                await self._presence(stream, stanza)
            else:
                await self._message(stream, stanza)
        except ChatError as exc:
            if stanza.get("type") != "error":
                stream.send(self._addressed(stream, stanza, chat_error(stanza, exc)))

    def _addressed(self, stream: XmppStream, stanza: ET.Element, reply: ET.Element) -> ET.Element:
        """An error reply addressed to the client's full JID; a refused room join carries the
        MUC element back (XEP-0045 §7.2.6), which is how clients match it to their join."""
        reply.set("to", stream.session.binding.full_jid)
        if stanza.tag == q(CLIENT_NS, "presence") and find(stanza, MUC_NS, "x") is not None:
            reply.insert(0, element(MUC_NS, "x"))
        return reply

    def _room_parts(self, to: str) -> tuple[str, str]:
        """(room JID, nick) of an address on a conference service."""
        room, _, nick = to.partition("/")
        return room.lower(), nick

    def _is_conference(self, domain: str) -> bool:
        return self.router.directory.snapshot.alias_home.get(domain.lower()) is not None

    # presence: join and leave rooms (XEP-0045 §7.2, §7.14)

    async def _presence(self, stream: XmppStream, presence: ET.Element) -> None:
        to = presence.get("to")
        if not to:
            # Initial presence: nobody subscribes to it here (empty roster), but what was kept
            # for the user while signed in nowhere (room invitations) is due now (XEP-0160).
            session = stream.session
            if presence.get("type") in (None, "available") and session is not None and not session.available:
                await self.router.hand_over_kept(session)
            return
        room, nick = self._room_parts(to)
        if "@" not in room or not self._is_conference(room.partition("@")[2]):
            return
        session = stream.session
        kind = presence.get("type")
        if kind == "unavailable":
            if room in session.rooms:
                own = session.rooms[room]
                await self.router.leave(session, room)
                gone = self._occupant_presence(room, own, session.user.jid, stream, "unavailable", self_=True)
                stream.send(gone)
            return
        if kind not in (None, "available"):
            return
        if not nick.strip() or len(nick.encode()) > MAX_RESOURCE:
            text = "Join as room@service/nick, with a nickname of 1 to 1023 bytes that is not blank."
            stream.send(self._addressed(stream, presence, stanza_error(presence, "modify", "jid-malformed", text)))
            return
        if room in session.rooms:
            if nick != session.rooms[room]:
                await muc_user.change_nick(self, stream, room, nick)
            else:
                stream.send(self._occupant_presence(room, nick, session.user.jid, stream, self_=True))
            return
        muc = find(presence, MUC_NS, "x")
        history = find(muc, MUC_NS, "history") if muc is not None else None
        maxstanzas = _int(history.get("maxstanzas")) if history is not None else None
        password = (muc.findtext(q(MUC_NS, "password")) or "") if muc is not None else ""
        created = False
        try:
            answer = await self.router.join(session, room, nick, history=maxstanzas, password=password)
        except ChatError as exc:
            if exc.code != ErrorCode.ROOM_NOT_FOUND or not self._is_conference(room.partition("@")[2]):
                raise
            try:
                try:
                    await self.router.create_room(session, room, persistent=True)
                except ChatError as refused:
                    if refused.code != ErrorCode.PERSISTENT_CHAT_DISABLED:
                        raise
                    await self.router.create_room(session, room, persistent=False)  # an ad hoc room
            except ChatError as refused:
                if refused.code in (ErrorCode.FORBIDDEN, ErrorCode.ROOM_LIMIT, ErrorCode.PERSISTENT_CHAT_DISABLED):
                    error = stanza_error(presence, "cancel", "not-allowed", refused.message)
                    stream.send(self._addressed(stream, presence, error))
                    return
                if refused.code != ErrorCode.ROOM_EXISTS:  # created meanwhile by someone else: join it
                    raise
            created = True
            answer = await self.router.join(session, room, nick, history=maxstanzas)
        for occupant in answer.roster:
            if occupant["user"] != session.user.jid:
                stream.send(
                    self._occupant_presence(
                        room,
                        occupant["nick"],
                        occupant["user"],
                        stream,
                        affiliation=occupant["affiliation"],
                        role=occupant.get("role"),
                    )
                )
        codes = ["110", "100"] + (["201"] if created else [])
        stream.send(
            self._occupant_presence(
                room,
                nick,
                session.user.jid,
                stream,
                codes=codes,
                self_=True,
                affiliation=answer.affiliation,
                role=answer.role,
            )
        )
        # XEP-0045 §7.2: the history, then the subject (from whoever set it).
        for message in _history_wanted(list(answer.history), history):
            stream.send(self._room_message(stream, message, delayed=True))
        stream.send(self._subject_message(stream, room, answer.subject, answer.subject_nick))

    def _subject_message(self, stream: XmppStream, room: str, subject: str, nick: str) -> ET.Element:
        sender = f"{room}/{nick}" if nick else room
        message = element(CLIENT_NS, "message", {"from": sender, "to": stream.session.binding.full_jid})
        message.set("type", "groupchat")
        child(message, CLIENT_NS, "subject", text=subject or "")
        return message

    def _occupant_presence(
        self,
        room: str,
        nick: str,
        real_jid: str,
        stream: XmppStream,
        kind: str | None = None,
        codes: list[str] | None = None,
        self_: bool = False,
        affiliation: str = "none",
        role: str | None = None,
    ) -> ET.Element:
        presence = element(CLIENT_NS, "presence", {"from": f"{room}/{nick}", "to": stream.session.binding.full_jid})
        if kind:
            presence.set("type", kind)
        x = child(presence, MUC_USER_NS, "x")
        role = "none" if kind == "unavailable" else (role or muc_admin.role_of(affiliation))
        child(x, MUC_USER_NS, "item", {"affiliation": affiliation, "role": role, "jid": real_jid})
        for code in codes or (["110"] if self_ else []):
            child(x, MUC_USER_NS, "status", {"code": code})
        return presence

    def _send_live_message(self, binding: XmppBinding, event: dict) -> None:
        """Send a room message as ``binding``'s client receives it live. The router hands the
        same event to every session in the room, so it is written once (per kind of transport)
        and only the recipient's address is put in for each."""
        stream = binding.stream
        ns = stream.transport.default_ns
        rendered = self._rendered
        if rendered is None or rendered[0] is not event or rendered[1] != ns:
            text = tostring(self._room_message(stream, event, to=RECIPIENT), ns)
            head, _, tail = text.partition(_quote(RECIPIENT))
            rendered = self._rendered = (event, ns, head, tail)
        if binding.quoted_jid is None:
            binding.quoted_jid = _quote(binding.full_jid)
        text = f"{rendered[2]}{binding.quoted_jid}{rendered[3]}"
        if binding.sm_enabled:  # kept until acknowledged, and built again for a resumption elsewhere
            binding.send(Written(text, ns, functools.partial(self._room_message, stream, event, to=binding.full_jid)))
        elif not stream.closed:
            stream.send_raw(text)

    def _presence_of(self, stream: XmppStream, event: dict, mine: bool) -> ET.Element:
        """An occupant's presence as the room broadcast it: joined, left, its affiliation or role
        changed (with the moderator's reason), or put out (XEP-0045 §8.2 kicked 307, §9.1 banned
        301, §9.4 no longer a member 321, §10.2 the room became members-only 322, §10.9 the
        room destroyed)."""
        kicked = event.get("kicked", "")
        gone = "unavailable" if event.get("status") == "left" else None
        codes = (["110"] if mine else []) + ([kicked] if kicked.isdigit() else [])
        affiliation = event.get("affiliation", "none")
        presence = self._occupant_presence(
            event["room"],
            event["nick"],
            event["user"],
            stream,
            gone,
            codes=codes,
            affiliation=affiliation,
            role=event.get("role"),
        )
        if kicked != "destroyed" and (event.get("reason") or event.get("actor")):
            item = find(find(presence, MUC_USER_NS, "x"), MUC_USER_NS, "item")
            if event.get("actor"):
                child(item, MUC_USER_NS, "actor", {"nick": event["actor"]})
            if event.get("reason"):
                child(item, MUC_USER_NS, "reason", text=event["reason"])
        if kicked == "destroyed":
            x = find(presence, MUC_USER_NS, "x")
            destroyed = child(x, MUC_USER_NS, "destroy")
            if event.get("reason"):
                child(destroyed, MUC_USER_NS, "reason", text=event["reason"])
        return presence

    def _room_message(self, stream: XmppStream, message: dict, delayed: bool = False, to: str | None = None):
        room = message["room"]
        stanza = element(
            CLIENT_NS,
            "message",
            {
                "from": f"{room}/{message['nick'] or message['from'].partition('@')[0]}",
                "to": to or stream.session.binding.full_jid,
                "type": "groupchat",
                "id": message.get("cid") or None,
            },
        )
        child(stanza, CLIENT_NS, "body", text=message["body"])
        if delayed:
            child(stanza, DELAY_NS, "delay", {"stamp": _iso(message["stamp"]), "from": room})
        child(stanza, SID_NS, "stanza-id", {"by": room, "id": message["stanza_id"]})
        if message.get("cid"):
            child(stanza, SID_NS, "origin-id", {"id": message["cid"]})
        return stanza

    # messages: groupchat posts (XEP-0045 §7.4); the reflection is the acknowledgement

    async def _message(self, stream: XmppStream, message: ET.Element) -> None:
        kind = message.get("type")
        if kind == "error":
            return
        room, nick = self._room_parts(message.get("to") or "")
        if nick and "@" in room and self._is_conference(room.partition("@")[2]):
            await muc_user.private_message(self, stream, message, room, nick)
            return
        voice = muc_user.request_form(message) if kind != "groupchat" else None
        if voice is not None and "@" in room and self._is_conference(room.partition("@")[2]):
            await muc_user.voice_request(self, stream, voice, room)
            return
        mediated = find(message, MUC_USER_NS, "x")
        if mediated is not None and kind != "groupchat" and "@" in room and self._is_conference(room.partition("@")[2]):
            try:
                await muc_user.mediated(self, stream, message, mediated, room)
            except muc_admin.Refused as exc:
                stream.send(self._addressed(stream, message, stanza_error(message, exc.kind, exc.condition, exc.text)))
            return
        direct = find(message, muc_user.CONFERENCE_NS, "x")
        invited_to = bare(direct.get("jid") or "") if direct is not None else ""
        to_user = not self._is_conference(room.partition("@")[2])
        if kind != "groupchat" and to_user and "@" in invited_to and self._is_conference(invited_to.partition("@")[2]):
            try:
                await muc_user.direct_invite(self, stream, message, direct, invited_to)
            except muc_admin.Refused as exc:
                stream.send(self._addressed(stream, message, stanza_error(message, exc.kind, exc.condition, exc.text)))
            return
        if kind != "groupchat" or nick or not self._is_conference(room.partition("@")[2]):
            stream.send(
                stanza_error(message, "cancel", "service-unavailable", "Only groupchat messages to rooms are served.")
            )
            return
        body = find(message, CLIENT_NS, "body")
        if body is None or not (body.text or "").strip():
            subject = find(message, CLIENT_NS, "subject")
            if subject is not None:  # XEP-0045 §8.1: stored, then broadcast by the room
                await self.router.set_subject(stream.session, room, (subject.text or "").strip())
            return  # chat states and the like: nothing to store
        origin = find(message, SID_NS, "origin-id")
        cid = (origin.get("id") if origin is not None else None) or message.get("id") or uuid.uuid4().hex
        answer = await self.router.post(stream.session, room, body.text, cid[:128])
        if answer.new:
            return  # reflected by the room's broadcast, in the room's order, like everyone's messages
        if await self.router.delivered_through(room, answer.msg_id):
            return  # its broadcast had been lost: delivered now, in order, with those before it
        # A repeat of a message already delivered (same origin-id): the first one's reflection again.
        reflection = self._room_message(stream, answer.message)
        if message.get("id"):
            reflection.set("id", message.get("id"))
        stream.send(reflection)

    # iq

    async def _iq(self, stream: XmppStream, iq: ET.Element) -> None:
        kind = iq.get("type")
        if kind in ("result", "error"):
            return
        payload = next(iter(iq), None)
        if payload is None or kind not in ("get", "set"):
            stream.send(stanza_error(iq, "modify", "bad-request"))
            return
        to = iq.get("to") or ""
        ns = payload.tag[1:].partition("}")[0]
        if ns == PING_NS:
            await self._ping(stream, iq, to)
        elif ns == DISCO_INFO_NS:
            await self._disco_info(stream, iq, to)
        elif ns == DISCO_ITEMS_NS:
            await self._disco_items(stream, iq, to)
        elif ns == MAM_NS:
            await self._mam(stream, iq, payload, to)
        elif ns in bookmarks.NAMESPACES:
            await bookmarks.iq(self, stream, iq, payload, to)
        elif ns in (muc_admin.MUC_OWNER_NS, muc_admin.MUC_ADMIN_NS):
            await self._muc_admin(stream, iq, payload, to)
        elif ns == ROSTER_NS and kind == "get" and not to:
            stream.send(self._result(iq, element(ROSTER_NS, "query")))
        elif ns == SESSION_NS:
            stream.send(self._result(iq))
        elif ns == REGISTER_NS and (not to or to == stream.domain):
            await self._register(stream, iq, payload)
        elif ns == REGISTER_NS and "@" in to and "/" not in to and self._is_conference(to.partition("@")[2]):
            try:
                await muc_user.register(self, stream, iq, payload, bare(to))
            except muc_admin.Refused as exc:
                stream.send(self._addressed(stream, iq, stanza_error(iq, exc.kind, exc.condition, exc.text)))
        else:
            stream.send(stanza_error(iq, "cancel", "service-unavailable"))

    def _result(self, iq: ET.Element, payload: ET.Element | None = None) -> ET.Element:
        reply = element(CLIENT_NS, "iq", {"type": "result", "id": iq.get("id"), "from": iq.get("to")})
        if payload is not None:
            reply.append(payload)
        return reply

    async def _muc_admin(self, stream: XmppStream, iq: ET.Element, query: ET.Element, to: str) -> None:
        """XEP-0045 owner and admin requests to a room (``muc_admin``)."""
        room = bare(to)
        if "@" not in room or "/" in to or not self._is_conference(room.partition("@")[2]):
            stream.send(stanza_error(iq, "cancel", "service-unavailable", "Owner and admin requests go to a room."))
            return
        handler = muc_admin.owner_iq if query.tag == q(muc_admin.MUC_OWNER_NS, "query") else muc_admin.admin_iq
        try:
            payload = await handler(self.router, stream.session, iq, query, room)
        except muc_admin.Refused as exc:
            stream.send(self._addressed(stream, iq, stanza_error(iq, exc.kind, exc.condition, exc.text)))
            return
        stream.send(self._result(iq, payload))

    async def _ping(self, stream: XmppStream, iq: ET.Element, to: str) -> None:
        """XEP-0199; a ping to one's own occupant JID is XEP-0410 self-ping, answered by the TC
        hosting the room now (so after a failover it says truthfully whether one is joined)."""
        room, nick = self._room_parts(to)
        if not nick or not self._is_conference(room.partition("@")[2]):
            stream.send(self._result(iq))
            return
        answer = await self.router.route(room, requests.Presence(room=room, user=stream.session.user.jid))
        mine = [o for o in answer.occupants if o["user"] == stream.session.user.jid]
        if not mine or room not in stream.session.rooms:
            stream.send(stanza_error(iq, "modify", "not-acceptable", f"You are not in {room}."))
        elif mine[0]["nick"] == nick:
            stream.send(self._result(iq))
        else:
            stream.send(stanza_error(iq, "cancel", "feature-not-implemented"))

    async def _disco_info(self, stream: XmppStream, iq: ET.Element, to: str) -> None:
        if to and bookmarks.is_own_account(stream, to):
            await bookmarks.disco_info(self, stream, iq, to)
            return
        query = element(DISCO_INFO_NS, "query")
        room, nick = self._room_parts(to)
        if not to or to.lower() == stream.domain:
            child(query, DISCO_INFO_NS, "identity", {"category": "server", "type": "im", "name": "IM and Presence"})
            features = [DISCO_INFO_NS, DISCO_ITEMS_NS, PING_NS, REGISTER_NS, SM_NS, bookmarks.PRIVATE_NS]
        elif "@" not in room and self._is_conference(room):
            child(query, DISCO_INFO_NS, "identity", {"category": "conference", "type": "text", "name": "Chat rooms"})
            features = [DISCO_INFO_NS, DISCO_ITEMS_NS, MUC_NS, PING_NS, MAM_NS, SID_NS]
        elif "@" in room and not nick and self._is_conference(room.partition("@")[2]):
            info = await self.router.route(room, requests.Info(room=room, user=stream.session.user.jid))
            if find(iq, DISCO_INFO_NS, "query").get("node") == RESERVED_NICK_NODE:
                # XEP-0045 §7.12: the user's reserved nickname, or an empty answer.
                query.set("node", RESERVED_NICK_NODE)
                if info.reserved_nick:
                    identity = {"category": "conference", "type": "text", "name": info.reserved_nick}
                    child(query, DISCO_INFO_NS, "identity", identity)
                stream.send(self._result(iq, query))
                return
            child(query, DISCO_INFO_NS, "identity", {"category": "conference", "type": "text", "name": info.name})
            features = [
                MUC_NS,
                REGISTER_NS,
                DISCO_INFO_NS,
                MAM_NS,
                SID_NS,
                PING_NS,
                "muc_persistent" if info.persistent else "muc_temporary",
                "muc_membersonly" if info.members_only else "muc_open",
                "muc_nonanonymous",
                "muc_moderated" if info.moderated else "muc_unmoderated",
                "muc_passwordprotected" if info.password_protected else "muc_unsecured",
                "muc_public" if info.public else "muc_hidden",
            ]
            form = child(query, DATA_NS, "x", {"type": "result"})
            for var, value in (
                ("FORM_TYPE", "http://jabber.org/protocol/muc#roominfo"),
                ("muc#roominfo_description", info.description),
                ("muc#roominfo_occupants", str(info.occupants)),
                ("muc#roominfo_subject", info.subject),
            ):
                child(child(form, DATA_NS, "field", {"var": var}), DATA_NS, "value", text=value)
        else:
            stream.send(stanza_error(iq, "cancel", "item-not-found"))
            return
        for feature in features:
            child(query, DISCO_INFO_NS, "feature", {"var": feature})
        stream.send(self._result(iq, query))

    async def _disco_items(self, stream: XmppStream, iq: ET.Element, to: str) -> None:
        if to and bookmarks.is_own_account(stream, to):
            await bookmarks.disco_items(self, stream, iq, to)
            return
        query = element(DISCO_ITEMS_NS, "query")
        snapshot = self.router.directory.snapshot
        if not to or to.lower() == stream.domain:
            for alias in sorted(snapshot.alias_home):
                child(query, DISCO_ITEMS_NS, "item", {"jid": alias, "name": "Chat rooms"})
        elif "@" not in to and self._is_conference(to):
            alias = to.lower()
            home = snapshot.alias_home[alias]
            answer = await self.router.route_home(home, requests.ListRooms(home=home, user=stream.session.user.jid))
            for room in answer.rooms:
                if room["room"].partition("@")[2] == alias and room.get("public", True):
                    child(query, DISCO_ITEMS_NS, "item", {"jid": room["room"], "name": room.get("subject") or None})
        elif "@" in to and self._is_conference(to.partition("@")[2]):
            pass  # occupants are not listed (XEP-0045 §6.5 allows an empty list)
        else:
            stream.send(stanza_error(iq, "cancel", "item-not-found"))
            return
        stream.send(self._result(iq, query))

    async def _mam(self, stream: XmppStream, iq: ET.Element, query: ET.Element, to: str) -> None:
        """XEP-0313 on a room: by time (start/end), by stanza-id (after-id/before-id, RSM
        after/before), paged (RSM max; an empty before asks for the last page)."""
        room = bare(to)
        if "@" not in room or not self._is_conference(room.partition("@")[2]):
            stream.send(stanza_error(iq, "cancel", "service-unavailable", "Archives are kept for rooms only."))
            return
        if iq.get("type") == "get":
            form = element(DATA_NS, "x", {"type": "form"})
            child(child(form, DATA_NS, "field", {"var": "FORM_TYPE", "type": "hidden"}), DATA_NS, "value", text=MAM_NS)
            for var in ("start", "end", "after-id", "before-id"):
                child(form, DATA_NS, "field", {"var": var})
            reply = element(MAM_NS, "query")
            reply.append(form)
            stream.send(self._result(iq, reply))
            return
        request: dict = {}
        form = find(query, DATA_NS, "x")
        try:
            for field_ in form.findall(q(DATA_NS, "field")) if form is not None else []:
                value = (field_.findtext(q(DATA_NS, "value")) or "").strip()
                var = field_.get("var")
                if var in ("start", "end") and value:
                    request[var] = _parse_time(value).isoformat()
                elif var in ("after-id", "before-id") and value:
                    request[var.replace("-", "_")] = value
        except ValueError:
            stream.send(stanza_error(iq, "modify", "bad-request", "start and end are XEP-0082 date-times."))
            return
        rsm = find(query, RSM_NS, "set")
        if rsm is not None:
            limit = _int(rsm.findtext(q(RSM_NS, "max")))
            if limit is not None:
                request["limit"] = limit
            after = rsm.findtext(q(RSM_NS, "after"))
            before = rsm.find(q(RSM_NS, "before"))
            if after:
                request["after_id"] = after.strip()
            if before is not None:
                request["last"] = True
                if (before.text or "").strip():
                    request["before_id"] = before.text.strip()
        if request.get("before_id"):
            request["last"] = True
        answer = await self.router.route(room, requests.Archive(room=room, user=stream.session.user.jid, **request))
        query_id = query.get("queryid")
        for message in answer.messages:
            wrapper = element(CLIENT_NS, "message", {"to": stream.session.binding.full_jid, "from": room})
            result = child(wrapper, MAM_NS, "result", {"queryid": query_id, "id": message["stanza_id"]})
            forwarded = child(result, FORWARD_NS, "forwarded")
            child(forwarded, DELAY_NS, "delay", {"stamp": _iso(message["stamp"])})
            inner = self._room_message(stream, message, to=stream.session.binding.full_jid)
            inner.attrib.pop("to", None)
            forwarded.append(inner)
            stream.send(wrapper)
        fin = element(MAM_NS, "fin", {"complete": "true" if answer.complete else None})
        page = child(fin, RSM_NS, "set")
        if answer.messages:
            child(page, RSM_NS, "first", text=answer.messages[0]["stanza_id"])
            child(page, RSM_NS, "last", text=answer.messages[-1]["stanza_id"])
        stream.send(self._result(iq, fin))

    async def _register(self, stream: XmppStream, iq: ET.Element, query: ET.Element) -> None:
        """XEP-0077 §3.3: a signed-in user changes their password."""
        from django.core.exceptions import ValidationError

        from topology import credentials

        user = stream.session.user
        if iq.get("type") == "get":
            reply = element(REGISTER_NS, "query")
            child(reply, REGISTER_NS, "registered")
            child(reply, REGISTER_NS, "username", text=user.user_id)
            child(reply, REGISTER_NS, "password")
            stream.send(self._result(iq, reply))
            return
        if find(query, REGISTER_NS, "remove") is not None:
            stream.send(stanza_error(iq, "cancel", "not-allowed", "An administrator removes users."))
            return
        username = (query.findtext(q(REGISTER_NS, "username")) or "").strip()
        password = query.findtext(q(REGISTER_NS, "password"))
        if username.lower() not in (user.user_id.lower(), user.jid) or password is None:
            stream.send(stanza_error(iq, "modify", "bad-request", "Send your own username and the new password."))
            return
        end_user = await in_worker_thread(credentials.find_user)(user.user_id)
        try:
            await credentials.aset_password(end_user, password)
        except ValidationError as exc:
            stream.send(stanza_error(iq, "modify", "not-acceptable", " ".join(exc.messages)))
            return
        stream.send(self._result(iq))

    # events of the router core (rooms, moves) rendered as stanzas

    def render(self, binding: XmppBinding, event: dict) -> None:
        stream = binding.stream
        kind = event.get("type")
        session = stream.session
        if kind == "message":
            if session is not None and event.get("room") in session.rooms:
                self._send_live_message(binding, event)  # the sender's copy is its reflection
        elif kind == "presence":
            if session is None or event["room"] not in session.rooms:
                return
            mine = event.get("user") == session.user.jid
            if mine and not event.get("kicked") and not event.get("changed"):
                return  # the client's own join, leave and nickname change are answered where it asked
            if event.get("status") == "nick":
                for stanza in muc_user.nick_change(
                    self,
                    stream,
                    event["room"],
                    event["user"],
                    event["old_nick"],
                    event["nick"],
                    event.get("affiliation", "none"),
                    event.get("role", ""),
                    mine=False,
                ):
                    stream.send(stanza)
                return
            stream.send(self._presence_of(stream, event, mine))
        elif kind == "private":
            if session is not None and event["room"] in session.rooms:
                stream.send(muc_user.private_stanza(binding, event))
        elif kind in ("invite", "decline"):
            stream.send(muc_user.mediated_stanza(binding, event))
        elif kind == "voice_request":
            if session is not None and event["room"] in session.rooms:
                stream.send(muc_user.voice_request_stanza(binding, event))
        elif kind == "subject":
            if session is not None and event["room"] in session.rooms:
                stream.send(self._subject_message(stream, event["room"], event["subject"], event.get("nick", "")))
        elif kind == "config":
            if session is not None and event["room"] in session.rooms:
                # XEP-0045 §10.2.1: status 104, the configuration changed (and can be read again).
                notice = element(CLIENT_NS, "message", {"from": event["room"], "to": session.binding.full_jid})
                notice.set("type", "groupchat")
                child(child(notice, MUC_USER_NS, "x"), MUC_USER_NS, "status", {"code": "104"})
                stream.send(notice)
        elif kind in ("reconnect", "signed_out") and binding.detached:
            self.end_detached(binding)  # moved, or signed in anew: nothing left to resume here
        elif kind == "reconnect":
            self.router.spawn(stream._see_other_host(event["node"], event.get("reason", "")))
        elif kind == "signed_out":
            self.router.spawn(stream.fail("conflict", event.get("reason", "")))


def _int(value: str | None) -> int | None:
    try:
        number = int((value or "").strip())
    except ValueError:
        return None
    return number if number >= 0 else None


def _history_wanted(messages: list[dict], history: ET.Element | None) -> list[dict]:
    """XEP-0045 §7.2.13: the TC capped the count; ``seconds``, ``since`` and ``maxchars`` narrow it."""
    if history is None:
        return messages
    oldest = None
    seconds = _int(history.get("seconds"))
    if seconds is not None:
        oldest = datetime.now(UTC) - timedelta(seconds=seconds)
    if history.get("since"):
        with contextlib.suppress(ValueError):
            since = _parse_time(history.get("since"))
            oldest = max(oldest, since) if oldest else since
    if oldest is not None:
        messages = [m for m in messages if datetime.fromisoformat(m["stamp"]).replace(tzinfo=UTC) >= oldest]
    maxchars = _int(history.get("maxchars"))
    if maxchars is not None:
        kept, used = [], 0
        for message in reversed(messages):
            used += len(message["body"]) + 100  # the stanza around the body, roughly
            if used > maxchars:
                break
            kept.append(message)
        messages = list(reversed(kept))
    return messages
