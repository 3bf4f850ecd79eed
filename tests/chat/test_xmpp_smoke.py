import asyncio

from tests.chat.conftest import run, running
from tests.chat.xmpp import Client, add_user, next_groupchat, xworld  # noqa: F401


def test_sign_in_join_post_mam(xworld):
    add_user(xworld, "andy", "imp-1a")
    add_user(xworld, "bob", "imp-1a")

    async def scenario():
        async with running(xworld.nodes["imp-1a"], xworld.nodes["imp-1b"]):
            port = xworld.nodes["imp-1a"].xmpp_port
            andy, bob = Client("andy@example.com"), Client("bob@example.com")
            await andy.start(port)
            await bob.start(port)
            room = "ha-demo@conference-1-imp1.example.com"
            print(await andy["xep_0030"].get_items(jid="example.com"))
            await andy["xep_0045"].join_muc_wait(room, "Andy", maxstanzas=5)
            await bob["xep_0045"].join_muc_wait(room, "Bob", maxstanzas=5)
            andy.send_message(mto=room, mbody="hello", mtype="groupchat")
            got = await next_groupchat(andy)
            print(got)
            got = await next_groupchat(bob)
            print(got)
            await andy.stop(); await bob.stop()

    run(scenario())
