"""The reference's failover and fallback seen from converse.js (a complete XMPP client nobody here
wrote) in Chromium, with real node agents: Andy signs in on imp-1a in Web Chat and Bob on imp-1b
(a second browser context); the Text Conference Manager on imp-1a is stopped through the Control
Center; imp-1a closes Andy's stream with ``<close see-other-uri='ws://imp-1b/'/>`` (RFC 7395),
converse.js signs in on imp-1b, rejoins ``ha-demo`` and goes on; TC is started again and Fallback
pressed on the group page; Andy is sent back to imp-1a the same way. Catherine (imp-1b, the JSON
protocol) posts all through each move, so messages arrive while Andy's converse.js is between
two nodes: it must fetch them from the archive (MAM) once it has rejoined. Every message the
three users sent is once in each browser's room view and once in the archive (tc_messages,
tc_msgarchive).

Each step is a screenshot in docs/screenshots/webchat-failover-N-*.png (the README's failover
story links them)."""

from __future__ import annotations

import asyncio
import re
import threading
import time
from pathlib import Path

import psycopg
import pytest
from playwright.sync_api import expect

from messaging.chat.client import ChatClient
from messaging.tc.stanzas import parse_xml
from messaging.webchat import websocket_url
from tests.agent import conftest as agent_fixtures
from tests.agent.conftest import build_pair, state_of
from tests.agent.test_group_page_browser import press_on_control_center
from tests.chat.test_xmpp_webchat import RECORD_VIOLATIONS, join_room, open_web_chat, post
from tests.conftest import PG_ADMIN, browser_login, chat_password, chat_user, wait_for
from topology.catalog import ServiceName, ServiceStatus
from topology.choices import HAReason, HAState
from topology.models import EndUser, Service

pytestmark = [pytest.mark.browser, pytest.mark.slow]

# Real node agents as subprocesses, shared with the agent suite.
agents = agent_fixtures.agents

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
MOVE_TIMEOUT = 60_000  # ms: the critical service delay (2 s), the SRM's transitions, converse's reconnect


@pytest.fixture
def reference_pair(transactional_db, postgres):
    """imp-1a and imp-1b as in the reference use case (the chat bus prefix is per test run)."""
    return build_pair(postgres, ("imp-1a", "imp-1b"))


def message_texts(page, body: str):
    """The room view's messages whose text is exactly ``body``."""
    return page.locator("converse-muc .chat-msg__text").filter(has_text=re.compile(rf"^\s*{re.escape(body)}\s*$"))


def connected_node(page):
    return page.locator("#webchat-connection [data-webchat-node]")


def on_node(page, name: str) -> None:
    """converse.js is signed in on node ``name`` and has joined its rooms again (the page says
    so): a message sent earlier would be refused."""
    expect(connected_node(page)).to_have_text(name, timeout=MOVE_TIMEOUT)
    expect(page.locator("#webchat-connection")).to_have_attribute("data-rooms", "entered", timeout=MOVE_TIMEOUT)


def archived_bodies(database: str, room: str) -> tuple[list[str], list[str]]:
    """The room's message bodies in tc_messages (from the stored stanzas) and in tc_msgarchive."""
    with psycopg.connect(dbname=database, **PG_ADMIN, autocommit=True) as conn:
        stored = [
            row[0] for row in conn.execute("SELECT msg FROM tc_messages WHERE room_jid = %s ORDER BY msg_id", (room,))
        ]
        archive = conn.execute("SELECT body_string FROM tc_msgarchive WHERE to_jid = %s ORDER BY msg_id", (room,))
        archived = [row[0] for row in archive]
    bodies = []
    for text in stored:
        body = parse_xml(text).find("body")  # stored as the product stores it: no namespace
        bodies.append(body.text if body is not None else text)
    return bodies, archived


