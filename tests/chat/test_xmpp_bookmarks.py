"""Bookmarks with a standard client (slixmpp's XEP-0060, XEP-0223, XEP-0048, XEP-0049 and
XEP-0402 plugins): XEP-0402 items on the user's own bare JID, the same bookmarks as XEP-0048's
``storage:bookmarks`` in PEP and in XEP-0049 private XML storage, the limits, malformed requests,
and another user refused. Real PostgreSQL and Redis, in-process nodes; the failover case (the
bookmarks served by the backup node) runs real node agents."""

from __future__ import annotations

import asyncio
import xml.etree.ElementTree as ET

import pytest
from defusedxml.ElementTree import fromstring
from slixmpp.exceptions import IqError
from slixmpp.plugins.xep_0048 import Bookmarks

from messaging.models import Bookmark, PrivateXml
from tests.agent import conftest as agent_fixtures
from tests.agent.conftest import state_of
from tests.chat.conftest import run, running
from tests.chat.test_xmpp_muc_admin import alias_of
from tests.chat.xmpp import Client, add_user
from tests.conftest import wait_for
from tests.scenario import give_xmpp_ports
from topology.choices import HAReason, HAState

agents = agent_fixtures.agents
pair = agent_fixtures.pair

PUBSUB = "http://jabber.org/protocol/pubsub"
NATIVE = "urn:xmpp:bookmarks:1"
LEGACY = "storage:bookmarks"
# What converse.js 14 and Gajim (nbxmpp) send with every bookmark they publish.
CONVERSE_OPTIONS = {
    "pubsub#persist_items": "true",
    "pubsub#max_items": "max",
    "pubsub#send_last_published_item": "never",
    "pubsub#access_model": "whitelist",
}
GAJIM_OPTIONS = {**CONVERSE_OPTIONS, "pubsub#notify_delete": "true", "pubsub#notify_retract": "true"}


class BookmarkClient(Client):
    """A slixmpp client with the pubsub and bookmark plugins; it records the PEP events it gets."""

    def __init__(self, jid: str) -> None:
        super().__init__(jid)
        for plugin in ("xep_0004", "xep_0060", "xep_0163", "xep_0223", "xep_0049", "xep_0048", "xep_0402"):
            self.register_plugin(plugin)
        self.events: list[tuple[str, str, str]] = []  # (publish/retract, node, item id)
        self.add_event_handler("pubsub_publish", lambda m: self._event("publish", m))
        self.add_event_handler("pubsub_retract", lambda m: self._event("retract", m))

    def _event(self, kind: str, message) -> None:
        items = message["pubsub_event"]["items"]
        item = items["item"] if kind == "publish" else items["retract"]
        assert message["from"] == self.boundjid.bare  # from the user's own account
        self.events.append((kind, items["node"], item["id"]))


def conference(room: str, autojoin: bool, nick: str = "", name: str = "", extensions: str = "") -> ET.Element:
    """A XEP-0402 ``<conference/>``."""
    element = ET.Element(f"{{{NATIVE}}}conference", {"autojoin": "true" if autojoin else "false"})
    if name:
        element.set("name", name)
    if nick:
        ET.SubElement(element, f"{{{NATIVE}}}nick").text = nick
    if extensions:
        element.append(fromstring(f"<extensions xmlns='{NATIVE}'>{extensions}</extensions>"))
    return element


def form(client: Client, options: dict[str, str]):
    data = client.plugin["xep_0004"].make_form(ftype="submit")
    data.add_field(var="FORM_TYPE", ftype="hidden", value=f"{PUBSUB}#publish-options")
    for var, value in options.items():
        data.add_field(var=var, value=value)
    return data


async def publish(client: Client, room: str, element: ET.Element, options=CONVERSE_OPTIONS, jid=None):
    return await client.plugin["xep_0060"].publish(
        jid, NATIVE, id=room, payload=element, options=form(client, options), timeout=10
    )


