"""``manage.py chat USER``: the command-line chat client.

Interactive by default (type ``/help``); ``--room R --say TEXT`` posts and exits, ``--tail``
prints the room's messages as they arrive. Signs in on the user's node with the user's password
(``--password``, else the ``CHAT_PASSWORD`` environment variable, else a prompt on a terminal),
follows "reconnect to node X" by itself and rejoins its rooms. ``--xmpp`` speaks standard XMPP
to the node's XMPP client port instead (``messaging.chat.xmpp_client``).
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import os
import shlex
import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from messaging.chat.client import ChatClient, ChatClientError, Disconnected
from topology.models import EndUser, Node

HELP = """Commands:
  /rooms                     rooms of your home node
  /create NAME [adhoc]       create a room (persistent unless 'adhoc')
  /join ROOM                 join a room and show its recent history
  /leave [ROOM]              leave the current room (or ROOM)
  /history [ROOM] [BEFORE]   earlier messages
  /who [ROOM]                who is in the room
  /quit                      sign out
Any other line is posted to the current room."""


class Command(BaseCommand):
    help = "Chat as USER: sign in on the user's node, join rooms, post, read history."

    def add_arguments(self, parser):
        parser.add_argument("user", help="User ID or JID, as on System > Users.")
        parser.add_argument(
            "--password",
            help="The user's chat password. Default: the CHAT_PASSWORD environment variable, else a prompt "
            "when standard input is a terminal (safer: a command line is visible to other local users).",
        )
        parser.add_argument("--node", help="Node to sign in on (default: the user's node).")
        parser.add_argument("--room", help="Room name or JID to join.")
        parser.add_argument("--create", action="store_true", help="Create --room first if it does not exist.")
        parser.add_argument("--say", action="append", default=[], help="Post TEXT to --room (repeatable), then exit.")
        parser.add_argument("--tail", action="store_true", help="Print --room's messages as they arrive.")
        parser.add_argument("--count", type=int, help="With --tail: exit after this many messages.")
        parser.add_argument("--timeout", type=float, default=60.0, help="Seconds to keep trying (default 60).")
        parser.add_argument(
            "--xmpp",
            action="store_true",
            help="Speak standard XMPP (slixmpp) to the node's XMPP client port instead of the JSON protocol; "
            "needs --room (a full room JID).",
        )
        parser.add_argument(
            "--ca",
            help="With --xmpp: the CA file that signs the node certificates (default: the demo CA, "
            "settings.DEMO_CA_DIR/ca.pem, when it exists; else the system's CAs).",
        )
        parser.add_argument(
            "--max-relogin-delay",
            type=float,
            help="Wait at most this long before signing in again after 'reconnect to node X'.",
        )

    def handle(
        self, *args, user, password, node, room, create, say, tail, count, timeout, max_relogin_delay, **options
    ):
        if (say or tail or create) and not room:
            raise CommandError("--say, --tail and --create need --room.")
        # Each line as it happens, also when the output goes to a file or a pipe (--tail).
        with contextlib.suppress(AttributeError, ValueError):
            sys.stdout.reconfigure(line_buffering=True)
        if options.get("xmpp"):
            self._xmpp(user, self._password(user, password), node, room, say, tail, count, timeout, options.get("ca"))
            return
        address = self._address(user, node)
        password = self._password(user, password)
        client = ChatClient(
            user, *address, password=password, max_relogin_delay=max_relogin_delay, give_up_after=timeout
        )
        try:
            asyncio.run(self._run(client, room, create, say, tail, count, timeout))
        except (ChatClientError, Disconnected, TimeoutError) as exc:
            raise CommandError(str(exc) or exc.__class__.__name__) from exc
        except KeyboardInterrupt:
            pass

    def _xmpp(self, user, password, node_name, room, say, tail, count, timeout, ca_file) -> None:
        """The same chat over standard XMPP (``messaging.chat.xmpp_client``)."""
        from django.conf import settings

        from messaging.chat import xmpp_client
        from messaging.chat.directory import xmpp_client_port

        if not room or "@" not in room:
            raise CommandError("--xmpp needs --room as a full room JID (name@conference-…).")
        found = EndUser.objects.filter(**({"jid__iexact": user} if "@" in user else {"user_id": user})).first()
        if found is None:
            raise CommandError(f"No user {user!r}.")
        node = Node.objects.filter(name=node_name).first() if node_name else found.serving_node
        if node is None or not xmpp_client_port(node):
            raise CommandError(f"{node or 'The user'} has no XMPP client port; set one on the node's page.")
        demo_ca = Path(getattr(settings, "DEMO_CA_DIR", "")) / "ca.pem"
        ca_file = ca_file or (str(demo_ca) if getattr(settings, "DEMO_CA_DIR", None) and demo_ca.exists() else None)
        try:
            asyncio.run(
                xmpp_client.run(
                    found.jid,
                    password,
                    node.agent_host,
                    xmpp_client_port(node),
                    room,
                    ca_file=ca_file,
                    say=say,
                    tail=tail,
                    count=count,
                    timeout=timeout,
                    show=self.stdout.write,
                )
            )
        except (PermissionError, TimeoutError) as exc:
            raise CommandError(str(exc)) from exc
        except KeyboardInterrupt:
            pass

    @staticmethod
    def _password(user: str, given: str | None) -> str:
        password = given or os.environ.get("CHAT_PASSWORD")
        if not password and sys.stdin.isatty():
            password = getpass.getpass(f"Password for {user}: ")
        if not password:
            raise CommandError(
                f"Give {user}'s password with --password or the CHAT_PASSWORD environment variable "
                "(or run on a terminal to be asked)."
            )
        return password

    @staticmethod
    def _address(user: str, node_name: str | None) -> tuple[str, int]:
        if node_name:
            node = Node.objects.filter(name=node_name).first()
            if node is None:
                raise CommandError(f"No node named {node_name!r}.")
        else:
            found = EndUser.objects.filter(**({"jid__iexact": user} if "@" in user else {"user_id": user})).first()
            if found is None or found.assigned_node is None:
                raise CommandError(f"No user {user!r} with an assigned node; give --node.")
            node = found.assigned_node
        return node.agent_host, node.agent_port

    async def _run(self, client, room, create, say, tail, count, timeout) -> None:
        await client.connect()
        self.stdout.write(f"Signed in as {client.jid} on {client.node}.")
        try:
            if room:
                if create:
                    try:
                        await client.create(room)
                    except ChatClientError as exc:
                        if exc.code != "room-exists":
                            raise
                joined = await client.join(room)
                room = joined["room"]
                if not say:
                    for message in joined["history"]:
                        self._print_message(message)
            if say:
                for text in say:
                    ack = await client.post(room, text, retry_for=timeout)
                    self.stdout.write(f"ack {ack['msg_id']} {ack['room']}")
                return
            if tail:
                await self._tail(client, room, count)
                return
            await self._interactive(client, room)
        finally:
            await client.close()

    async def _tail(self, client, room, count) -> None:
        seen = 0
        while count is None or seen < count:
            event = await client.events.get()
            if self._print_event(event, room):
                seen += 1
            if event.get("type") == "signed_out":
                return

    def _print_message(self, message: dict) -> None:
        self.stdout.write(f"[{message['msg_id']}] {message['nick']}: {message['body']}")

    def _print_event(self, event: dict, room: str | None) -> bool:
        kind = event.get("type")
        if kind == "message" and (room is None or event["room"] == room):
            self._print_message(event)
            return True
        if kind == "presence" and event["status"] == "nick":
            self.stdout.write(f"* {event['old_nick']} is now known as {event['nick']} in {event['room']}")
        elif kind == "presence":
            self.stdout.write(f"* {event['nick']} {event['status']} {event['room']}")
        elif kind == "private":
            self.stdout.write(f"[private] {event['nick']} in {event['room']}: {event['body']}")
        elif kind in ("invite", "decline"):
            what = "invited you to" if kind == "invite" else "declined your invitation to"
            reason = f" ({event['reason']})" if event.get("reason") else ""
            self.stdout.write(f"* {event['from']} {what} {event['room']}{reason}")
        elif kind == "reconnect":
            self.stdout.write(f"* reconnecting to {event['node']}: {event['reason']}")
        elif kind == "reconnected":
            self.stdout.write(f"* signed in again on {event['node']}")
        elif kind == "signed_out":
            self.stdout.write(f"* signed out: {event['reason']}")
        return False

    async def _interactive(self, client, room) -> None:
        self.stdout.write("Type /help for commands.")
        printer = asyncio.create_task(self._print_events(client))
        loop = asyncio.get_running_loop()
        try:
            while True:
                line = await loop.run_in_executor(None, sys.stdin.readline)
                if not line:
                    return
                line = line.strip()
                if not line:
                    continue
                try:
                    room = await self._command(client, room, line)
                except ChatClientError as exc:
                    self.stdout.write(f"! {exc.message}")
                if room == "/quit":
                    return
        finally:
            printer.cancel()

    async def _print_events(self, client) -> None:
        while True:
            self._print_event(await client.events.get(), None)

    async def _command(self, client, room, line) -> str | None:
        if not line.startswith("/"):
            if room is None:
                self.stdout.write("! Join a room first: /join ROOM")
            else:
                await client.post(room, line)
            return room
        words = shlex.split(line)
        verb, rest = words[0], words[1:]
        if verb == "/help":
            self.stdout.write(HELP)
        elif verb == "/quit":
            return "/quit"
        elif verb == "/rooms":
            for item in await client.list_rooms():
                self.stdout.write(f"{item['room']} ({item['type']}) {item['subject']}")
        elif verb == "/create" and rest:
            created = await client.create(rest[0], persistent="adhoc" not in rest[1:])
            self.stdout.write(f"* created {created['room']}")
        elif verb == "/join" and rest:
            joined = await client.join(rest[0])
            for message in joined["history"]:
                self._print_message(message)
            self.stdout.write(f"* in {joined['room']} with {', '.join(joined['occupants'])}")
            return joined["room"]
        elif verb == "/leave":
            target = rest[0] if rest else room
            if target:
                await client.leave(target)
                return None if target == room else room
        elif verb in ("/history", "/who") and not (rest or room):
            self.stdout.write("! Join a room first: /join ROOM")
        elif verb == "/history":
            target = rest[0] if rest else room
            paging = {"before": int(rest[1])} if len(rest) > 1 else {}
            for message in (await client.history(target, **paging))["messages"]:
                self._print_message(message)
        elif verb == "/who":
            for occupant in (await client.presence(rest[0] if rest else room))["occupants"]:
                self.stdout.write(f"  {occupant['nick']} ({occupant['user']})")
        else:
            self.stdout.write(HELP)
        return room
