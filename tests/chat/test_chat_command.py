"""``manage.py chat``: the command-line client, run as its own process against nodes whose
router and TC run in the test."""

from __future__ import annotations

from tests.chat.conftest import NodesInThread, manage


def test_chat_command_creates_a_room_posts_and_prints_each_acknowledgement(world):
    world.user("andy", "imp-1a")
    with NodesInThread(world.nodes["imp-1a"]):
        result = manage("chat", "andy", "--room", "ops", "--create", "--say", "hello", "--say", "world")
    room = f"ops@conference-{world.nodes['imp-1a'].pk}-imp1.example.com"
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["Signed in as andy@example.com on imp-1a.", f"ack 1 {room}", f"ack 2 {room}"]


def test_chat_command_follows_reconnect_to_the_users_node_and_shows_the_room_history(world):
    world.user("andy", "imp-1a")
    world.user("bob", "imp-1b")
    with NodesInThread(world.nodes["imp-1a"], world.nodes["imp-1b"]):
        manage("chat", "andy", "--room", "ops", "--create", "--say", "hello bob")
        room = f"ops@conference-{world.nodes['imp-1a'].pk}-imp1.example.com"  # a room of andy's node
        result = manage(
            "chat",
            "bob",
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