async def items(client: Client, node: str = NATIVE, jid=None) -> list[tuple[str, ET.Element]]:
    reply = await client.plugin["xep_0060"].get_items(jid, node, timeout=10)
    return [(item["id"], item.xml[0] if len(item.xml) else None) for item in reply["pubsub"]["items"]]


def summary(found: list[tuple[str, ET.Element]]) -> list[tuple[str, str, str]]:
    """(room, autojoin, nick) of XEP-0402 items."""
    return [(room, el.get("autojoin"), el.findtext(f"{{{NATIVE}}}nick") or "") for room, el in found]


async def refused(call) -> tuple[str, str, str]:
    """(type, condition, text) of the error a request got; fails when it succeeded."""
    try:
        await call
    except IqError as exc:
        error = exc.iq["error"]
        return error["type"], error["condition"], error["text"]
    raise AssertionError("the request succeeded")


def app_condition(exc_iq) -> str:
    error = exc_iq.xml.find("{jabber:client}error")
    found = [child.tag.rpartition("}")[2] for child in error if child.tag.startswith(f"{{{PUBSUB}#errors}}")]
    return found[0] if found else ""


async def raw(client: Client, kind: str, xml: str, to: str | None = None):
    """Send an IQ with ``xml`` as its payload; the reply (result or error) as slixmpp's stanza."""
    iq = client.make_iq(ito=to, itype=kind)
    iq.append(fromstring(xml))
    try:
        return await iq.send(timeout=10)
    except IqError as exc:
        return exc.iq


async def until(condition, timeout: float = 5) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.05)


async def started(node, *users: str) -> list[BookmarkClient]:
    clients = [BookmarkClient(f"{user}@example.com") for user in users]
    for client in clients:
        await client.start(node.xmpp_port)
    return clients


async def stop(*clients: Client) -> None:
    for client in clients:
        await client.stop()


def test_xep_0402_bookmarks_are_stored_read_replaced_and_retracted_and_the_session_is_told_each_time(xworld):
    add_user(xworld, "andy", "imp-1a")
    a = xworld.nodes["imp-1a"]
    ops, dev = f"ops@{alias_of(a)}", f"dev@{alias_of(a)}"

    async def scenario():
        async with running(a, xworld.nodes["imp-1b"]):
            (andy,) = await started(a, "andy")
            info = await andy.plugin["xep_0030"].get_info(jid="andy@example.com", timeout=10)
            server = await andy.plugin["xep_0030"].get_info(jid="example.com", timeout=10)
            empty = await items(andy)
            await publish(andy, ops, conference(ops, True, "Andy", "Operations", "<pinned xmlns='urn:x:test'/>"))
            await publish(andy, dev, conference(dev, True, "andy"), options=GAJIM_OPTIONS)
            both = await items(andy)
            # Replace: the same room again, autojoin off (what converse.js does when a room is left).
            await publish(andy, ops, conference(ops, False, "Andy", "Operations"))
            replaced = await items(andy)
            one = await andy.plugin["xep_0060"].get_item(None, NATIVE, dev, timeout=10)
            last = await andy.plugin["xep_0060"].get_items(None, NATIVE, max_items=1, timeout=10)
            nodes = await andy.plugin["xep_0030"].get_items(jid="andy@example.com", timeout=10)
            await andy.plugin["xep_0060"].retract(None, NATIVE, dev, notify=True, timeout=10)
            retracted = await items(andy)
            await until(lambda: len(andy.events) == 4)
            await stop(andy)
            return info, server, empty, both, replaced, one, last, nodes, retracted, andy.events

    info, server, empty, both, replaced, one, last, nodes, retracted, events = run(scenario())
    # What converse.js 14 and Gajim look for on the account before they use XEP-0402.
    features = set(info["disco_info"]["features"])
    assert {
        f"{PUBSUB}#publish-options",
        f"{PUBSUB}#config-node-max",
        f"{NATIVE}#compat",
        f"{NATIVE}#compat-pep",
    } <= features
    assert ("pubsub", "pep") in {(i[0], i[1]) for i in info["disco_info"]["identities"]}
    assert "jabber:iq:private" in server["disco_info"]["features"]
    assert empty == []
    assert summary(both) == [(ops, "true", "Andy"), (dev, "true", "andy")]
    assert both[0][1].get("name") == "Operations"
    assert both[0][1].find(f"{{{NATIVE}}}extensions/{{urn:x:test}}pinned") is not None  # kept as sent
    assert summary(replaced) == [(dev, "true", "andy"), (ops, "false", "Andy")]  # the newest last
    assert [item["id"] for item in one["pubsub"]["items"]] == [dev]
    assert [item["id"] for item in last["pubsub"]["items"]] == [ops]
    assert {(item[0], item[1]) for item in nodes["disco_items"]["items"]} == {  # slixmpp keeps them in a set
        ("andy@example.com", NATIVE),
        ("andy@example.com", LEGACY),
    }
    assert summary(retracted) == [(ops, "false", "Andy")]
    assert events == [
        ("publish", NATIVE, ops),
        ("publish", NATIVE, dev),
        ("publish", NATIVE, ops),
        ("retract", NATIVE, dev),
    ]
    assert list(Bookmark.objects.values_list("user__user_id", "room_jid", "autojoin", "nick")) == [
        ("andy", ops, False, "Andy")
    ]


