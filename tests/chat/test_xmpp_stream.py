"""Hardened XML on the XMPP client port: an entity bomb, an oversize stanza, deep nesting and
malformed XML each get their RFC 6120 stream error and close only that stream; the node keeps
serving the other clients. Raw sockets, as a hostile client would send them."""

from __future__ import annotations

import asyncio

import pytest

from messaging.router.xmlstream import MAX_DEPTH, MAX_STANZA_BYTES, StreamError, StreamParser
from tests.chat.conftest import run, running, signed_in

HEADER = (
    b"<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
    b"xmlns:stream='http://etherx.jabber.org/streams' to='example.com' version='1.0'>"
)
BOMB = (
    b"<?xml version='1.0'?><!DOCTYPE lolz [<!ENTITY lol 'lol'>"
    + b"".join(
        f"<!ENTITY lol{i} '{('&lol' + str(i - 1) + ';') * 10 if i > 1 else '&lol;' * 10}'>".encode()
        for i in range(1, 10)
    )
    + b"]><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='example.com'>"
    + b"<message><body>&lol9;</body></message>"
)


async def converse(port: int, *chunks: bytes, timeout: float = 10) -> str:
    """Send the chunks and read until the server closes the connection."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    received = b""
    try:
        for chunk in chunks:
            writer.write(chunk)
            await writer.drain()
        async with asyncio.timeout(timeout):
            while data := await reader.read(65536):
                received += data
    except ConnectionResetError:
        pass
    finally:
        writer.close()
    return received.decode(errors="replace").replace('"', "'")


async def features(port: int) -> str:
    """A well-behaved client's first exchange: the stream header and its features."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(HEADER)
        await writer.drain()
        received = b""
        async with asyncio.timeout(10):
            while b"</stream:features>" not in received:
                received += await reader.read(4096)
        return received.decode().replace('"', "'")
    finally:
        writer.close()


HOSTILE = {
    "entity bomb": ((BOMB,), "restricted-xml"),
    "oversize stanza": (
        (HEADER, b"<message><body>" + b"x" * (MAX_STANZA_BYTES + 10) + b"</body></message>"),
        "policy-violation",
    ),
    "endless stanza": ((HEADER, b"<message to='" + b"x" * (MAX_STANZA_BYTES + 10)), "policy-violation"),
    "deep nesting": ((HEADER, b"<message>" + b"<a>" * (MAX_DEPTH + 5)), "policy-violation"),
    "malformed": ((HEADER, b"<message><body>hi</message>"), "not-well-formed"),
    "comment": ((HEADER, b"<!-- nope -->"), "restricted-xml"),
    "undefined entity": ((HEADER, b"<message><body>&xxe;</body></message>"), "not-well-formed"),
    "wrong root": ((b"<html><body/></html>",), "invalid-namespace"),
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_hostile_xml_ends_only_that_stream(xworld, case):
    chunks, condition = HOSTILE[case]
    node = xworld.nodes["imp-1a"]
    xworld.user("andy", "imp-1a")

    async def scenario():
        async with running(node), signed_in(node, "andy") as (andy,):
            answer = await converse(node.xmpp_port, *chunks)
            assert f"<{condition} xmlns='urn:ietf:params:xml:ns:xmpp-streams'" in answer
            assert answer.endswith("</stream:stream>")
            # Everyone else is still served: a new XMPP stream, and a JSON client.
            assert "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required" in await features(node.xmpp_port)
            assert (await andy.request("ping"))["type"] == "pong"

    run(scenario())


def test_sasl_before_tls_is_refused(xworld):
    """STARTTLS is required: PLAIN (or any mechanism) before TLS gets encryption-required."""
    node = xworld.nodes["imp-1a"]

    async def scenario():
        async with running(node):
            answer = await converse(
                node.xmpp_port,
                HEADER,
                b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGFuZHkAc2VjcmV0</auth>",
            )
            assert "<encryption-required/>" in answer
            assert "<mechanisms" not in answer  # nothing offered before TLS
            assert answer.endswith("</stream:stream>")

    run(scenario())


def test_parser_reads_stanzas_split_anywhere():
    parser = StreamParser()
    stream = HEADER + b"<message to='r@c'><body>a &amp; b</body></message>  <iq type='get' id='1'/></stream:stream>"
    events = []
    for index in range(0, len(stream), 7):
        events += parser.feed(stream[index : index + 7])
    kinds = [kind for kind, _ in events]
    assert kinds == ["open", "stanza", "stanza", "close"]
    assert events[1][1].findtext("{jabber:client}body") == "a & b"


def test_parser_refuses_an_entity_bomb_without_expanding_it():
    with pytest.raises(StreamError) as refused:
        StreamParser().feed(BOMB)
    assert refused.value.condition == "restricted-xml"
