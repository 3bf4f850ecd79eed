"""Fixtures for the XMPP suites: in-process nodes (tests/chat/conftest.py) with an XMPP client
port each, end users with passwords, and slixmpp clients (a client nobody here wrote)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl

import pytest
import slixmpp
from slixmpp.exceptions import IqError, IqTimeout, PresenceError

from tests.chat.conftest import ChatWorld
from tests.scenario import give_xmpp_ports
from topology import credentials


def password_of(user_id: str) -> str:
    """The chat password the suites give an end user (test data)."""
    return f"{user_id}-chat-password"


logging.getLogger("slixmpp").setLevel(logging.ERROR)


def ca_file() -> str:
    """The CA a client of the demo and of these tests trusts (it signs every node's certificate)."""
    from topology.certificates import demo_ca, demo_ca_paths

    demo_ca()
    return str(demo_ca_paths()[0])


@pytest.fixture
def xworld(world: ChatWorld) -> ChatWorld:
    """The chat world with an XMPP client port on every node."""
    give_xmpp_ports(world.nodes.values())
    return world


def add_user(world: ChatWorld, user_id: str, node: str):
    """An end user of ``node`` with the password ``password_of(user_id)``."""
    user = world.user(user_id, node)
    credentials.set_password(user, password_of(user_id))
    return user


def client_tls() -> ssl.SSLContext:
    """What a client configured with the demo CA checks: the chain and the domain's name."""
    return ssl.create_default_context(cafile=ca_file())


class Client(slixmpp.ClientXMPP):
    """A slixmpp client with the plugins a group chat user needs."""

    def __init__(
        self, jid: str, password: str | None = None, sasl_mech: str | None = None, resume: bool = False
    ) -> None:
        super().__init__(jid, password or password_of(jid.partition("@")[0]), sasl_mech=sasl_mech)
        self.mechanism_used = None
        self.add_event_handler("auth_success", self._authenticated)
        self.ssl_context = client_tls()
        self.max_redirects = 100  # a user bounced between the two nodes of a group while they fail over
        self.enable_direct_tls = False  # nodes offer STARTTLS only: no failed direct-TLS attempt first
        plugins = ["xep_0030", "xep_0045", "xep_0059", "xep_0199", "xep_0313", "xep_0359", "xep_0077"]
        for plugin in plugins + (["xep_0198"] if resume else []):
            self.register_plugin(plugin)
        self.sm_failures: list[str] = []  # each <failed/> of XEP-0198, as XML
        self.resumed = 0
        self.add_event_handler("sm_failed", lambda failed: self.sm_failures.append(str(failed)))
        self.add_event_handler("session_resumed", self._resumed)
        self.groupchat: asyncio.Queue = asyncio.Queue()
        self.add_event_handler("groupchat_message", self.groupchat.put_nowait)
        self.failed: asyncio.Future = asyncio.get_event_loop().create_future()
        self.add_event_handler("failed_auth", self._failed)
        self.stream_errors: list = []
        self.add_event_handler("stream_error", self._stream_error)
        self.redirected = False  # told see-other-host: slixmpp connects there by itself
        self.stopping = False

    def _stream_error(self, error) -> None:
        self.stream_errors.append(error)
        if error["condition"] == "see-other-host":
            self.redirected = True
        if error["condition"] == "see-other-host" and self.custom_address:
            # slixmpp follows see-other-host by DNS; a client given an explicit address (as
            # here, 127.0.0.1:port) would reconnect to that address instead: point it there.
            host, _, port = error["see_other_host"].rpartition(":")
            self.custom_address = (host, int(port))

    def _resumed(self, _stanza) -> None:
        self.resumed += 1

    def cut(self) -> None:
        """Drop the TCP connection without closing the stream, as a lost network does."""
        self.transport.abort()

    def _authenticated(self, _stanza) -> None:
        self.mechanism_used = self.plugin["feature_mechanisms"].mech.name

    def _failed(self, stanza) -> None:
        if not self.failed.done():
            self.failed.set_result((stanza["condition"], stanza["text"]))

    async def start_expecting_failure(self, port: int, timeout: float = 10) -> tuple[str, str]:
        """Connect and return the SASL failure (condition, text)."""
        self.connect("127.0.0.1", port)
        return await asyncio.wait_for(self.failed, timeout)

    async def start(self, port: int, timeout: float = 10) -> None:
        self.connect("127.0.0.1", port)
        started = asyncio.ensure_future(self.wait_until("session_start", timeout))
        done, _ = await asyncio.wait({started, self.failed}, return_when=asyncio.FIRST_COMPLETED, timeout=timeout)
        if started not in done:
            started.cancel()
            raise AssertionError(
                f"{self.boundjid} did not sign in: {self.failed.result() if self.failed.done() else 'timeout'}"
            )

    async def stop(self) -> None:
        self.stopping = True
        with contextlib.suppress(Exception):
            self.disconnect()
            await asyncio.wait_for(self.disconnected, 5)


async def next_groupchat(client: Client, timeout: float = 5):
    return await asyncio.wait_for(client.groupchat.get(), timeout)


class PostRefused(Exception):
    """The room answered a post with an error (for example while a failover moves it)."""


class Chatter:
    """A slixmpp user who posts in one room and follows failovers the way standard clients do:
    on ``see-other-host`` slixmpp connects to the named node; on each new session the chatter
    rejoins the room and asks the archive (MAM) for everything after the last stanza-id it saw.
    A post whose reflection does not come is sent again with the same origin-id."""

    def __init__(
        self, user_id: str, port: int, room: str, resume: bool = False, fallbacks: tuple[int, ...] = ()
    ) -> None:
        self.user_id = user_id
        self.client = Client(f"{user_id}@example.com", resume=resume)
        self.port = port
        # Ports tried in turn when the connection drops or cannot be made, as a client tries the
        # servers of its domain's SRV records (the node, then its backup); none: no reconnection.
        self.ports = (port, *fallbacks)
        if fallbacks:
            self.client.add_event_handler("disconnected", self._dropped)
            self.client.add_event_handler("connection_failed", self._unreachable)
        self.room = room
        self.reflected: list[tuple[str, str]] = []  # (stanza-id, body) of own posts, in reflection order
        self.seen: dict[str, str] = {}  # every room message this client has: stanza-id → body
        self.last_id: str | None = None
        self.caught_up_twice: list[str] = []  # ids a catch-up returned that the client had before its last id
        self.longest_gap = 0.0  # seconds between a post and its reflection, at worst
        self.sessions = 0
        self.catchups: list = []  # [after stanza-id, messages caught up] per new session
        self.errors: list[str] = []  # archive queries that failed (and were tried again)
        self.joined = asyncio.Event()
        self.pending: dict[str, asyncio.Future] = {}
        self.client.add_event_handler("session_start", self._session_start)
        self.client.add_event_handler("groupchat_message", self._message)
        self.client.add_event_handler("message_error", self._error)
        self.client.add_event_handler("disconnected", lambda _: self.joined.clear())
        self.client.add_event_handler("session_resumed", lambda _: self.joined.set())  # still in the room

    async def start(self) -> None:
        await self.client.start(self.port, timeout=30)
        await asyncio.wait_for(self.joined.wait(), 30)

    def _dropped(self, _reason) -> None:
        if self.client.redirected:
            self.client.redirected = False
        elif not self.client.stopping:  # lost without a word (the node died): connect again
            host, port = self.client.custom_address or ("127.0.0.1", self.port)
            asyncio.get_running_loop().call_later(0.5, self.client.connect, host, port)

    def _unreachable(self, error) -> None:
        if not isinstance(error, OSError) or isinstance(error, ssl.SSLError):
            return
        host, port = self.client.custom_address or ("127.0.0.1", self.port)
        following = self.ports[(self.ports.index(port) + 1) % len(self.ports)] if port in self.ports else self.port
        self.client.custom_address = (host, following)
        self.client._connect_loop_wait = 0  # slixmpp backs off up to 300 s; a client of a pair retries soon

    async def _session_start(self, _event) -> None:
        self.sessions += 1
        self.joined.clear()
        resume_after, before = self.last_id, set(self.seen)  # what the previous session saw, in order
        for attempt in range(10):  # a room that is moving answers after a while
            try:
                await self.client.plugin["xep_0045"].join_muc_wait(self.room, self.user_id, maxstanzas=0, timeout=15)
                break
            except (TimeoutError, PresenceError):
                await asyncio.sleep(0.5 * (attempt + 1))
        if resume_after is not None:
            self.catchups.append([resume_after, 0])
            after = resume_after
            while True:
                page = await self._archive_page(after)
                if page is None:
                    break  # given up (recorded in ``errors``): the client misses what it did not get
                results = page["mam"]["results"]
                for message in results:
                    stanza_id = message["mam_result"]["id"]
                    if stanza_id in before:
                        self.caught_up_twice.append(stanza_id)
                    self._record(stanza_id, message["mam_result"]["forwarded"]["stanza"]["body"])
                    self.catchups[-1][1] += 1
                if page["mam_fin"]["complete"] or not results:
                    break
                after = page["mam_fin"]["rsm"]["last"]
        self.joined.set()

    async def _archive_page(self, after: str):
        """The archive's page after ``after``; a room that is moving answers after a while."""
        for attempt in range(10):
            try:
                return await self.client.plugin["xep_0313"].retrieve(
                    jid=self.room, rsm={"max": 100, "after": after}, timeout=30
                )
            except (IqError, IqTimeout) as exc:
                self.errors.append(f"MAM after {after}: {exc!r}")
                await asyncio.sleep(0.5 * (attempt + 1))
        return None

    def _record(self, stanza_id: str, body: str) -> None:
        if stanza_id not in self.seen:
            self.seen[stanza_id] = body
            self.last_id = stanza_id

    def _message(self, message) -> None:
        if not message["body"] or message["from"].bare != self.room:
            return
        stanza_id = message["stanza_id"]["id"]
        self._record(stanza_id, message["body"])
        future = self.pending.pop(message["origin_id"]["id"] or message["id"], None)
        if future is not None and not future.done() and message["from"].resource == self.user_id:
            future.set_result(stanza_id)

    def _error(self, message) -> None:
        future = self.pending.pop(message["id"], None)
        if future is not None and not future.done():
            future.set_exception(PostRefused(message["error"]["condition"]))

    async def post(self, n: int) -> None:
        """Post message ``n`` until it is reflected (the acknowledgement)."""
        loop = asyncio.get_running_loop()
        origin_id, body = f"{self.user_id}-{n}", f"{self.user_id} {n}"
        started = loop.time()
        while True:
            await self.joined.wait()
            future = self.pending[origin_id] = loop.create_future()
            message = self.client.make_message(mto=self.room, mbody=body, mtype="groupchat")
            message["id"] = origin_id
            message["origin_id"]["id"] = origin_id
            message.send()
            try:
                stanza_id = await asyncio.wait_for(future, 5)
                break
            except (TimeoutError, PostRefused):
                self.pending.pop(origin_id, None)
                await asyncio.sleep(0.3)
        self.longest_gap = max(self.longest_gap, loop.time() - started)
        self.reflected.append((stanza_id, body))

    async def keep_posting(self, stop: asyncio.Event, pause: float) -> None:
        n = 0
        while not stop.is_set():
            await self.post(n)
            n += 1
            await asyncio.sleep(pause)


async def whole_archive(client: Client, room: str) -> list[tuple[str, str]]:
    """Every message of the room, oldest first, by MAM pages of 100."""
    messages: list[tuple[str, str]] = []
    rsm: dict = {"max": 100}
    while True:
        page = await client.plugin["xep_0313"].retrieve(jid=room, rsm=rsm, timeout=30)
        results = page["mam"]["results"]
        messages += [(m["mam_result"]["id"], m["mam_result"]["forwarded"]["stanza"]["body"]) for m in results]
        if page["mam_fin"]["complete"] or not results:
            return messages
        rsm = {"max": 100, "after": page["mam_fin"]["rsm"]["last"]}


def assert_each_message_once_in_sender_order(archive: list[tuple[str, str]], chatters: list[Chatter]) -> None:
    """Every reflected message is in the archive exactly once, in its sender's order, and every
    client ends with the whole archive (live plus catch-up), each message once."""
    ids = [stanza_id for stanza_id, _ in archive]
    assert len(ids) == len(set(ids))
    bodies = [body for _, body in archive]
    assert len(bodies) == len(set(bodies)), "a message was stored twice"
    stored = dict(archive)
    for chatter in chatters:
        assert chatter.reflected, f"{chatter.user_id} had no message reflected"
        for stanza_id, body in chatter.reflected:
            assert stored.get(stanza_id) == body, (chatter.user_id, body)
        own = [body for body in bodies if body.startswith(f"{chatter.user_id} ")]
        assert own == [body for _, body in chatter.reflected], chatter.user_id
        assert set(chatter.seen) == set(ids), f"{chatter.user_id} misses {len(set(ids) - set(chatter.seen))}"
        assert chatter.caught_up_twice == [], chatter.user_id


async def configure(owner: slixmpp.ClientXMPP, room: str, **fields: str) -> None:
    """The owner submits the room's configuration form with these ``muc#roomconfig_`` fields."""
    form = owner.plugin["xep_0004"].make_form(ftype="submit")
    for var, value in fields.items():
        form.add_field(var=f"muc#roomconfig_{var}", value=value)
    await owner.plugin["xep_0045"].set_room_config(room, form)
