"""The reference's failover and fallback use cases replayed with standard XMPP clients (slixmpp):
Andy and 1A's other users are moved to 1B by the failover and back by the Fallback; Bob and
Catherine stay on 1B; Deborah and others come from cluster 2 (intercluster). Fifty users in all
post in one room hosted by 1A's home node. Each follows ``see-other-host`` to the node now
serving them, rejoins and catches up from the archive after the last stanza-id it saw.

Every reflected message is in the archive exactly once, in its sender's order; every client
ends with the whole archive; each user's longest gap (post to reflection) is reported."""

from __future__ import annotations

import asyncio
import contextlib

from asgiref.sync import sync_to_async

from tests.chat.conftest import run, running
from tests.chat.test_routing import move_rooms_and_users
from tests.chat.xmpp import Chatter, add_user, assert_each_message_once_in_sender_order, whole_archive

NAMED = {"andy": "imp-1a", "bob": "imp-1b", "catherine": "imp-1b", "deborah": "imp-c2a"}
OTHERS = 46  # users 01..46, spread over the three nodes


def users() -> dict[str, str]:
    everyone = dict(NAMED)
    nodes = ("imp-1a", "imp-1b", "imp-c2a")
    for n in range(1, OTHERS + 1):
        everyone[f"user{n:02d}"] = nodes[n % 3]
    return everyone


async def reflections_after(chatters: list[Chatter], count: int, timeout: float = 120) -> None:
    targets = {chatter: len(chatter.reflected) + count for chatter in chatters}
    async with asyncio.timeout(timeout):
        while any(len(chatter.reflected) < target for chatter, target in targets.items()):
            await asyncio.sleep(0.1)


def test_failover_then_fallback_with_fifty_xmpp_users(xworld, record_property):
    everyone = users()
    for user, node in everyone.items():
        add_user(xworld, user, node)
    nodes = xworld.nodes
    room = f"ha-demo@conference-{nodes['imp-1a'].pk}-imp1.example.com"

    async def scenario():
        async with running(nodes["imp-1a"], nodes["imp-1b"], nodes["imp-c2a"]) as (node_1a, node_1b, _):
            chatters = [Chatter(user, nodes[node].xmpp_port, room) for user, node in everyone.items()]
            for chatter in chatters:
                await chatter.start()
            stop = asyncio.Event()
            posting = [
                asyncio.create_task(chatter.keep_posting(stop, 0.2 if chatter.user_id in NAMED else 2.0))
                for chatter in chatters
            ]
            named = [c for c in chatters if c.user_id in NAMED]
            andy = named[0]
            await reflections_after(named, 3)
            # Failover: the TC of 1A fails; the SRM moves 1A's rooms and users to 1B.
            await node_1a.tc.stop()
            await sync_to_async(move_rooms_and_users, thread_sensitive=False)("imp-1a", "imp-1b")
            await node_1b.tc.refresh_hosting()
            async with asyncio.timeout(60):
                while andy.sessions < 2:
                    await asyncio.sleep(0.1)
            await reflections_after(chatters, 1)
            # Fallback: TC on 1A again, the rooms and users go home.
            await node_1a.tc.start()
            await sync_to_async(move_rooms_and_users, thread_sensitive=False)("imp-1a", None)
            await node_1b.tc.refresh_hosting()
            await node_1a.tc.refresh_hosting()
            async with asyncio.timeout(60):
                while andy.sessions < 3:
                    await asyncio.sleep(0.1)
            await reflections_after(chatters, 1)
            stop.set()
            await asyncio.gather(*posting)
            archive = await whole_archive(named[1].client, room)
            with contextlib.suppress(TimeoutError):  # the last live messages reach everyone
                async with asyncio.timeout(20):
                    while any(len(c.seen) < len(archive) for c in chatters):
                        await asyncio.sleep(0.1)
            for chatter in chatters:
                await chatter.client.stop()
            return archive, chatters

    archive, chatters = run(scenario())
    gaps = {chatter.user_id: round(chatter.longest_gap, 2) for chatter in chatters}
    record_property("longest_gap_seconds", gaps)
    print("longest gap per user (s):", gaps)
    assert_each_message_once_in_sender_order(archive, chatters)
    moved = [c for c in chatters if everyone[c.user_id] == "imp-1a"]
    assert all(c.sessions == 3 for c in moved)  # 1A → 1B (see-other-host) → 1A (see-other-host)
    assert all(c.sessions == 1 for c in chatters if everyone[c.user_id] != "imp-1a")
    senders = {body.split()[0] for _, body in archive}
    assert {"andy", "bob", "catherine", "deborah"} <= senders
