"""The TC's typed requests and answers on the bus's wire: each one goes out as JSON and comes
back the same; what is not a request is refused with a sentence saying why."""

from __future__ import annotations

import json

import pytest

from messaging.chat.errors import ChatError
from messaging.tc import requests


@pytest.mark.parametrize(
    "request_",
    [
        requests.CreateRoom(room="ops@c", user="andy@x", members_only=True, members=("bob@x",)),
        requests.Join(room="ops@c", user="andy@x", nick="Andy", router="imp-1a", history=5),
        requests.Resync(room="ops@c", occupants=(("andy@x", "Andy"),), router="imp-1a"),
        requests.Post(room="ops@c", user="andy@x", body="hi", cid="c1", joined=True),
        requests.Archive(room="ops@c", user="andy@x", after_id="1-abc", last=True),
        requests.Configure(room="ops@c", user="andy@x", changes={"max_occupants": "20"}),
        requests.SetAffiliations(room="ops@c", user="andy@x", items=({"user": "bob@x", "affiliation": "member"},)),
        requests.ListRooms(home="imp-1a", user="andy@x"),
    ],
)
def test_every_request_travels_the_bus_and_arrives_the_same(request_):
    wire = json.loads(json.dumps({**request_.to_wire(), "rid": "r1", "reply_to": "imp-chat:reply:x"}))
    assert requests.request_from_wire(wire) == request_


def test_an_answer_travels_back_and_a_refusal_is_raised_as_it_was():
    request = requests.Presence(room="ops@c", user="andy@x")
    answer = requests.Occupants(room="ops@c", occupants=({"user": "andy@x", "nick": "Andy"},))
    assert requests.answer_from_wire(request, json.loads(json.dumps(answer.to_wire()))) == answer
    refusal = requests.error_to_wire(ChatError("members-only", "ops@c is for members only."))
    with pytest.raises(ChatError) as raised:
        requests.answer_from_wire(request, refusal)
    assert (raised.value.code, raised.value.message) == ("members-only", "ops@c is for members only.")


@pytest.mark.parametrize(
    ("wire", "message"),
    [
        ({"op": "shout", "room": "ops@c"}, "Unknown request 'shout'."),
        ({"op": "leave", "room": "ops@c", "user": "a@x", "force": True}, "Leave has no field force."),
        ({"op": "leave", "room": "ops@c"}, "Leave: Leave.__init__() missing 1 required positional argument: 'user'"),
    ],
)
def test_what_is_not_a_request_is_refused_with_the_reason(wire, message):
    with pytest.raises(ChatError) as refused:
        requests.request_from_wire(wire)
    assert (refused.value.code, refused.value.message) == ("bad-request", message)
