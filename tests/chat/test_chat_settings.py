"""Each chat setting the Text Conference Manager enforces (reference 4.1, 4.2), as users see it."""

from __future__ import annotations

import pytest

from messaging.chat.client import ChatClientError
from tests.chat.conftest import run, running, signed_in


def test_a_room_beyond_the_maximum_number_of_rooms_is_refused(world):
    world.user("andy", "imp-1a")
    world.configure(max_rooms=2)

    async def scenario():
        async with running(world.nodes["imp-1a"]), signed_in(world.nodes["imp-1a"], "andy") as (andy,):
            await andy.create("one")
            await andy.create("two", persistent=False)
            with pytest.raises(ChatClientError) as caught:
                await andy.create("three")
            return caught.value

    error = run(scenario())
    assert error.code == "room-limit"
    assert "already holds 2 rooms, the most allowed (2)" in error.message


def test_a_persistent_room_beyond_the_maximum_number_of_persistent_rooms_is_refused(world):
    world.user("andy", "imp-1a")
    world.configure(max_persistent_rooms=1)

    async def scenario():
        async with running(world.nodes["imp-1a"]), signed_in(world.nodes["imp-1a"], "andy") as (andy,):
            await andy.create("one")
            adhoc = await andy.create("adhoc", persistent=False)
            with pytest.raises(ChatClientError) as caught:
                await andy.create("two")
            return adhoc, caught.value

    adhoc, error = run(scenario())
    assert adhoc["persistent"] is False
    assert (error.code, "1 persistent chat rooms, the most allowed (1)" in error.message) == ("room-limit", True)


def test_a_room_at_its_default_occupancy_refuses_another_user(world):
    for name in ("andy", "bob", "carol"):
        world.user(name, "imp-1a")
    world.configure(default_max_occupancy=2)

    async def scenario():
        node = world.nodes["imp-1a"]
        async with running(node), signed_in(node, "andy", "bob", "carol") as (andy, bob, carol):
            room = (await andy.create("small"))["room"]
            await andy.join(room)
            await bob.join(room)
            with pytest.raises(ChatClientError) as caught:
                await carol.join(room)
            return caught.value

    error = run(scenario())
    assert error.code == "room-full"
    assert "holds at most 2 users at one time" in error.message


def test_a_room_never_holds_more_users_than_a_room_can_hold_at_one_time(world):
    world.user("andy", "imp-1a")
    world.configure(max_users_per_room=5, default_max_occupancy=5)

    async def scenario():
        async with running(world.nodes["imp-1a"]), signed_in(world.nodes["imp-1a"], "andy") as (andy,):
            with pytest.raises(ChatClientError) as caught:
                await andy.create("big", max_occupants=6)
            return caught.value

    error = run(scenario())
    assert (error.code, error.message) == (
        "bad-request",
        "A room holds at most 5 users at one time; choose a maximum occupancy of 1–5.",
    )


def test_join_returns_the_default_history_and_at_most_the_archive_maximum(world):
    world.user("andy", "imp-1a")
    world.user("bob", "imp-1a")
    world.configure(history_default=3, history_max=5)

    async def scenario():
        node = world.nodes["imp-1a"]
        async with running(node), signed_in(node, "andy", "bob") as (andy, bob):
            room = (await andy.create("ops"))["room"]
            await andy.join(room)
            for n in range(8):
                await andy.post(room, f"m{n}")
            default = await bob.join(room)
            await bob.leave(room)
            asked = await bob.join(room, history=50)
            page = await bob.history(room, before=4)
            return default, asked, page

    default, asked, page = run(scenario())
    assert [m["body"] for m in default["history"]] == ["m5", "m6", "m7"]
    assert [m["msg_id"] for m in asked["history"]] == [4, 5, 6, 7, 8]
    assert [m["body"] for m in page["messages"]] == ["m0", "m1", "m2"]


def test_a_members_only_room_refuses_a_user_who_is_not_a_member(world):
    for name in ("andy", "bob", "carol"):
        world.user(name, "imp-1a")

    async def scenario():
        node = world.nodes["imp-1a"]
        async with running(node), signed_in(node, "andy", "bob", "carol") as (andy, bob, carol):
            room = (await andy.create("private", members_only=True, members=["bob"]))["room"]
            joined = await bob.join(room)
            with pytest.raises(ChatClientError) as caught:
                await carol.join(room)
            return joined, caught.value

    joined, error = run(scenario())
    assert joined["members_only"] is True
    assert error.code == "members-only"
    assert "is for members only" in error.message


def test_rooms_are_members_only_by_default_when_the_setting_is_on(world):
    world.user("andy", "imp-1a")
    world.user("bob", "imp-1a")
    world.configure(members_only_default=True)

    async def scenario():
        node = world.nodes["imp-1a"]
        async with running(node), signed_in(node, "andy", "bob") as (andy, bob):
            created = await andy.create("team")
            with pytest.raises(ChatClientError) as caught:
                await bob.join(created["room"])
            return created, caught.value

    created, error = run(scenario())
    assert created["members_only"] is True and error.code == "members-only"


def test_only_group_chat_administrators_may_create_persistent_rooms_when_the_setting_is_on(world):
    world.user("andy", "imp-1a")
    world.configure(only_admins_create_persistent=True)

    async def scenario():
        async with running(world.nodes["imp-1a"]), signed_in(world.nodes["imp-1a"], "andy") as (andy,):
            with pytest.raises(ChatClientError) as caught:
                await andy.create("persistent-room")
            adhoc = await andy.create("adhoc-room", persistent=False)
            return caught.value, adhoc

    error, adhoc = run(scenario())
    assert error.code == "forbidden"
    assert error.message == "Only group chat system administrators may create persistent chat rooms here."
    assert adhoc["persistent"] is False


def test_without_persistent_chat_only_ad_hoc_rooms_exist_and_nothing_is_stored(world):
    node = world.nodes["imp-c2a"]  # cluster2: persistent chat off, no database
    world.user("erin", "imp-c2a")
    world.user("frank", "imp-c2a")

    async def scenario():
        async with running(node), signed_in(node, "erin", "frank") as (erin, frank):
            with pytest.raises(ChatClientError) as caught:
                await erin.create("kept")
            room = (await erin.create("quick", persistent=False))["room"]
            await erin.join(room)
            await frank.join(room)
            ack = await erin.post(room, "hi")
            return caught.value, ack

    error, ack = run(scenario())
    assert error.code == "persistent-chat-disabled"
    assert ack["msg_id"] == 1
