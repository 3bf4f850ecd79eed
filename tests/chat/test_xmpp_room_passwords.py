"""Password-protected rooms (XEP-0045 §7.2.6, §10.2 ``muc#roomconfig_passwordprotectedroom`` and
``muc#roomconfig_roomsecret``) with a standard client (slixmpp's xep_0045): the owner sets the
password in the owner form, it is stored in the room's configuration in the external database,
joins without it or with a wrong one get ``not-authorized`` on either node of the pair, only
owners ever see it, and the backup node asks for it after a failover. Real PostgreSQL and Redis,
in-process nodes."""

from __future__ import annotations

from messaging.chat.client import ChatClientError
from messaging.tc.rooms import room_secret_matches
from tests.chat.conftest import run, running, signed_in
from tests.chat.test_xmpp_muc_admin import alias_of, refusal, rows, started, stop, stored_config
from tests.chat.test_xmpp_rooms import post
from tests.chat.xmpp import add_user, configure
from topology.models import Node

SECRET = "s3cret-Fr1day"


async def protect(owner, room: str, secret: str, protected: str = "1") -> None:
    await configure(owner, room, passwordprotectedroom=protected, roomsecret=secret)


def test_a_password_protected_room_lets_in_only_whoever_gives_its_password_on_either_node(xworld):
    add_user(xworld, "andy", "imp-1a")
    add_user(xworld, "bob", "imp-1b")
    xworld.user("frank", "imp-1b")  # a JSON client
    a, b = xworld.nodes["imp-1a"], xworld.nodes["imp-1b"]
    room = f"vault@{alias_of(a)}"

    async def scenario():
        async with running(a, b), signed_in(b, "frank") as (frank,):
            (andy,) = await started(a, "andy")
            (bob,) = await started(b, "bob")
            await andy.plugin["xep_0045"].join_muc_wait(room, "Andy", maxstanzas=0, timeout=10)
            no_secret = await refusal(protect(andy, room, ""))
            await protect(andy, room, SECRET)
            owner_form = (await andy.plugin["xep_0045"].get_room_config(room)).get_values()
            await protect(andy, room, "")  # the form as shown, its password empty: the password stays
            join = bob.plugin["xep_0045"].join_muc_wait
            without = await refusal(join(room, "Bob", maxstanzas=0, timeout=10))
            wrong = await refusal(join(room, "Bob", password="friday", maxstanzas=0, timeout=10))
            info = await bob.plugin["xep_0030"].get_info(jid=room)
            not_owner = await refusal(bob.plugin["xep_0045"].get_room_config(room))
            joined, *_ = await join(room, "Bob", password=SECRET, maxstanzas=0, timeout=10)
            spoken = await post(bob, room, "in, with the password")  # the stream stayed up
            try:
                await frank.join(room)
                json_refused = None
            except ChatClientError as exc:
                json_refused = exc.code
            json_joined = await frank.join(room, password=SECRET)
            await stop(andy, bob)
            return no_secret, owner_form, without, wrong, info, not_owner, joined, spoken, json_refused, json_joined

    no_secret, owner_form, without, wrong, info, not_owner, joined, spoken, json_refused, json_joined = run(scenario())
    assert (json_refused, json_joined["room"]) == ("not-authorized", room)
    assert "role" not in json_joined
    assert no_secret == (
        "not-acceptable",
        "A password-protected room needs a password: fill in muc#roomconfig_roomsecret.",
    )
    assert owner_form["muc#roomconfig_passwordprotectedroom"] is True
    assert owner_form["muc#roomconfig_roomsecret"] == ""  # stored hashed: not even its owners see it
    assert without == ("not-authorized", f"{room} is password-protected; join with its password.")
    assert wrong == ("not-authorized", f"That is not the password of {room}.")
    features = set(info["disco_info"]["features"])
    assert "muc_passwordprotected" in features and "muc_unsecured" not in features
    assert SECRET not in str(info)
    assert not_owner == ("forbidden", f"Only the owners of {room} may configure it.")
    assert joined["muc"]["role"] == "participant"
    assert spoken["body"] == "in, with the password"
    config = stored_config(xworld.database, room)[1]
    assert config.password_protected and config.secret.startswith("scrypt$") and SECRET not in config.secret
    assert room_secret_matches(SECRET, config.secret) and not room_secret_matches("s3cret-friday", config.secret)


def test_after_a_failover_the_backup_node_asks_for_the_stored_password_and_its_occupants_stay_in(xworld):
    add_user(xworld, "andy", "imp-1a")
    add_user(xworld, "bob", "imp-1b")
    add_user(xworld, "carol", "imp-1b")
    a, b = xworld.nodes["imp-1a"], xworld.nodes["imp-1b"]
    room = f"vault@{alias_of(a)}"

    async def scenario():
        async with running(a, b) as (node_a, node_b):
            (andy,) = await started(a, "andy")
            bob, carol = await started(b, "bob", "carol")
            await andy.plugin["xep_0045"].join_muc_wait(room, "Andy", maxstanzas=0, timeout=10)
            await protect(andy, room, SECRET)
            await bob.plugin["xep_0045"].join_muc_wait(room, "Bob", password=SECRET, maxstanzas=0, timeout=10)
            await stop(andy)
            # Failover: 1B takes 1A's rooms, as its SRM does, and loads them from the database.
            await node_a.tc.stop()
            await Node.objects.filter(pk=a.pk).aupdate(rooms_hosted_by=b)
            await node_b.tc.refresh_hosting()
            join = carol.plugin["xep_0045"].join_muc_wait
            without = await refusal(join(room, "Carol", maxstanzas=0, timeout=15))
            joined, *_ = await join(room, "Carol", password=SECRET, maxstanzas=0, timeout=15)
            stayed = await post(bob, room, "still in after the failover")  # restated, no password asked
            await stop(bob, carol)
            return without, joined, stayed

    without, joined, stayed = run(scenario())
    assert without == ("not-authorized", f"{room} is password-protected; join with its password.")
    assert joined["muc"]["affiliation"] == "none"
    assert stayed["body"] == "still in after the failover"
    [(config,)] = rows(xworld.database, "SELECT config FROM tc_rooms WHERE room_jid = %s", (room,))
    assert "muc#roomconfig_roomsecret" in config and SECRET not in config  # its hash only
