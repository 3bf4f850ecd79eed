"""``manage.py chat --xmpp``'s client (``messaging.chat.xmpp_client``) against a node: it signs in
with TLS and SCRAM, joins, posts until reflected, and a tail sees another user's messages."""

from __future__ import annotations

import asyncio

from messaging.chat import xmpp_client
from tests.chat.conftest import run, running
from tests.chat.xmpp import add_user, ca_file, password_of


def test_the_xmpp_command_line_client_posts_and_tails(xworld):
    add_user(xworld, "andy", "imp-1a")
    add_user(xworld, "bob", "imp-1a")
    node = xworld.nodes["imp-1a"]
    room = f"cli@conference-{node.pk}-imp1.example.com"
    tailed: list[str] = []

    async def scenario():
        async with running(node):
            common = {"ca_file": ca_file(), "timeout": 20}
            await xmpp_client.run(
                "andy@example.com",
                password_of("andy"),
                "127.0.0.1",
                node.xmpp_port,
                room,
                say=["first"],
                tail=False,
                count=None,
                **common,
            )
            tail = asyncio.create_task(
                xmpp_client.run(
                    "bob@example.com",
                    password_of("bob"),
                    "127.0.0.1",
                    node.xmpp_port,
                    room,
                    say=[],
                    tail=True,
                    count=2,
                    show=tailed.append,
                    **common,
                )
            )
            async with asyncio.timeout(20):
                while not tailed:
                    await asyncio.sleep(0.1)
            await xmpp_client.run(
                "andy@example.com",
                password_of("andy"),
                "127.0.0.1",
                node.xmpp_port,
                room,
                say=["second"],
                tail=False,
                count=None,
                **common,
            )
            await asyncio.wait_for(tail, 20)

    run(scenario())
    assert tailed == ["<andy> first", "<andy> second"]