class Poster:
    """Catherine on imp-1b with the JSON client (its own event loop, in a thread): she posts
    while ``posting`` is set, each post sent again with the same cid until acknowledged."""

    def __init__(self, node, room: str) -> None:
        self.node, self.room = node, room
        self.posting, self.done = threading.Event(), threading.Event()
        self.acked: list[str] = []
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> Poster:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.done.set()
        if self.thread.ident is not None:
            self.thread.join(60)

    def during(self, step, posts: int = 3):
        """Post while ``step()`` runs and until ``posts`` more were acknowledged after it."""
        self.posting.set()
        try:
            step()
            target = len(self.acked) + posts
            wait_for(lambda: len(self.acked) >= target or self.error, 60, "Catherine's posts acknowledged")
        finally:
            self.posting.clear()
        assert self.error is None, self.error

    def _run(self) -> None:
        try:
            asyncio.run(self._post())
        except BaseException as exc:  # reported to the test by during()
            self.error = exc

    async def _post(self) -> None:
        client = ChatClient(
            "catherine",
            self.node.agent_host,
            self.node.agent_port,
            password=chat_password("catherine"),
            max_relogin_delay=1,
            give_up_after=90,
        )
        await client.connect()
        try:
            await client.join(self.room)
            n = 0
            while not self.done.is_set():
                if not self.posting.is_set():
                    await asyncio.sleep(0.05)
                    continue
                n += 1
                await client.post(self.room, f"catherine {n}", retry_for=90)
                self.acked.append(f"catherine {n}")
                await asyncio.sleep(0.3)
        finally:
            await client.close()


