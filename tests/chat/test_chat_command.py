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