def test_xep_0048_in_pep_and_in_private_storage_are_the_same_bookmarks_and_other_private_data_is_kept(xworld):
    add_user(xworld, "andy", "imp-1a")
    a = xworld.nodes["imp-1a"]
    ops, dev, qa = (f"{name}@{alias_of(a)}" for name in ("ops", "dev", "qa"))

    async def scenario():
        async with running(a):
            (andy,) = await started(a, "andy")
            await publish(andy, ops, conference(ops, True, "Andy", extensions="<pinned xmlns='urn:x:test'/>"))
            # XEP-0049, as Gajim without publish-options and slixmpp's default: the whole set.
            private = await andy.plugin["xep_0048"].get_bookmarks(method="xep_0049", timeout=10)
            stored = Bookmarks()
            stored.add_conference(ops, "Andrew", autojoin=True)
            stored.add_conference(dev, "Andy", name="Development", autojoin=False)
            await andy.plugin["xep_0048"].set_bookmarks(stored, method="xep_0049", timeout=10)
            after_private = await items(andy)
            # XEP-0048 in PEP (XEP-0223): the whole set again, one item "current".
            pep = Bookmarks()
            pep.add_conference(qa, "Andy", autojoin=True)
            pep.add_conference(ops, "Andrew", autojoin=True)
            await andy.plugin["xep_0048"].set_bookmarks(pep, method="xep_0223", timeout=10)
            legacy = await andy.plugin["xep_0048"].get_bookmarks(method="xep_0223", timeout=10)
            after_pep = await items(andy)
            # Any other namespace is private XML storage; an empty element removes it.
            other = fromstring("<prefs xmlns='urn:x:client-prefs'><theme>dark</theme></prefs>")
            await andy.plugin["xep_0049"].store(other, timeout=10)
            prefs = await raw(
                andy, "get", "<query xmlns='jabber:iq:private'><prefs xmlns='urn:x:client-prefs'/></query>"
            )
            rows_before = await asyncio.to_thread(PrivateXml.objects.count)
            await raw(andy, "set", "<query xmlns='jabber:iq:private'><prefs xmlns='urn:x:client-prefs'/></query>")
            await stop(andy)
            return private, after_private, legacy, after_pep, prefs, rows_before

    private, after_private, legacy, after_pep, prefs, rows_before = run(scenario())
    conferences = private["private"]["bookmarks"]["conferences"]
    assert [(c["jid"], c["nick"], c["autojoin"]) for c in conferences] == [(ops, "Andy", True)]
    assert summary(after_private) == [(ops, "true", "Andrew"), (dev, "false", "Andy")]
    assert after_private[0][1].find(f"{{{NATIVE}}}extensions") is not None  # storage:bookmarks cannot carry them
    item = legacy["pubsub"]["items"]["item"]
    assert item["id"] == "current"
    assert [(c["jid"], c["nick"]) for c in item["bookmarks"]["conferences"]] == [(ops, "Andrew"), (qa, "Andy")]
    assert summary(after_pep) == [(ops, "true", "Andrew"), (qa, "true", "Andy")]  # dev left the set
    assert prefs.xml.find("{jabber:iq:private}query/{urn:x:client-prefs}prefs/{urn:x:client-prefs}theme").text == "dark"
    assert rows_before == 1
    assert PrivateXml.objects.count() == 0


