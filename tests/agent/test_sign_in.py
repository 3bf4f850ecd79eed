"""A real node agent's chat port (``manage.py run_node``) signs in nobody without the password:
no password, a wrong one and the right one, and the throttle shared through Redis."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from messaging.chat.client import ChatClient, ChatClientError
from tests.conftest import chat_password, wait_for
from topology.catalog import ServiceName
from topology.models import EndUser, Service

pytestmark = pytest.mark.slow


@pytest.fixture
def own_throttle(monkeypatch, settings):
    """The agent and the test share a Redis key prefix of this test's own, and small limits."""
    prefix = f"imp-chat-test-{uuid.uuid4().hex[:10]}"
    for name, value in (("CHAT_BUS_PREFIX", prefix), ("SIGN_IN_FAILURES_PER_USER", "3")):
        monkeypatch.setenv(name, value)
        setattr(settings, name, value if name == "CHAT_BUS_PREFIX" else int(value))


async def exchange(node, *frames: dict) -> list[dict]:
    """Send frames on one connection; the replies, then {"closed": True} if the node hung up."""
    replies = []
    async with connect(f"ws://{node.agent_host}:{node.agent_port}") as ws:
        try:
            for frame in frames:
                await ws.send(json.dumps(frame))
                replies.append(json.loads(await asyncio.wait_for(ws.recv(), 10)))
            await asyncio.wait_for(ws.recv(), 2)
        except ConnectionClosed:
            replies.append({"closed": True})
        except TimeoutError:
            pass  # still open
    return replies


def test_a_node_agent_signs_in_only_with_the_right_password(pair, agents, own_throttle):
    a = pair["a"]
    agents(a.name)
    wait_for(lambda: Service.objects.get(node=a, name=ServiceName.XCP_ROUTER).running, 30, "A's router started")

    async def scenario():
        no_password = await exchange(a, {"type": "sign_in", "id": "1", "user": "andy"}, {"type": "rooms", "id": "2"})
        wrong = await exchange(a, {"type": "sign_in", "id": "1", "user": "andy", "password": "guess-guess"})
        unknown = await exchange(a, {"type": "sign_in", "id": "1", "user": "nobody", "password": "guess-guess"})
        right = await exchange(
            a,
            {"type": "sign_in", "id": "1", "user": "andy", "password": chat_password("andy")},
            {"type": "rooms", "id": "2"},
        )
        return no_password, wrong, unknown, right

    no_password, wrong, unknown, right = asyncio.run(scenario())
    # No password: a malformed request; the connection stays, and nothing is served.
    assert no_password[0]["code"] == "bad-request"
    assert no_password[0]["message"] == 'A sign_in message needs the field "password".'
    assert no_password[1]["code"] == "not-signed-in"
    # Wrong password or unknown user: the same refusal, and the node hangs up.
    for refused in (wrong, unknown):
        assert refused[0] == {
            "type": "error",
            "re": "1",
            "code": "not-authorized",
            "message": "Wrong user ID or password.",
            "retry": False,
        }
        assert refused[1] == {"closed": True}
    assert right[0]["type"] == "signed_in" and right[0]["jid"] == "andy@example.com"
    assert right[1]["type"] == "rooms"
    andy = EndUser.objects.get(user_id="andy")
    assert andy.failed_sign_ins == 1 and andy.last_failed_sign_in_source == "127.0.0.1"
    assert andy.last_sign_in_at is not None


def test_a_node_agent_throttles_repeated_wrong_passwords_and_the_client_says_why(pair, agents, own_throttle):
    a = pair["a"]
    agents(a.name)
    wait_for(lambda: Service.objects.get(node=a, name=ServiceName.XCP_ROUTER).running, 30, "A's router started")

    async def attempt(password: str) -> str:
        client = ChatClient("andy", a.agent_host, a.agent_port, password=password, give_up_after=10)
        try:
            await client.connect()
            return "signed in"
        except ChatClientError as exc:
            return f"{exc.code}: {exc.message}"
        finally:
            await client.close()

    async def scenario():
        return [await attempt("wrong-password") for _ in range(3)] + [await attempt(chat_password("andy"))]

    outcomes = asyncio.run(scenario())
    assert outcomes[:3] == ["not-authorized: Wrong user ID or password."] * 3
    assert outcomes[3].startswith("throttled: Too many failed sign-ins for andy; try again in ")
    andy = EndUser.objects.get(user_id="andy")
    assert andy.failed_sign_ins == 3
