"""Gajim's way to bookmarks, with Gajim's own XMPP library (nbxmpp), against a node's XMPP client
port: run by ``test_xmpp_bookmarks_gajim.py`` with a Python that has nbxmpp (PyGObject, GLib,
libsoup 3), which the project's environment does not. Prints one JSON object of what it saw.

    python gajim_bookmarks.py PORT USER PASSWORD ROOM

Gajim (``gajim/common/modules/bookmarks.py``) reads disco#info on the account's bare JID and
uses XEP-0402 (nbxmpp's NativeBookmarks) when it has ``#compat-pep`` and ``pubsub#config-node-max``
besides ``pubsub#publish-options``, XEP-0049 (PrivateBookmarks) without ``publish-options``.
"""

from __future__ import annotations

import json
import sys
import time

from gi.repository import GLib
from nbxmpp.client import Client
from nbxmpp.const import ConnectionProtocol, ConnectionType
from nbxmpp.namespaces import Namespace
from nbxmpp.protocol import JID
from nbxmpp.structs import BookmarkData, StanzaHandler

NODE_MAX = "http://jabber.org/protocol/pubsub#config-node-max"


def spin(done, timeout: float = 15) -> None:
    context = GLib.MainContext.default()
    deadline = time.monotonic() + timeout
    while not done() and time.monotonic() < deadline:
        context.iteration(False)
        time.sleep(0.01)


def call(method, *args, **kwargs):
    box: dict = {}

    def finished(task) -> None:
        try:
            box["result"] = task.finish()
        except Exception as exc:
            box["error"] = f"{type(exc).__name__}: {exc}"

    method(*args, callback=finished, **kwargs)
    spin(lambda: box)
    if "error" in box:
        raise RuntimeError(box["error"])
    return box.get("result")


def main(port: str, user: str, password: str, room: str) -> None:
    client = Client()
    client.set_domain("example.com")
    client.set_username(user)
    client.set_password(password)
    client.set_resource("gajim")
    client.set_custom_host(f"127.0.0.1:{port}", ConnectionProtocol.TCP, ConnectionType.START_TLS)
    client.set_ignore_tls_errors(True)  # the demo CA's node certificate; slixmpp's tests check it
    state: dict = {"events": []}
    client.subscribe("connected", lambda *_: state.setdefault("connected", True))
    client.subscribe("connection-failed", lambda *_: state.setdefault("failed", True))

    def event(_client, _stanza, properties) -> None:
        pubsub = properties.pubsub_event
        if pubsub is None or pubsub.node != Namespace.BOOKMARKS_1:
            return
        data = pubsub.data
        state["events"].append(
            {
                "self": properties.is_self_message,
                "retracted": pubsub.retracted,
                "id": pubsub.id,
                "bookmark": [str(data.jid), data.autojoin, data.nick] if data else None,
            }
        )

    client.register_handler(StanzaHandler(name="message", callback=event, ns=Namespace.PUBSUB_EVENT, priority=20))
    client.connect()
    spin(lambda: "connected" in state or "failed" in state)
    if "connected" not in state:
        print(json.dumps({"connected": False}))
        return
    info = call(client.get_module("Discovery").disco_info, f"{user}@example.com")
    features = set(info.features)
    chosen = (
        "PrivateBookmarks"
        if Namespace.PUBSUB_PUBLISH_OPTIONS not in features
        else "NativeBookmarks"
        if Namespace.BOOKMARKS_COMPAT_PEP in features and NODE_MAX in features
        else "PEPBookmarks"
        if Namespace.BOOKMARK_CONVERSION in features
        else "PrivateBookmarks"
    )
    native = client.get_module("NativeBookmarks")
    before = call(native.request_bookmarks)
    call(native.store_bookmarks, [BookmarkData(jid=JID.from_string(room), name="Ops", nick="Andy", autojoin=True)])
    spin(lambda: state["events"], 10)  # store_bookmarks does not wait for the publish's answer
    stored = call(native.request_bookmarks)
    private = call(client.get_module("PrivateBookmarks").request_bookmarks)
    call(native.retract_bookmark, JID.from_string(room))
    spin(lambda: len(state["events"]) > 1, 10)
    after = call(native.request_bookmarks)

    def listed(bookmarks) -> list:
        return [[str(b.jid), b.name, b.nick, b.autojoin] for b in bookmarks]

    print(
        json.dumps(
            {
                "connected": True,
                "module": chosen,
                "before": listed(before),
                "stored": listed(stored),
                "private": listed(private),
                "after": listed(after),
                "events": state["events"],
            }
        )
    )
    client.disconnect()
    spin(lambda: False, 0.5)


if __name__ == "__main__":
    main(*sys.argv[1:5])