class Gate:
    """Holds the page's WebSocket connections to ``url`` (Playwright's WebSocket routing) until
    ``open()``: a reconnect that is slow to arrive, so messages are posted while converse.js is
    between two nodes. What the page sends meanwhile is kept and forwarded once connected."""

    def __init__(self, page, url: str) -> None:
        self.page = page
        self.held: list = []
        self.route = None
        self.server = None
        page.route_web_socket(url, self._connecting)

    def _connecting(self, route) -> None:
        self.route = route
        route.on_message(self._from_page)
        if self.server is not None:  # opened already: a later connection goes straight through
            self.server = route.connect_to_server()

    def _from_page(self, message) -> None:
        if self.server is None:
            self.held.append(message)
        else:
            self.server.send(message)

    def wait_for_connection(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while self.route is None:
            assert time.monotonic() < deadline, "converse.js did not connect to the node it was sent to"
            self.page.wait_for_timeout(100)  # Playwright delivers the route while the page waits

    def open(self) -> None:
        self.server = self.route.connect_to_server()
        for message in self.held:
            self.server.send(message)
        self.held.clear()


def shoot(page, n: int, name: str) -> None:
    page.screenshot(path=str(SCREENSHOTS / f"webchat-failover-{n}-{name}.png"))


def test_converse_follows_andy_to_imp_1b_on_failover_and_back_on_fallback(
    browser_page, live_server, reference_pair, agents, super_admin, tmp_path
):
    a, b, group = reference_pair["a"], reference_pair["b"], reference_pair["group"]
    andy, bob = EndUser.objects.get(user_id="andy"), EndUser.objects.get(user_id="bob")
    chat_user("catherine", b)
    room = f"ha-demo@conference-{a.pk}-imp1.example.com"
    agents(a.name)
    agents(b.name)
    tc = {node: Service.objects.get(node=node, name=ServiceName.TEXT_CONFERENCE_MANAGER) for node in (a, b)}
    wait_for(
        lambda: (
            all(state_of(n.name) == (HAState.NORMAL, HAReason.NORMAL) for n in (a, b))
            and all(Service.objects.get(pk=s.pk).status == ServiceStatus.STARTED for s in tc.values())
        ),
        60,
        "both nodes Normal with the Text Conference Manager started",
    )
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    page = browser_page
    page.context.add_init_script(RECORD_VIOLATIONS)
    andy_log: list[str] = []
    bob_log: list[str] = []
    bob_context = page.context.browser.new_context(base_url=live_server.url, viewport={"width": 1400, "height": 900})
    bob_context.add_init_script(RECORD_VIOLATIONS)
    bob_page = bob_context.new_page()
    bob_page.set_default_timeout(15_000)
    catherine = Poster(b, room)
    sent: list[str] = []

    def say(who, body: str) -> None:
        """Post in converse.js (which shows the message at once) and wait until it is stored."""
        post(who, body)
        expect(message_texts(who, body)).to_have_count(1, timeout=MOVE_TIMEOUT)
        wait_for(lambda: body in archived_bodies(reference_pair["db_name"], room)[0], 30, f"{body!r} stored")
        sent.append(body)

    def seen_by_both(body: str) -> None:
        for view in (page, bob_page):
            expect(message_texts(view, body)).to_have_count(1, timeout=MOVE_TIMEOUT)

    try:
        # 1. Andy signs in on imp-1a, joins ha-demo and posts.
        browser_login(page, "sadmin")
        open_web_chat(page, andy, andy_log)
        expect(connected_node(page)).to_have_text("imp-1a", timeout=30_000)
        join_room(page, room, "andy")
        say(page, "andy: hello from imp-1a")
        shoot(page, 1, "andy-on-1a")

        # 2. Bob posts from a second browser context, on imp-1b.
        browser_login(bob_page, "sadmin")
        open_web_chat(bob_page, bob, bob_log)
        expect(connected_node(bob_page)).to_have_text("imp-1b", timeout=30_000)
        join_room(bob_page, room, "bob")
        say(bob_page, "bob: hello from imp-1b")
        seen_by_both("andy: hello from imp-1a")
        seen_by_both("bob: hello from imp-1b")
        shoot(bob_page, 2, "bob-on-1b")
        catherine.start()

        # 3. The Text Conference Manager on imp-1a is stopped through the Control Center; the
        # SRM fails imp-1a over to imp-1b; imp-1a sends Andy's converse.js to imp-1b
        # (see-other-uri), where it signs in, rejoins and catches up, while Catherine posts.
        console = page.context.new_page()
        group_page = page.context.new_page()

        def failover() -> None:
            press_on_control_center(console, a, "Stop")
            shoot(console, 3, "tc-stopped")
            group_page.goto(f"/system/redundancy-groups/{group.pk}/")
            expect(group_page.locator("[data-node-state=imp-1a]")).to_have_text(
                "Failed Over with Critical Services Not Running", timeout=MOVE_TIMEOUT
            )
            expect(group_page.locator("[data-node-state=imp-1b]")).to_have_text(
                "Running in Backup Mode", timeout=MOVE_TIMEOUT
            )
            group_page.screenshot(path=str(SCREENSHOTS / "webchat-failover-4-group-failed-over.png"), full_page=True)
            # Andy's converse.js was sent to imp-1b and is connecting: Catherine's next posts
            # are stored while Andy is on neither node; they must reach him from the archive.
            gate.wait_for_connection(MOVE_TIMEOUT / 1000)
            wait_for(lambda: len(catherine.acked) >= before + 2 or catherine.error, 60, "posts while Andy moves")
            gate.open()
            on_node(page, "imp-1b")

        gate = Gate(page, websocket_url(b))
        before = len(catherine.acked)
        catherine.during(failover)
        during_the_move = catherine.acked[before:]
        for body in during_the_move:
            expect(message_texts(page, body)).to_have_count(1, timeout=MOVE_TIMEOUT)
        say(page, "andy: still here, now on imp-1b")
        say(bob_page, "bob: welcome to imp-1b")
        seen_by_both("andy: still here, now on imp-1b")
        seen_by_both("bob: welcome to imp-1b")
        shoot(page, 5, "andy-on-1b")

        # 4. TC started again, Fallback pressed on the group page: Andy is back on imp-1a.
        wait_for(
            lambda: Service.objects.get(pk=tc[a].pk).status == ServiceStatus.STOPPED,
            30,
            "the Stop carried out, so the Control Center has stopped polling",
        )
        press_on_control_center(console, a, "Start")
        fallback_button = group_page.locator("[data-server-actions=imp-1a] button")
        expect(fallback_button).to_have_text("Fallback", timeout=MOVE_TIMEOUT)

        def fallback() -> None:
            group_page.once("dialog", lambda dialog: dialog.accept())
            fallback_button.click()
            expect(group_page.get_by_text("Fallback of imp-1a requested")).to_be_visible()
            expect(group_page.locator("[data-node-state=imp-1a]")).to_have_text("Normal", timeout=MOVE_TIMEOUT)
            expect(group_page.locator("[data-node-state=imp-1b]")).to_have_text("Normal", timeout=MOVE_TIMEOUT)
            group_page.screenshot(path=str(SCREENSHOTS / "webchat-failover-6-group-fallback.png"), full_page=True)
            on_node(page, "imp-1a")

        catherine.during(fallback)
        say(page, "andy: back home on imp-1a")
        say(bob_page, "bob: good to have you back")
        seen_by_both("andy: back home on imp-1a")
        seen_by_both("bob: good to have you back")
        shoot(page, 7, "andy-back-on-1a")

        # 5. Every message once in both room views and in the archive.
        sent += catherine.acked
        for body in sent:
            seen_by_both(body)
        # A reflection is sent only after the commit: what the browsers show is stored already.
        stored, archived = archived_bodies(reference_pair["db_name"], room)
        assert sorted(stored) == sorted(sent)
        assert sorted(archived) == sorted(sent)
        assert connected_node(bob_page).inner_text() == "imp-1b"  # Bob was never moved
        assert page.evaluate("window.cspViolations") == []
        assert bob_page.evaluate("window.cspViolations") == []
    finally:
        catherine.stop()
        bob_context.close()
        log = tmp_path / "browser-console.log"
        log.write_text("\n".join([*andy_log, "--- bob ---", *bob_log]))
        print(f"browsers' console log: {log}")


def test_converse_finds_imp_1b_when_imp_1a_dies_without_a_word(
    browser_page, live_server, reference_pair, agents, super_admin, tmp_path
):
    """imp-1a's node agent is killed (SIGKILL): no see-other-uri comes, and converse.js on its
    own would retry imp-1a for ever. The page moves it on to Andy's next node, imp-1b, which
    sends it back to imp-1a until the SRM has failed imp-1a over (heartbeat timeout), then
    takes it. Andy's messages before and after are once in his room view and in the archive."""
    a, b = reference_pair["a"], reference_pair["b"]
    andy = EndUser.objects.get(user_id="andy")
    room = f"ha-demo@conference-{a.pk}-imp1.example.com"
    agent_a = agents(a.name)
    agents(b.name)
    wait_for(
        lambda: all(state_of(n.name) == (HAState.NORMAL, HAReason.NORMAL) for n in (a, b)), 60, "both nodes Normal"
    )
    page = browser_page
    andy_log: list[str] = []
    sent = ["andy: before imp-1a dies", "andy: on imp-1b after the crash"]
    try:
        browser_login(page, "sadmin")
        open_web_chat(page, andy, andy_log)
        expect(connected_node(page)).to_have_text("imp-1a", timeout=30_000)
        join_room(page, room, "andy")
        post(page, sent[0])
        expect(message_texts(page, sent[0])).to_have_count(1)
        # converse.js shows a message at once; killed before its commit it would be lost unseen
        # (converse does not send again a message whose reflection never came on a new session).
        wait_for(lambda: sent[0] in archived_bodies(reference_pair["db_name"], room)[0], 30, "the first post stored")
        agent_a.kill()
        wait_for(lambda: state_of(b.name)[0] == HAState.RUNNING_IN_BACKUP_MODE, 60, "imp-1b in backup mode")
        on_node(page, "imp-1b")
        expect(page.locator("#webchat-connection")).to_be_visible()
        post(page, sent[1])
        expect(message_texts(page, sent[1])).to_have_count(1, timeout=MOVE_TIMEOUT)
        expect(message_texts(page, sent[0])).to_have_count(1)
        stored = wait_for(
            lambda: (found := archived_bodies(reference_pair["db_name"], room)[0]) and len(found) == 2 and found,
            30,
            "both posts stored",
        )
        _, archived = archived_bodies(reference_pair["db_name"], room)
        assert sorted(stored) == sorted(archived) == sorted(sent)
    finally:
        log = tmp_path / "browser-console.log"
        log.write_text("\n".join(andy_log))
        print(f"browser's console log: {log}")
