"""RFC 7395 XMPP over WebSocket on the chat port (subprotocol ``xmpp``), as converse.js speaks
it: framed ``<open/>``, SASL SCRAM-SHA-256 (scramp's client), resource binding, a room join and a
groupchat message reflected with its stanza-id; hostile XML ends only that connection."""

from __future__ import annotations

import base64
import re

from scramp import ScramClient
from websockets.asyncio.client import connect

from tests.chat.conftest import run, running
from tests.chat.xmpp import add_user, password_of

FRAMING = "urn:ietf:params:xml:ns:xmpp-framing"
SASL = "urn:ietf:params:xml:ns:xmpp-sasl"


async def exchange(ws, frame: str, until: str) -> str:
    await ws.send(frame)
    received = ""
    while until not in received:
        received += await ws.recv() + "\n"
    return received


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_xmpp_over_websocket_signs_in_with_scram_joins_and_posts(xworld):
    add_user(xworld, "andy", "imp-1a")
    node = xworld.nodes["imp-1a"]
    room = f"web@conference-{node.pk}-imp1.example.com"
    opening = f"<open xmlns='{FRAMING}' to='example.com' version='1.0'/>"

    async def scenario():
        async with running(node):
            async with connect(f"ws://127.0.0.1:{node.agent_port}/", subprotocols=["xmpp"]) as ws:
                features = await exchange(ws, opening, "</stream:features>")
                scram = ScramClient(["SCRAM-SHA-256"], "andy", password_of("andy"))
                challenge = await exchange(
                    ws,
                    f"<auth xmlns='{SASL}' mechanism='SCRAM-SHA-256'>{b64(scram.get_client_first())}</auth>",
                    "challenge>",
                )
                assert "<challenge" in challenge, challenge
                scram.set_server_first(base64.b64decode(re.search(r">([^<]+)</challenge>", challenge)[1]).decode())
                success = await exchange(
                    ws, f"<response xmlns='{SASL}'>{b64(scram.get_client_final())}</response>", "success"
                )
                scram.set_server_final(base64.b64decode(re.search(r">([^<]+)</success>", success)[1]).decode())
                await exchange(ws, opening, "</stream:features>")
                bound = await exchange(
                    ws,
                    "<iq xmlns='jabber:client' type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
                    "<resource>web</resource></bind></iq>",
                    "</iq>",
                )
                joined = await exchange(
                    ws,
                    f"<presence xmlns='jabber:client' to='{room}/andy'><x xmlns='http://jabber.org/protocol/muc'/></presence>",
                    "<subject",
                )
                reflected = await exchange(
                    ws,
                    f"<message xmlns='jabber:client' to='{room}' type='groupchat' id='m1'>"
                    "<body>from a browser</body></message>",
                    "from a browser",
                )
                closed = await exchange(ws, "<message><body>&bomb;</body></message>", "close")
            return features, bound, joined, reflected, closed

    features, bound, joined, reflected, closed = run(scenario())
    assert "SCRAM-SHA-256" in features and "starttls" not in features
    assert "<jid>andy@example.com/web</jid>" in bound
    assert 'code="110"' in joined and 'code="201"' in joined
    assert f'by="{room}"' in reflected and 'xmlns="jabber:client"' in reflected
    assert "not-well-formed" in closed
