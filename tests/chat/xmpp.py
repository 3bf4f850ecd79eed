"""Fixtures for the XMPP suites: in-process nodes (tests/chat/conftest.py) with an XMPP client
port each, end users with passwords, and slixmpp clients (a client nobody here wrote)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl

import pytest
import slixmpp

from tests.chat.conftest import ChatWorld, free_port

try:
    from topology import credentials
except ImportError:  # DEV ONLY: until creds lands
    import importlib.util
    import sys

    spec = importlib.util.spec_from_file_location("topology.credentials", "/tmp/xmpp_dev/stub_credentials.py")
    credentials = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(credentials)
    sys.modules["topology.credentials"] = credentials
    import topology

    topology.credentials = credentials

PASSWORD = "correct horse battery"
logging.getLogger("slixmpp").setLevel(logging.ERROR)


@pytest.fixture
def xworld(world: ChatWorld) -> ChatWorld:
    """The chat world with an XMPP client port on every node."""
    for node in world.nodes.values():
        node.xmpp_port = free_port()
        if hasattr(type(node), "xmpp_port"):
            node.save(update_fields=["xmpp_port"])
    return world


def add_user(world: ChatWorld, user_id: str, node: str, password: str = PASSWORD):
    user = world.user(user_id, node)
    credentials.set_password(user, password)
    return user


def client_tls() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


class Client(slixmpp.ClientXMPP):
    """A slixmpp client with the plugins a group chat user needs."""

    def __init__(self, jid: str, password: str = PASSWORD) -> None:
        super().__init__(jid, password)
        self.ssl_context = client_tls()
        for plugin in ("xep_0030", "xep_0045", "xep_0059", "xep_0199", "xep_0313", "xep_0359", "xep_0077"):
            self.register_plugin(plugin)
        self.groupchat: asyncio.Queue = asyncio.Queue()
        self.add_event_handler("groupchat_message", self.groupchat.put_nowait)
        self.failed: asyncio.Future = asyncio.get_event_loop().create_future()
        self.add_event_handler("failed_auth", lambda _: self.failed.done() or self.failed.set_result("failed_auth"))
        self.stream_errors: list = []
        self.add_event_handler("stream_error", self.stream_errors.append)

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
        with contextlib.suppress(Exception):
            self.disconnect()
            await asyncio.wait_for(self.disconnected, 5)


async def next_groupchat(client: Client, timeout: float = 5):
    return await asyncio.wait_for(client.groupchat.get(), timeout)