def test_limits_and_malformed_requests_get_a_stanza_error_and_the_stream_stays_up(xworld, settings):
    settings.BOOKMARKS_MAX_ITEMS = 2
    settings.BOOKMARK_MAX_BYTES = 400
    settings.PRIVATE_XML_MAX_ELEMENTS = 1
    settings.PRIVATE_XML_MAX_BYTES = 200
    add_user(xworld, "andy", "imp-1a")
    a = xworld.nodes["imp-1a"]
    rooms = [f"room{n}@{alias_of(a)}" for n in range(3)]
    private = "<query xmlns='jabber:iq:private'>{}</query>"

    async def scenario():
        async with running(a):
            (andy,) = await started(a, "andy")
            for room in rooms[:2]:
                await publish(andy, room, conference(room, True, "Andy"))
            answers = {}

            async def error_of(name, call):
                try:
                    await call
                except IqError as exc:
                    error = exc.iq["error"]
                    answers[name] = (error["type"], error["condition"], app_condition(exc.iq), error["text"])
                    return
                answers[name] = "accepted"

            await error_of("third bookmark", publish(andy, rooms[2], conference(rooms[2], True)))
            await error_of("too big", publish(andy, rooms[0], conference(rooms[0], True, "x" * 500)))
            await error_of(
                "open node",
                publish(
                    andy, rooms[0], conference(rooms[0], True), {**CONVERSE_OPTIONS, "pubsub#access_model": "open"}
                ),
            )
            await error_of("not a room JID", publish(andy, "not a jid", conference("x", True)))
            await error_of(
                "wrong payload",
                andy.plugin["xep_0060"].publish(
                    None, NATIVE, id=rooms[0], payload=fromstring("<x xmlns='urn:x:other'/>"), timeout=10
                ),
            )
            await error_of(
                "bad autojoin",
                publish(andy, rooms[0], fromstring(f"<conference xmlns='{NATIVE}' autojoin='maybe'/>")),
            )
            await error_of("unknown item", andy.plugin["xep_0060"].retract(None, NATIVE, rooms[2], timeout=10))
            await error_of("other node", andy.plugin["xep_0060"].get_items(None, "urn:x:mood", timeout=10))
            await error_of("subscribe", andy.plugin["xep_0060"].subscribe("andy@example.com", NATIVE, timeout=10))
            other = "<prefs xmlns='urn:x:one'><v>1</v></prefs>"
            await error_of("first private", andy.plugin["xep_0049"].store(fromstring(other), timeout=10))
            await error_of(
                "second private", andy.plugin["xep_0049"].store(fromstring("<p xmlns='urn:x:two'>2</p>"), timeout=10)
            )
            await error_of(
                "private too big",
                andy.plugin["xep_0049"].store(fromstring(f"<prefs xmlns='urn:x:one'>{'x' * 300}</prefs>"), timeout=10),
            )
            for name, kind, xml in (
                ("private reserved", "set", private.format("<query xmlns='jabber:client'/>")),
                ("private empty", "get", private.format("")),
                ("private long namespace", "set", private.format(f"<p xmlns='urn:x:{'é' * 600}'>1</p>")),
                ("no item", "set", f"<pubsub xmlns='{PUBSUB}'><publish node='{NATIVE}'/></pubsub>"),
                ("no node", "set", f"<pubsub xmlns='{PUBSUB}'><publish><item id='{rooms[0]}'/></publish></pubsub>"),
                (
                    "two requests",
                    "get",
                    f"<pubsub xmlns='{PUBSUB}'><items node='{NATIVE}'/><items node='{NATIVE}'/></pubsub>",
                ),
                ("bad max_items", "get", f"<pubsub xmlns='{PUBSUB}'><items node='{NATIVE}' max_items='-1'/></pubsub>"),
            ):
                reply = await raw(andy, kind, xml)
                error = reply["error"]
                answers[name] = (error["type"], error["condition"], app_condition(reply), error["text"])
            still = await items(andy)  # the stream is up: the same session answers
            await stop(andy)
            return answers, still

    answers, still = run(scenario())
    assert answers["third bookmark"] == (
        "modify",
        "not-acceptable",
        "max-items-exceeded",
        "You have 2 bookmarks, the most kept for a user (2): remove one first.",
    )
    assert answers["too big"][:3] == ("modify", "not-acceptable", "payload-too-big")
    assert answers["open node"][:3] == ("cancel", "conflict", "precondition-not-met")
    assert answers["not a room JID"][:3] == ("modify", "bad-request", "invalid-payload")
    assert answers["wrong payload"][:3] == ("modify", "bad-request", "invalid-payload")
    assert answers["bad autojoin"][:3] == ("modify", "bad-request", "invalid-payload")
    assert answers["unknown item"][:2] == ("cancel", "item-not-found")
    assert answers["other node"][:2] == ("cancel", "item-not-found")
    assert answers["subscribe"][:3] == ("cancel", "feature-not-implemented", "unsupported")
    assert answers["first private"] == "accepted"
    assert answers["second private"][:2] == ("modify", "not-acceptable")
    assert answers["private too big"][:2] == ("modify", "not-acceptable")
    assert answers["private reserved"][:2] == ("modify", "not-acceptable")
    assert answers["private empty"][:2] == ("modify", "not-acceptable")
    assert answers["private long namespace"][:2] == ("modify", "not-acceptable")
    assert answers["no item"][:3] == ("modify", "bad-request", "item-required")
    assert answers["no node"][:3] == ("modify", "bad-request", "nodeid-required")
    assert answers["two requests"][:2] == ("modify", "bad-request")
    assert answers["bad max_items"][:2] == ("modify", "bad-request")
    assert [room for room, _ in still] == rooms[:2]  # nothing refused was stored
    assert Bookmark.objects.count() == 2
    assert list(PrivateXml.objects.values_list("namespace", flat=True)) == ["urn:x:one"]


