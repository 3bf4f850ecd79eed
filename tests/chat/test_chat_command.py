"""``manage.py chat``: the command-line client, run as its own process against nodes whose
router and TC run in the test."""

from __future__ import annotations

from tests.chat.conftest import NodesInThread, manage
from tests.conftest import chat_password


def test_chat_command_creates_a_room_posts_and_prints_each_acknowledgement(world):
    world.user("andy", "imp-1a")
    with NodesInThread(world.nodes["imp-1a"]):
        result = manage(
            "chat",
            "andy",
            "--password",
            chat_password("andy"),
            "--room",
            "ops",
            "--create",
            "--say",
            "hello",
            "--say",
            "world",
        )
    room = f"ops@conference-{world.nodes['imp-1a'].pk}-imp1.example.com"
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["Signed in as andy@example.com on imp-1a.", f"ack 1 {room}", f"ack 2 {room}"]


def test_chat_command_follows_reconnect_to_the_users_node_and_shows_the_room_history(world):
    world.user("andy", "imp-1a")
    world.user("bob", "imp-1b")
    with NodesInThread(world.nodes["imp-1a"], world.nodes["imp-1b"]):
        manage("chat", "andy", "--password", chat_password("andy"), "--room", "ops", "--create", "--say", "hello bob")
        room = f"ops@conference-{world.nodes['imp-1a'].pk}-imp1.example.com"  # a room of andy's node
        result = manage(
            "chat",
            "bob",
            "--password",
            chat_password("bob"),
            "--node",
            "imp-1a",
            "--max-relogin-delay",
            "0",
            stdin=f"/join {room}\nhi andy\n/history\n/quit\n",
        )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "Signed in as bob@example.com on imp-1b."
    assert "[1] andy: hello bob" in lines
    assert "[2] bob: hi andy" in lines  # the history printed after posting


def test_chat_command_says_what_is_wrong_when_the_user_is_unknown(world):
    result = manage("chat", "nobody", "--room", "ops", "--say", "hi")
    assert result.returncode == 1
    assert "No user 'nobody' with an assigned node; give --node." in result.stderr


def test_chat_command_with_a_wrong_password_is_refused_and_says_so(world):
    world.user("andy", "imp-1a")
    with NodesInThread(world.nodes["imp-1a"]):
        wrong = manage("chat", "andy", "--password", "not-andys-password", "--room", "ops", "--say", "hi")
        missing = manage("chat", "andy", "--room", "ops", "--say", "hi", stdin="")
    assert wrong.returncode == 1
    assert "not-authorized: Wrong user ID or password." in wrong.stderr
    assert "not-andys-password" not in wrong.stderr + wrong.stdout
    assert missing.returncode == 1
    assert "Give andy's password with --password or the CHAT_PASSWORD environment variable" in missing.stderr


