"""The wire protocol: bad input gets a clear error, sign-in sends users to their node."""

from __future__ import annotations

import json

import pytest
from websockets.asyncio.client import connect

from messaging.chat import protocol
from tests.chat.conftest import next_event, run, running, signed_in
from tests.conftest import chat_password, wait_for_async


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        ("not json", 'A frame must be one JSON object, such as {"type": "ping"}.'),
        ("[1, 2]", 'A frame must be a JSON object with a "type" field.'),
        (
            '{"type": "shout"}',
            "Unknown message type 'shout'; expected one of: sign_in, create, join, leave, post, "
            "history, presence, rooms, ping.",
        ),
        ('{"type": "post", "room": "ops", "body": "hi"}', 'A post message needs the field "cid".'),
        ('{"type": "post", "room": "ops", "body": "  ", "cid": "1"}', "A post needs a body that is not blank."),
        ('{"type": "join", "room": "ops", "since": true}', 'The field "since" of a join message must be an integer.'),
        ('{"type": "join", "room": "ops", "colour": "red"}', "A join message has no field colour."),
        ('{"type": "history", "room": "ops", "limit": -1}', 'The field "limit" must be 0 or more.'),
        ("[" * 100_000 + "]" * 100_000, "A frame may not nest lists or objects that deeply."),
        (
            '{"type": "ping", "x": ' + '{"a": ' * 20_000 + "1" + "}" * 20_000 + "}",
            "A frame may not nest lists or objects that deeply.",
        ),
        (
            '{"type": "join", "room": "ops", "since": 1' + "0" * 30 + "}",
            'The field "since" must be at most 9223372036854775807.',
        ),
        (
            '{"type": "join", "room": "ops", "since": 1' + "0" * 5000 + "}",
            'A frame must be one JSON object, such as {"type": "ping"}.',
        ),
        ('{"type": "join", "room": "ops", "since": NaN}', 'The field "since" of a join message must be an integer.'),
        (
            '{"type": "create", "room": "ops", "members": [["andy"]]}',
            'The field "members" must be a list of user IDs or JIDs.',
        ),
        (
            '{"type": "sign_in", "user": "andy", "password": "x", "id": {"a": 1}}',
            'The field "id" must be a string or an integer.',
        ),
        ('{"type": "sign_in", "user": "andy"}', 'A sign_in message needs the field "password".'),
        (
            '{"type": "sign_in", "user": "andy", "password": 7}',
            'The field "password" of a sign_in message must be a string.',
        ),
        (b"\xff\xfe", "A frame must be UTF-8 JSON text."),
    ],
)
def test_a_malformed_frame_is_refused_with_a_sentence_saying_what_is_wrong(frame, message):
    with pytest.raises(protocol.ProtocolError) as caught:
        protocol.decode(frame)
    assert caught.value.code == protocol.ErrorCode.BAD_REQUEST
    assert caught.value.message == message


def test_a_sign_in_command_never_shows_its_password_in_a_log_line():
    command = protocol.decode('{"type": "sign_in", "user": "andy", "password": "Andy-s3cret"}')
    assert command.password == "Andy-s3cret"
    assert "Andy-s3cret" not in repr(command) and "Andy-s3cret" not in str(command)


def test_a_well_formed_post_decodes_into_a_post_command():
    command = protocol.decode('{"type": "post", "id": 7, "room": "ops", "body": "hi", "cid": "c1"}')
    assert command == protocol.Post(id="7", room="ops", body="hi", cid="c1")


def test_the_server_answers_bad_input_with_an_error_and_keeps_the_connection(world):
    world.user("andy", "imp-1a")
    node = world.nodes["imp-1a"]

    async def scenario():
        async with running(node), connect(f"ws://{node.agent_host}:{node.agent_port}") as ws:
            replies = []
            for frame in (
                "{oops",
                "[" * 100_000 + "]" * 100_000,
                {"type": "post", "id": "p1", "room": "ops", "body": "hi", "cid": "1"},
                {"type": "sign_in", "id": "s1", "user": "andy"},
                {"type": "sign_in", "id": "s2", "user": "andy", "password": chat_password("andy")},
                {"type": "post", "id": "p2", "room": "ops", "body": "hi", "cid": "1"},
                {"type": "join", "id": "j1", "room": "nosuchroom@nowhere.example.com"},
            ):
                await ws.send(frame if isinstance(frame, str) else json.dumps(frame))
                replies.append(json.loads(await ws.recv()))
            return replies

    replies = run(scenario())
    assert [(r["type"], r.get("code")) for r in replies] == [
        ("error", "bad-request"),
        ("error", "bad-request"),
        ("error", "not-signed-in"),
        ("error", "bad-request"),
        ("signed_in", None),
        ("error", "not-in-room"),
        ("error", "room-not-found"),
    ]
    assert replies[1]["message"] == "A frame may not nest lists or objects that deeply."
    assert replies[3]["message"] == 'A sign_in message needs the field "password".'
    assert replies[4]["node"] == "imp-1a" and replies[4]["backup"]["node"] == "imp-1b"


def test_a_user_signing_in_on_another_node_is_told_to_reconnect_to_their_node(world):
    world.user("bob", "imp-1b")
    node, home = world.nodes["imp-1a"], world.nodes["imp-1b"]

    async def scenario():
        async with running(node), connect(f"ws://{node.agent_host}:{node.agent_port}") as ws:
            await ws.send(json.dumps({"type": "sign_in", "id": "1", "user": "bob", "password": chat_password("bob")}))
            return json.loads(await ws.recv())

    notice = run(scenario())
    assert notice == {
        "type": "reconnect",
        "node": "imp-1b",
        "host": home.agent_host,
        "port": home.agent_port,
        "reason": "bob is served by imp-1b.",
        "delay_min": 1,
        "delay_max": 1,
    }


def test_signing_in_again_elsewhere_signs_the_first_connection_out_and_it_does_not_fight_back(world):
    world.user("andy", "imp-1a")
    node = world.nodes["imp-1a"]

    async def scenario():
        async with running(node), signed_in(node, "andy") as (first,), signed_in(node, "andy") as (second,):
            notice = await next_event(first, "signed_out")
            # A client reconnects only when its connection closes; once the router has closed
            # the first one, it either started a reconnect then or never will.
            await wait_for_async(lambda: first._reader.done(), 10, "the router to close the first connection")
            reconnected = first.reconnects + (first._reconnecting is not None)
            # The second session is still the signed-in one: it can list rooms.
            rooms = await second.request("rooms")
            return notice, reconnected, rooms

    notice, reconnected, rooms = run(scenario())
    assert notice["reason"] == "You signed in again on another connection."
    assert reconnected == 0
    assert rooms.get("type") == "rooms"
