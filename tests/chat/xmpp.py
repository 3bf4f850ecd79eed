"""Fixtures for the XMPP suites: in-process nodes (tests/chat/conftest.py) with an XMPP client
port each, end users with passwords, and slixmpp clients (a client nobody here wrote)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl

import pytest
import slixmpp

from tests.chat.conftest import ChatWorld
from tests.scenario import free_port
from topology import credentials


def password_of(user_id: str) -> str:
    """The chat password the suites give an end user (test data)."""
    return f"{user_id}-chat-password"


logging.getLogger("slixmpp").setLevel(logging.ERROR)


def _self_signed_context(node) -> ssl.SSLContext:
    """TEMPORARY seam until ``topology.credentials.server_ssl_context`` lands: a throw-away
    self-signed certificate for the cluster's domain."""
    import datetime
    import tempfile
    from pathlib import Path

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "example.com")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("example.com")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    folder = Path(tempfile.mkdtemp())
    (folder / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "key.pem").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(folder / "cert.pem", folder / "key.pem")
    return context


@pytest.fixture
def xworld(world: ChatWorld, monkeypatch) -> ChatWorld:
    """The chat world with an XMPP client port on every node."""
    if not hasattr(credentials, "server_ssl_context"):
        monkeypatch.setattr(credentials, "server_ssl_context", _self_signed_context, raising=False)
    for node in world.nodes.values():
        node.xmpp_port = free_port()
        if hasattr(type(node), "xmpp_port"):
            node.save(update_fields=["xmpp_port"])
    return world


def add_user(world: ChatWorld, user_id: str, node: str):
    """An end user of ``node`` with the password ``password_of(user_id)``."""
    user = world.user(user_id, node)
    credentials.set_password(user, password_of(user_id))
    return user


def client_tls() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


class Client(slixmpp.ClientXMPP):
    """A slixmpp client with the plugins a group chat user needs."""

    def __init__(self, jid: str, password: str | None = None, sasl_mech: str | None = None) -> None:
        super().__init__(jid, password or password_of(jid.partition("@")[0]), sasl_mech=sasl_mech)
        self.mechanism_used = None
        self.add_event_handler("auth_success", self._authenticated)
        self.ssl_context = client_tls()
        for plugin in ("xep_0030", "xep_0045", "xep_0059", "xep_0199", "xep_0313", "xep_0359", "xep_0077"):
            self.register_plugin(plugin)
        self.groupchat: asyncio.Queue = asyncio.Queue()
        self.add_event_handler("groupchat_message", self.groupchat.put_nowait)
        self.failed: asyncio.Future = asyncio.get_event_loop().create_future()
        self.add_event_handler("failed_auth", self._failed)
        self.stream_errors: list = []
        self.add_event_handler("stream_error", self.stream_errors.append)

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
        with contextlib.suppress(Exception):
            self.disconnect()
            await asyncio.wait_for(self.disconnected, 5)


async def next_groupchat(client: Client, timeout: float = 5):
    return await asyncio.wait_for(client.groupchat.get(), timeout)