def test_chat_command_tail_prints_the_rooms_history_then_each_new_message_as_it_arrives(world):
    import os
    import subprocess
    import sys

    from django.conf import settings

    from tests.chat.conftest import bus_prefix_now

    world.user("andy", "imp-1a")
    world.user("bob", "imp-1b")
    with NodesInThread(world.nodes["imp-1a"], world.nodes["imp-1b"]):
        manage(
            "chat", "andy", "--password", chat_password("andy"), "--room", "ops", "--create", "--say", "before bob came"
        )
        room = f"ops@conference-{world.nodes['imp-1a'].pk}-imp1.example.com"
        env = {
            **os.environ,
            "SQLITE_PATH": settings.DATABASES["default"]["NAME"],
            "CHAT_BUS_PREFIX": bus_prefix_now(),
            "CHAT_PASSWORD": chat_password("bob"),  # the password from the environment, not the command line
        }
        tail = subprocess.Popen(
            [sys.executable, "manage.py", "chat", "bob", "--room", room, "--tail", "--count", "2"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=settings.BASE_DIR,
        )
        try:
            lines = [tail.stdout.readline().rstrip("\n") for _ in range(2)]
            assert lines == ["Signed in as bob@example.com on imp-1b.", "[1] andy: before bob came"]
            manage("chat", "andy", "--password", chat_password("andy"), "--room", room, "--say", "one", "--say", "two")
            out, err = tail.communicate(timeout=30)
        finally:
            if tail.poll() is None:
                tail.kill()
    assert tail.returncode == 0, err
    lines = out.splitlines()
    assert [line for line in lines if not line.startswith("*")] == ["[2] andy: one", "[3] andy: two"]
    assert f"* andy joined {room}" in lines  # room presence, as it happens


def test_chat_command_over_xmpp_follows_a_failover_and_the_fallback(xworld):
    """The README's failover story by hand with ``manage.py chat --xmpp`` (``scripts/chat
    --xmpp``): Andy chats interactively on imp-1a; 1A's Text Conference Manager fails and the
    SRM moves 1A's rooms and users to 1B; imp-1a ends Andy's stream with see-other-host, the
    client signs in on imp-1b, rejoins and catches up; after the Fallback it is back on imp-1a.
    Every line Andy and Bob said is printed once in Andy's terminal and stored once."""
    import asyncio
    import os
    import queue
    import subprocess
    import sys
    import threading

    import psycopg
    from django.conf import settings

    from tests.chat.conftest import bus_prefix_now
    from tests.chat.test_routing import move_rooms_and_users
    from tests.chat.xmpp import add_user, ca_file, password_of
    from tests.conftest import PG_ADMIN, wait_for

    add_user(xworld, "andy", "imp-1a")
    add_user(xworld, "bob", "imp-1b")
    node_a, node_b = xworld.nodes["imp-1a"], xworld.nodes["imp-1b"]
    room = f"ha-demo@conference-{node_a.pk}-imp1.example.com"
    xmpp = ["--xmpp", "--room", room, "--ca", ca_file()]
    printed: list[str] = []
    lines: queue.Queue = queue.Queue()

    def bob_says(body: str) -> None:
        result = manage("chat", "bob", "--password", password_of("bob"), *xmpp, "--say", body)
        assert result.returncode == 0, result.stderr

    def andy_printed(line: str, count: int = 1) -> None:
        def seen() -> bool:
            while not lines.empty():
                printed.append(lines.get())
            return printed.count(line) >= count

        try:
            wait_for(seen, 60, f"{line!r} in Andy's terminal")
        except AssertionError as exc:
            raise AssertionError(f"{exc}; it shows {printed}") from None

    with NodesInThread(node_a, node_b) as nodes:
        running_a, running_b = nodes.running

        def on_nodes(coroutine) -> None:
            asyncio.run_coroutine_threadsafe(coroutine, nodes.loop).result(30)

        env = {
            **os.environ,
            "SQLITE_PATH": settings.DATABASES["default"]["NAME"],
            "CHAT_BUS_PREFIX": bus_prefix_now(),
            "CHAT_PASSWORD": password_of("andy"),
        }
        andy = subprocess.Popen(
            [sys.executable, "manage.py", "chat", "andy", *xmpp],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=settings.BASE_DIR,
        )
        threading.Thread(target=lambda: [lines.put(line.rstrip("\n")) for line in andy.stdout], daemon=True).start()

        def andy_says(body: str) -> None:
            andy.stdin.write(body + "\n")
            andy.stdin.flush()
            andy_printed(f"<andy> {body}")  # printed on its reflection: stored

        try:
            andy_says("hello from imp-1a")
            bob_says("hello from imp-1b")
            andy_printed("<bob> hello from imp-1b")

            # Failover: TC on 1A fails, the SRM moves 1A's rooms and users to 1B.
            on_nodes(running_a.tc.stop())
            move_rooms_and_users("imp-1a", "imp-1b")
            on_nodes(running_b.tc.refresh_hosting())
            andy_printed(f"* andy is now served by imp-1b: signing in at 127.0.0.1:{node_b.xmpp_port}")
            bob_says("bob while andy moves")
            andy_printed("<bob> bob while andy moves")
            andy_says("andy now on imp-1b")

            # Fallback: TC on 1A again, the rooms and users go home.
            on_nodes(running_a.tc.start())
            move_rooms_and_users("imp-1a", None)
            on_nodes(running_b.tc.refresh_hosting())
            on_nodes(running_a.tc.refresh_hosting())
            andy_printed(f"* andy is now served by imp-1a: signing in at 127.0.0.1:{node_a.xmpp_port}")
            andy_says("andy back on imp-1a")
            bob_says("bob at the end")
            andy_printed("<bob> bob at the end")
            andy.stdin.write("/quit\n")
            andy.stdin.flush()
            assert andy.wait(30) == 0, andy.stderr.read()
        finally:
            if andy.poll() is None:
                andy.kill()
                andy.wait()

    said = [
        "<andy> hello from imp-1a",
        "<bob> hello from imp-1b",
        "<bob> bob while andy moves",
        "<andy> andy now on imp-1b",
        "<andy> andy back on imp-1a",
        "<bob> bob at the end",
    ]
    andy_printed(said[-1])
    assert [line for line in printed if not line.startswith("*")] == said  # each once, in order
    with psycopg.connect(dbname=xworld.database, **PG_ADMIN) as conn:
        bodies = [row[0] for row in conn.execute("SELECT body_string FROM tc_msgarchive ORDER BY msg_id")]
    assert bodies == [line.partition("> ")[2] for line in said]
