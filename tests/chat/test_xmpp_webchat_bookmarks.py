"""Bookmarks in Messaging > Web Chat: converse.js 14 (a complete XMPP client nobody here wrote) in
Chromium finds XEP-0402 on Andy's bare JID, bookmarks the room he joins with autojoin (it does so
for every room it enters), and after he signs out and in again it opens the room by itself, from
the bookmark the node kept in the config DB; the same in a new browser, with nothing cached.
Leaving the room there keeps the bookmark with autojoin off."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from messaging.models import Bookmark
from tests.chat.conftest import NodesInThread
from tests.chat.test_xmpp_muc_admin import alias_of
from tests.chat.test_xmpp_webchat import join_room, open_web_chat, post
from tests.chat.xmpp import add_user, password_of
from tests.conftest import browser_login, wait_for

pytestmark = [pytest.mark.browser]


def room_view(page, room: str):
    """converse.js's view of ``room``, open and entered (its message box is there)."""
    return page.locator(f"converse-muc[jid='{room}'] textarea.chat-textarea")


def sign_out(page) -> None:
    """Profile > Log out, then converse.js's own confirmation: the session ends and converse.js
    forgets what it held (``clear_cache_on_logout``); the embedded view is left empty, so the
    user loads the page again to sign in."""
    page.click("converse-root a.show-profile")
    page.locator("converse-profile-modal button.btn-danger").click()
    page.locator("converse-confirm-modal button[type=submit]").click()
    expect(page.locator("#webchat-connection")).to_be_hidden(timeout=20_000)
    expect(page.locator("converse-muc")).to_have_count(0)


def sign_in_again(page, user) -> None:
    page.reload()
    page.wait_for_selector("#converse-login-password")
    assert page.input_value("#converse-login-jid") == user.jid
    page.fill("#converse-login-password", password_of(user.user_id))
    page.click("converse-root button[type=submit]")


def test_a_room_andy_joined_opens_by_itself_when_he_signs_in_again(browser_page, live_server, xworld, super_admin):
    page = browser_page
    andy = add_user(xworld, "andy", "imp-1a")
    room = f"ops@{alias_of(xworld.nodes['imp-1a'])}"
    log: list[str] = []
    with NodesInThread(xworld.nodes["imp-1a"], xworld.nodes["imp-1b"]):
        browser_login(page, "sadmin")
        try:
            open_web_chat(page, andy, log)
            join_room(page, room, "andy")
            post(page, "before signing out")
            page.wait_for_selector("converse-muc .chat-msg__text >> text=before signing out")
            bookmark = wait_for(
                lambda: Bookmark.objects.filter(user=andy, room_jid=room, autojoin=True).first(),
                20,
                what="converse.js's bookmark of the room, with autojoin",
            )
            assert bookmark.nick == "andy"

            sign_out(page)
            sign_in_again(page, andy)
            expect(room_view(page, room)).to_be_visible(timeout=30_000)
            page.wait_for_selector("converse-muc .chat-msg__text >> text=before signing out", timeout=20_000)

            # Elsewhere: a new browser (no storage at all) signs Andy in; the room opens too.
            sign_out(page)  # one session per user: converse.js would not take the sign-out lying down
            elsewhere = page.context.browser.new_context(
                base_url=live_server.url, viewport={"width": 1400, "height": 900}
            )
            other = elsewhere.new_page()
            other.set_default_timeout(15_000)
            browser_login(other, "sadmin")
            open_web_chat(other, andy, log)
            expect(room_view(other, room)).to_be_visible(timeout=30_000)
            # Leaving the room (the rooms list's "Leave this groupchat") keeps the bookmark with
            # autojoin off: converse.js publishes it again, and the node replaces the item.
            other.locator(f"converse-root a.close-room[data-room-jid='{room}']").dispatch_event("click")
            other.locator("converse-confirm-modal button[type=submit]").click()
            wait_for(
                lambda: Bookmark.objects.filter(user=andy, room_jid=room, autojoin=False).exists(),
                20,
                what="the bookmark with autojoin off",
            )
            elsewhere.close()
        finally:
            with open("/tmp/webchat-bookmarks-console.log", "w") as out:
                out.write("\n".join(log))
    assert list(Bookmark.objects.filter(user=andy).values_list("room_jid", "autojoin", "nick")) == [
        (room, False, "andy")
    ]
    assert not [line for line in log if "bookmark" in line.lower() and line.startswith("error")]