def test_another_user_can_neither_read_nor_change_someone_elses_bookmarks_or_private_data(xworld):
    add_user(xworld, "andy", "imp-1a")
    add_user(xworld, "bob", "imp-1b")
    a, b = xworld.nodes["imp-1a"], xworld.nodes["imp-1b"]
    ops = f"ops@{alias_of(a)}"
    andys = "andy@example.com"

    async def scenario():
        async with running(a, b):
            (andy,) = await started(a, "andy")
            (bob,) = await started(b, "bob")
            await publish(andy, ops, conference(ops, True, "Andy"))
            answers = {
                "read": await refused(bob.plugin["xep_0060"].get_items(andys, NATIVE, timeout=10)),
                "read legacy": await refused(bob.plugin["xep_0060"].get_items(andys, LEGACY, timeout=10)),
                "publish": await refused(publish(bob, ops, conference(ops, False, "Bob"), jid=andys)),
                "retract": await refused(bob.plugin["xep_0060"].retract(andys, NATIVE, ops, timeout=10)),
                "nobody's": await refused(bob.plugin["xep_0060"].get_items("nobody@example.com", NATIVE, timeout=10)),
            }
            private_read = await raw(
                bob, "get", f"<query xmlns='jabber:iq:private'><storage xmlns='{LEGACY}'/></query>", to=andys
            )
            answers["private"] = (private_read["error"]["type"], private_read["error"]["condition"], "")
            bobs_own = await items(bob)
            andys_own = await items(andy)
            await stop(andy, bob)
            return answers, bobs_own, andys_own

    answers, bobs_own, andys_own = run(scenario())
    text = "You can read and change only your own bookmarks and private data."
    for name, answer in answers.items():
        assert answer[:2] == ("auth", "forbidden"), name
        assert answer[2] in (text, ""), name
    assert answers["read"][2] == text
    assert answers["nobody's"] == answers["read"]  # whether the user exists is not told
    assert bobs_own == []
    assert summary(andys_own) == [(ops, "true", "Andy")]


