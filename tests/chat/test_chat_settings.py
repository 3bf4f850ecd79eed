"""Each chat setting the Text Conference Manager enforces (reference 4.1, 4.2), as users see it."""

from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import sync_to_async

from messaging.chat.client import ChatClientError
from messaging.models import GroupChatAdministrator
from tests.chat.conftest import run, running, signed_in


def test_a_room_beyond_the_maximum_number_of_rooms_is_refused(world):
    world.user("andy", "imp-1a")
    world.configure(max_rooms=2, max_persistent_rooms=2)

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
        "not-acceptable",
        "A room holds at most 5 users at one time; choose a maximum occupancy of 1–5.",
    )


def test_a_setting_owners_may_not_change_is_refused_unless_it_is_the_default(world):
    world.user("andy", "imp-1a")
    world.configure(owners_change_members_only=False, owners_change_max_occupancy=False, default_max_occupancy=40)

    async def scenario():
        async with running(world.nodes["imp-1a"]), signed_in(world.nodes["imp-1a"], "andy") as (andy,):
            refused = []
            for options in ({"members_only": True}, {"max_occupants": 41}):
                with pytest.raises(ChatClientError) as caught:
                    await andy.create("locked", **options)
                refused.append((caught.value.code, caught.value.message))
            return refused, await andy.create("as-default", members_only=False, max_occupants=40)

    refused, created = run(scenario())
    assert refused == [
        ("not-allowed", "Room owners may not change whether the room is members-only here."),
        ("not-allowed", "Room owners may not change the maximum occupancy of a room here."),
    ]
    assert created["members_only"] is False


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


def administrators(world, *addresses: str, cluster: str = "cluster1", enabled: bool = True) -> None:
    """List group chat system administrators of a cluster, as the console's page does."""
    chat = world.settings[cluster]
    for address in addresses:
        GroupChatAdministrator.objects.create(cluster=chat.cluster, im_address=address)
    world.configure(cluster, enable_system_administrators=enabled)


def test_only_listed_group_chat_system_administrators_may_create_persistent_rooms_when_the_setting_is_on(world):
    world.user("andy", "imp-1a")
    world.user("bob", "imp-1a")
    world.user("erin", "imp-c2a")
    world.configure(only_admins_create_persistent=True)
    administrators(world, "Andy@Example.com")
    administrators(world, "bob@example.com", cluster="cluster2")  # an administrator of the other cluster only

    async def scenario():
        node = world.nodes["imp-1a"]
        async with running(node, world.nodes["imp-c2a"]), signed_in(node, "andy", "bob") as (andy, bob):
            created = await andy.create("announcements")
            with pytest.raises(ChatClientError) as caught:
                await bob.create("bobs-room")
            adhoc = await bob.create("bobs-adhoc", persistent=False)
            return created, caught.value, adhoc

    created, error, adhoc = run(scenario())
    assert created["persistent"] is True
    assert (error.code, error.message, error.retry) == (
        "forbidden",
        "Only group chat system administrators may create persistent chat rooms here; bob@example.com is not one.",
        False,
    )
    assert adhoc["persistent"] is False


def test_nobody_may_create_persistent_rooms_when_only_administrators_may_and_administrators_are_not_enabled(world):
    world.user("andy", "imp-1a")
    world.configure(only_admins_create_persistent=True)
    administrators(world, "andy@example.com", enabled=False)

    async def scenario():
        async with running(world.nodes["imp-1a"]), signed_in(world.nodes["imp-1a"], "andy") as (andy,):
            with pytest.raises(ChatClientError) as caught:
                await andy.create("persistent-room")
            adhoc = await andy.create("adhoc-room", persistent=False)
            return caught.value, adhoc

    error, adhoc = run(scenario())
    assert error.code == "forbidden"
    assert error.message == (
        "Only group chat system administrators may create persistent chat rooms here, and group chat system "
        "administrators are not enabled on this cluster."
    )
    assert adhoc["persistent"] is False


def test_listed_administrators_are_not_needed_while_anyone_may_create_persistent_rooms(world):
    world.user("bob", "imp-1a")
    administrators(world, "andy@example.com")

    async def scenario():
        async with running(world.nodes["imp-1a"]), signed_in(world.nodes["imp-1a"], "bob") as (bob,):
            return await bob.create("open-room")

    assert run(scenario())["persistent"] is True


def test_an_administrator_added_while_the_service_runs_may_create_persistent_rooms_without_a_restart(world):
    world.user("andy", "imp-1a")
    world.configure(only_admins_create_persistent=True, enable_system_administrators=True)

    async def scenario():
        async with running(world.nodes["imp-1a"]), signed_in(world.nodes["imp-1a"], "andy") as (andy,):
            with pytest.raises(ChatClientError) as caught:
                await andy.create("first-try")
            await sync_to_async(GroupChatAdministrator.objects.create, thread_sensitive=False)(
                cluster=world.settings["cluster1"].cluster, im_address="andy@example.com"
            )
            async with asyncio.timeout(10):  # the directory re-reads the list every second
                while True:
                    try:
                        return caught.value, await andy.create("second-try")
                    except ChatClientError as exc:
                        assert exc.code == "forbidden"
                        await asyncio.sleep(0.2)

    refused, created = run(scenario())
    assert refused.message.endswith("andy@example.com is not one.")
    assert created["persistent"] is True


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
