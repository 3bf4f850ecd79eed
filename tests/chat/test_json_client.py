"""The JSON chat client (``messaging.chat.client``) against a scripted server: what it does when
a node refuses its sign-in. Its behaviour through real failovers is in test_load_generator.py
and the partition suite."""

from __future__ import annotations

import asyncio
import json

import pytest
from websockets.asyncio.server import serve

from messaging.chat.client import ChatClient, ChatClientError
from tests.chat.conftest import run


async def scripted_node(answers: list[dict]):
    """A node answering successive sign-ins with ``answers`` (the last one repeated)."""
    sign_ins: list[dict] = []

    async def handler(ws):
        async for frame in ws:
            request = json.loads(frame)
            sign_ins.append(request)
            answer = answers[min(len(sign_ins), len(answers)) - 1]
            await ws.send(json.dumps({**answer, "re": request["id"]}))

    server = await serve(handler, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1], sign_ins


SIGNED_IN = {"type": "signed_in", "node": "imp-1b", "jid": "andy@example.com", "home": "imp-1a"}


def test_a_sign_in_refused_with_a_retryable_error_is_tried_again_until_a_node_accepts():
    async def scenario():
        busy = {"type": "error", "code": "internal-error", "message": "The request failed.", "retry": True}
        server, port, sign_ins = await scripted_node([busy, busy, SIGNED_IN])
        async with server:
            client = ChatClient("andy", "127.0.0.1", port, password="andy-password", give_up_after=20)
            await asyncio.wait_for(client.connect(), 20)
            await client.close()
        return client, sign_ins

    client, sign_ins = run(scenario())
    assert client.node == "imp-1b" and len(sign_ins) == 3


def test_a_sign_in_refused_for_good_ends_the_attempt_with_the_servers_reason():
    async def scenario():
        refused = {"type": "error", "code": "not-authorized", "message": "Wrong user ID or password.", "retry": False}
        server, port, sign_ins = await scripted_node([refused])
        async with server:
            client = ChatClient("andy", "127.0.0.1", port, password="wrong", give_up_after=20)
            with pytest.raises(ChatClientError) as refusal:
                await asyncio.wait_for(client.connect(), 20)
            await client.close()
        return refusal.value, sign_ins

    refusal, sign_ins = run(scenario())
    assert refusal.code == "not-authorized" and refusal.message == "Wrong user ID or password."
    assert len(sign_ins) == 1
