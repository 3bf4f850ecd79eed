"""Messaging > Web Chat in Chromium: converse.js (a complete XMPP client nobody here wrote),
served from the console's static files, signs in with the end user's own password over XMPP
over WebSocket to the node serving the user, joins a persistent room and posts; the message
is in both users' room views and in the archive (tc_messages), and the page breaks no
Content-Security-Policy rule."""

from __future__ import annotations

import psycopg
import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from tests.chat.conftest import NodesInThread
from tests.chat.xmpp import add_user, password_of
from tests.conftest import PG_ADMIN, browser_login, wait_for

pytestmark = [pytest.mark.browser]

RECORD_VIOLATIONS = """
window.cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.cspViolations.push(event.violatedDirective + " " + (event.blockedURI || "inline"));
});
"""


def open_web_chat(page, user, log: list[str]) -> None:
    """Open Web Chat for ``user`` from the user's page and sign in with their password."""
    page.on("console", lambda message: log.append(f"{message.type}: {message.text}"))
    page.goto(f"/system/users/{user.pk}/")
    page.click("text=Open Web Chat as this user")
    page.wait_for_selector("#converse-login-password")
    assert page.input_value("#converse-login-jid") == user.jid
    page.fill("#converse-login-password", password_of(user.user_id))
    page.click("converse-root button[type=submit]")


def join_room(page, room: str, nick: str) -> None:
    """Groupchats menu > Add groupchat, then Join (converse.js's own dialog)."""
    menu = page.locator("converse-root .dropdown-menu:has(.show-add-muc-modal)")
    toggle = menu.locator("xpath=preceding-sibling::button")
    chatroom = page.locator("converse-add-muc-modal input[name=chatroom]")

    def dialog_open() -> bool:
        if chatroom.is_visible():
            return True
        try:
            if not menu.locator(".show-add-muc-modal").is_visible():
                toggle.click(timeout=5_000)
            page.locator("converse-root .show-add-muc-modal").click(timeout=5_000)
            chatroom.wait_for(timeout=3_000)
        except PlaywrightTimeout:
            return False
        return True

    wait_for(dialog_open, 30, interval=0.5, what="converse.js's Add groupchat dialog")
    nickname = page.locator("converse-add-muc-modal input[name=nickname]")

    def filled() -> bool:
        # The dialog may still render while it is filled (once, under load, the nickname ended
        # up at the end of the room JID): fill again until both fields hold what was typed.
        chatroom.fill(room)
        nickname.fill(nick)
        return chatroom.input_value() == room and nickname.input_value() == nick

    wait_for(filled, 30, interval=0.5, what="the room JID and nickname in converse.js's dialog")
    page.click("converse-add-muc-modal >> role=button[name='Join']")
    page.wait_for_selector("converse-muc textarea.chat-textarea", timeout=20_000)


def post(page, text: str) -> None:
    page.fill("converse-muc textarea.chat-textarea", text)
    page.press("converse-muc textarea.chat-textarea", "Enter")


def archived(database: str, room: str) -> list[str]:
    with psycopg.connect(dbname=database, **PG_ADMIN, autocommit=True) as conn:
        rows = conn.execute("SELECT msg FROM tc_messages WHERE room_jid = %s ORDER BY msg_id", (room,))
        return [row[0] for row in rows]


def test_andy_signs_in_with_converse_joins_posts_and_bob_reads_it(browser_page, live_server, xworld, super_admin):
    page = browser_page
    andy = add_user(xworld, "andy", "imp-1a")
    bob = add_user(xworld, "bob", "imp-1b")
    room = f"ha-demo@conference-{xworld.nodes['imp-1a'].pk}-imp1.example.com"
    page.context.add_init_script(RECORD_VIOLATIONS)
    andy_log: list[str] = []
    bob_log: list[str] = []
    with NodesInThread(xworld.nodes["imp-1a"], xworld.nodes["imp-1b"]):
        browser_login(page, "sadmin")
        try:
            open_web_chat(page, andy, andy_log)
            page.wait_for_selector("converse-root .show-add-muc-modal", state="attached", timeout=20_000)
            page.screenshot(path="docs/screenshots/webchat-1-andy-signed-in.png")
            join_room(page, room, "andy")
            post(page, "hello from converse.js")
            page.wait_for_selector("converse-muc .chat-msg__text >> text=hello from converse.js")
            page.screenshot(path="docs/screenshots/webchat-2-andy-posted.png")
            # The room fits beside the control box: nothing runs past the page's right edge.
            assert page.evaluate("document.documentElement.scrollWidth <= document.documentElement.clientWidth")
            wait_for(
                lambda: any("hello from converse.js" in m for m in archived(xworld.database, room)), 20, what="archive"
            )

            bob_context = page.context.browser.new_context(
                base_url=live_server.url, viewport={"width": 1400, "height": 900}
            )
            bob_context.add_init_script(RECORD_VIOLATIONS)
            bob_page = bob_context.new_page()
            bob_page.set_default_timeout(15_000)
            browser_login(bob_page, "sadmin")
            open_web_chat(bob_page, bob, bob_log)
            join_room(bob_page, room, "bob")
            bob_page.wait_for_selector("converse-muc .chat-msg__text >> text=hello from converse.js")
            post(bob_page, "bob answers from 1B")
            bob_page.wait_for_selector("converse-muc .chat-msg__text >> text=bob answers from 1B")
            page.wait_for_selector("converse-muc .chat-msg__text >> text=bob answers from 1B")
            bob_page.screenshot(path="docs/screenshots/webchat-3-bob-on-1b.png")
            wait_for(
                lambda: any("bob answers from 1B" in m for m in archived(xworld.database, room)), 20, what="archive"
            )
            assert page.evaluate("window.cspViolations") == []
            assert bob_page.evaluate("window.cspViolations") == []
            assert not [line for line in andy_log + bob_log if "Content Security Policy" in line]
            assert not [line for line in andy_log + bob_log if "emoji.json" in line]
            bob_context.close()
        finally:
            with open("/tmp/webchat-console.log", "w") as log:
                log.write("\n".join([*andy_log, "--- bob ---", *bob_log]))
