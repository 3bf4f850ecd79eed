"""The reference use cases driven by the load generator: 50 users through a failover and a
Fallback, and through a SIGKILL of 1A's agent, with real node agents, PostgreSQL and Redis.

``bench/chat_load.py failover`` builds its own throw-away config DB and chat database, posts
through the real protocol, reads the room's whole history back and exits non-zero if any
acknowledged message is missing or stored twice. The test reads its report as a user would.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


def run_load(scenario: str, users: int = 50) -> str:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "SQLITE_PATH", "CHAT_BUS_PREFIX"}}
    result = subprocess.run(
        [
            sys.executable,
            "bench/chat_load.py",
            "failover",
            "--users",
            str(users),
            "--rate",
            "1",
            "--scenario",
            scenario,
            "--warmup",
            "2",
            "--settle",
            "2",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=400,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    return output


def counts(output: str) -> dict[str, int]:
    match = re.search(r"acknowledged (\d+), stored (\d+), lost (\d+), duplicated (\d+)", output)
    assert match, output
    return dict(zip(("acknowledged", "stored", "lost", "duplicated"), map(int, match.groups()), strict=True))


@pytest.mark.parametrize("scenario", ["fallback", "kill"])
def test_fifty_users_lose_and_double_nothing_through_a_failover(scenario):
    output = run_load(scenario)
    figures = counts(output)
    assert f"{scenario}: 50 users posting" in output
    assert figures["lost"] == 0 and figures["duplicated"] == 0
    # Every user posted before, during and after: at least the warm-up's posts each.
    assert figures["acknowledged"] >= 100
    assert figures["stored"] >= figures["acknowledged"]
