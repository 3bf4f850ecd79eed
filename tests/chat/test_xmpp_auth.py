"""Signing in with a standard XMPP client (slixmpp): SCRAM-SHA-256, SCRAM-SHA-1 and PLAIN inside
TLS, a wrong password gets SASL not-authorized and throttling follows, a password change by
XEP-0077; the database holds no password."""

from __future__ import annotations

from tests.chat.conftest import run, running
from tests.chat.xmpp import Client, add_user, password_of
from topology.models import EndUser, ScramCredential


def test_scram_sha_256_scram_sha_1_and_plain_inside_tls_sign_in(xworld):
    add_user(xworld, "andy", "imp-1a")
    node = xworld.nodes["imp-1a"]

    async def scenario():
        bound = {}
        async with running(node):
            for mechanism in ("SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN"):
                client = Client("andy@example.com", sasl_mech=mechanism)
                await client.start(node.xmpp_port)
                bound[mechanism] = (str(client.boundjid), client.is_connected(), client.mechanism_used)
                await client.stop()
        return bound

    bound = run(scenario())
    for mechanism, (jid, connected, used) in bound.items():
        assert jid.startswith("andy@example.com/"), mechanism
        assert connected and used == mechanism
    stored = [
        bytes(value) for row in ScramCredential.objects.values_list("salt", "stored_key", "server_key") for value in row
    ]
    assert not any(password_of("andy").encode() in value for value in stored)
    assert sorted(ScramCredential.objects.values_list("mechanism", flat=True)) == ["SCRAM-SHA-1", "SCRAM-SHA-256"]


def test_a_wrong_password_is_not_authorized_and_repeated_failures_are_throttled(xworld, settings):
    settings.SIGN_IN_FAILURES_PER_USER = 3
    add_user(xworld, "andy", "imp-1a")
    node = xworld.nodes["imp-1a"]

    async def scenario():
        outcomes = []
        async with running(node):
            for password in ("wrong-password-1", "wrong-password-2", "wrong-password-3", password_of("andy")):
                client = Client("andy@example.com", password, sasl_mech="SCRAM-SHA-256")
                failure = await client.start_expecting_failure(node.xmpp_port)
                outcomes.append(failure)
                await client.stop()
        return outcomes

    outcomes = run(scenario())
    assert [condition for condition, _ in outcomes[:3]] == ["not-authorized"] * 3
    assert outcomes[0][1] == "Wrong user ID or password."
    # The right password now: still refused, and the text says why and for how long.
    condition, text = outcomes[3]
    assert condition == "not-authorized"
    assert text.startswith("Too many failed sign-ins for andy; try again in ")
    andy = EndUser.objects.get(user_id="andy")
    assert andy.failed_sign_ins == 3
    assert andy.last_failed_sign_in_source == "127.0.0.1"


def test_a_user_changes_their_password_in_band(xworld):
    add_user(xworld, "andy", "imp-1a")
    node = xworld.nodes["imp-1a"]

    async def scenario():
        async with running(node):
            andy = Client("andy@example.com")
            await andy.start(node.xmpp_port)
            await andy.plugin["xep_0077"].change_password("a-brand-new-password", jid="example.com")
            await andy.stop()
            old = Client("andy@example.com", sasl_mech="SCRAM-SHA-256")
            refused = await old.start_expecting_failure(node.xmpp_port)
            await old.stop()
            new = Client("andy@example.com", "a-brand-new-password")
            await new.start(node.xmpp_port)
            await new.stop()
            return refused

    assert run(scenario())[0] == "not-authorized"


def test_a_user_served_by_another_node_is_sent_there_with_see_other_host(xworld):
    """RFC 6120 §4.9.3.19: after authenticating, a node that does not serve the user names the
    serving node's client port; slixmpp follows it and signs in there."""
    add_user(xworld, "bob", "imp-1b")
    nodes = xworld.nodes

    async def scenario():
        async with running(nodes["imp-1a"], nodes["imp-1b"]):
            bob = Client("bob@example.com")
            await bob.start(nodes["imp-1a"].xmpp_port, timeout=20)
            errors = [(e["condition"], e["see_other_host"]) for e in bob.stream_errors]
            address = bob.address
            await bob.stop()
            return errors, address

    errors, address = run(scenario())
    assert errors == [("see-other-host", f"127.0.0.1:{nodes['imp-1b'].xmpp_port}")]
    assert address == ("127.0.0.1", nodes["imp-1b"].xmpp_port)