@pytest.fixture
def xmpp_pair(pair):
    """imp-1a-… and imp-1b-… in an HA group (``tests.agent.conftest.pair``: node names of the
    test's own, as the agents' bus is shared), each with an XMPP client port."""
    give_xmpp_ports([pair["a"], pair["b"]])
    return pair


@pytest.mark.slow
def test_bookmarks_stored_on_1a_are_served_by_1b_after_a_failover_and_the_room_is_joined_again(xmpp_pair, agents):
    a, b = xmpp_pair["a"], xmpp_pair["b"]
    ops, dev = f"ops@{alias_of(a)}", f"dev@{alias_of(a)}"
    agent_a = agents(a.name)
    agents(b.name)
    wait_for(
        lambda: all(state_of(n.name) == (HAState.NORMAL, HAReason.NORMAL) for n in (a, b)), 90, "both nodes Normal"
    )

    async def before():
        (andy,) = await started(a, "andy")
        await andy.plugin["xep_0045"].join_muc_wait(ops, "Andy", maxstanzas=0, timeout=15)
        await publish(andy, ops, conference(ops, True, "Andy", "Operations"))
        await publish(andy, dev, conference(dev, False, "andy"))
        await andy.plugin["xep_0049"].store(fromstring("<prefs xmlns='urn:x:client-prefs'>dark</prefs>"), timeout=10)
        await stop(andy)

    async def after():
        # Andy signs in on imp-1b, reads his bookmarks and joins the autojoin ones, as clients do.
        (andy,) = await started(b, "andy")
        found = await items(andy)
        for room, element in found:
            if element.get("autojoin") == "true":
                await andy.plugin["xep_0045"].join_muc_wait(
                    room, element.findtext(f"{{{NATIVE}}}nick"), maxstanzas=0, timeout=30
                )
        joined = sorted(andy.plugin["xep_0045"].get_joined_rooms())
        prefs = await raw(andy, "get", "<query xmlns='jabber:iq:private'><prefs xmlns='urn:x:client-prefs'/></query>")
        # A bookmark changed on the backup is there too.
        await publish(andy, dev, conference(dev, True, "andy"))
        await stop(andy)
        return found, joined, prefs

    asyncio.run(before())
    agent_a.kill()  # SIGKILL: imp-1b takes Andy over after the heartbeat timeout
    wait_for(lambda: state_of(b.name)[0] == HAState.RUNNING_IN_BACKUP_MODE, 60, "imp-1b in backup mode")
    found, joined, prefs = asyncio.run(after())
    assert summary(found) == [(ops, "true", "Andy"), (dev, "false", "andy")]
    assert found[0][1].get("name") == "Operations"
    assert [str(room) for room in joined] == [ops]
    assert prefs.xml.find("{jabber:iq:private}query/{urn:x:client-prefs}prefs").text == "dark"
    assert list(Bookmark.objects.order_by("room_jid").values_list("room_jid", "autojoin")) == [(dev, True), (ops, True)]
