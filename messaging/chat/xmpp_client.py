"""``manage.py chat --xmpp``: the command-line client speaking standard XMPP (slixmpp), as any
XMPP client would: STARTTLS with the node's certificate checked against a CA, SCRAM, one room
(XEP-0045), its history on join, ``see-other-host`` followed to the node now serving the user,
and after each new sign-in a rejoin and an archive (MAM) catch-up after the last stanza-id seen.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import sys
from collections.abc import Callable

import slixmpp


class XmppChat(slixmpp.ClientXMPP):
    """One user in one room."""

    def __init__(self, jid: str, password: str, room: str, ca_file: str | None, show: Callable[[str], None]) -> None:
        super().__init__(jid, password)
        for plugin in ("xep_0030", "xep_0045", "xep_0059", "xep_0199", "xep_0313", "xep_0359"):
            self.register_plugin(plugin)
        if ca_file:
            self.ssl_context = ssl.create_default_context(cafile=ca_file)
        self.room = room
        self.nick = jid.partition("@")[0]
        self.show = show
        self.last_id: str | None = None
        self.seen: set[str] = set()
        self.reflected: dict[str, asyncio.Future] = {}
        self.joined = asyncio.Event()
        self.refused: asyncio.Future = asyncio.get_event_loop().create_future()
        self.add_event_handler("session_start", self._session_start)
        self.add_event_handler("groupchat_message", self._message)
        self.add_event_handler("failed_auth", self._failed)
        self.add_event_handler("stream_error", self._stream_error)
        self.add_event_handler("disconnected", lambda _: self.joined.clear())

    def _failed(self, stanza) -> None:
        if not self.refused.done():
            self.refused.set_result(f"{stanza['condition']}: {stanza['text']}")

    def _stream_error(self, error) -> None:
        if error["condition"] == "see-other-host":
            host, _, port = error["see_other_host"].rpartition(":")
            self.show(f"* {(error['text'] or 'served elsewhere').rstrip('.')}: signing in at {host}:{port}")
            if self.custom_address:  # slixmpp would reconnect to the address it was given
                self.custom_address = (host, int(port))

    async def _session_start(self, _event) -> None:
        resume_after = self.last_id
        await self.plugin["xep_0045"].join_muc_wait(
            self.room, self.nick, maxstanzas=None if resume_after is None else 0, timeout=30
        )
        if resume_after is not None:  # everything since the last message seen, from the archive
            after = resume_after
            while True:
                page = await self.plugin["xep_0313"].retrieve(jid=self.room, rsm={"max": 100, "after": after})
                results = page["mam"]["results"]
                for item in results:
                    inner = item["mam_result"]["forwarded"]["stanza"]
                    self._print(item["mam_result"]["id"], inner["from"].resource, inner["body"])
                if page["mam_fin"]["complete"] or not results:
                    break
                after = page["mam_fin"]["rsm"]["last"]
        self.joined.set()

    def _print(self, stanza_id: str, nick: str, body: str) -> None:
        if stanza_id and stanza_id in self.seen:
            return
        self.seen.add(stanza_id)
        self.last_id = stanza_id or self.last_id
        self.show(f"<{nick}> {body}")

    def _message(self, message) -> None:
        if message["from"].bare != self.room or not message["body"]:
            return
        self._print(message["stanza_id"]["id"], message["from"].resource, message["body"])
        future = self.reflected.pop(message["origin_id"]["id"] or message["id"], None)
        if future is not None and not future.done():
            future.set_result(message["stanza_id"]["id"])

    async def say(self, body: str, timeout: float) -> str:
        """Post and wait for the reflection (stored); sent again with the same origin-id if it
        does not come (a failover), so it is stored once."""
        origin_id = self.new_id()
        async with asyncio.timeout(timeout):
            while True:
                await self.joined.wait()
                future = self.reflected[origin_id] = asyncio.get_running_loop().create_future()
                message = self.make_message(mto=self.room, mbody=body, mtype="groupchat")
                message["id"] = origin_id
                message["origin_id"]["id"] = origin_id
                message.send()
                with contextlib.suppress(TimeoutError):
                    return await asyncio.wait_for(future, 5)


async def run(
    jid: str,
    password: str,
    host: str,
    port: int,
    room: str,
    *,
    ca_file: str | None,
    say: list[str],
    tail: bool,
    count: int | None,
    timeout: float,
    show: Callable[[str], None] = print,
) -> None:
    client = XmppChat(jid, password, room, ca_file, show)
    client.connect(host, port)
    try:
        joined = asyncio.ensure_future(client.joined.wait())
        done, _ = await asyncio.wait({joined, client.refused}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        if client.refused in done:
            raise PermissionError(f"Sign-in refused ({client.refused.result()}).")
        if joined not in done:
            raise TimeoutError(f"Could not sign in and join {room} within {timeout:g} s.")
        for body in say:
            await client.say(body, timeout)
        if tail:
            async with asyncio.timeout(None if count is None else timeout):
                while count is None or len(client.seen) < count:
                    await asyncio.sleep(0.1)
        elif not say:
            await _interactive(client, timeout)
    finally:
        client.disconnect()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(client.disconnected, 5)


async def _interactive(client: XmppChat, timeout: float) -> None:
    loop = asyncio.get_running_loop()
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line or line.strip() == "/quit":
            return
        if line.strip():
            await client.say(line.rstrip("\n"), timeout)
