"""``bench/xmpp_load.py --smoke`` runs: a node agent, its XMPP client port, three lean clients
in a process of their own posting for two seconds; the bench prints its figures and the archive
holds what was acknowledged. It keeps the bench from rotting; it asserts no speed (STYLE.md).
ejabberd is not needed."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


def test_the_xmpp_load_bench_runs_against_a_node_and_prints_its_figures():
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "SQLITE_PATH", "CHAT_BUS_PREFIX", "REDIS_URL", "IMP_VAR_DIR"}
    }
    result = subprocess.run(
        [sys.executable, "bench/xmpp_load.py", "--smoke"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    line = re.search(
        r"imp +N= +3: +(\d+) messages/s acknowledged, +(\d+) deliveries/s, .* (\d+) errors, (\d+) messages archived",
        output,
    )
    assert line, output
    rate, deliveries, errors, archived = map(int, line.groups())
    assert rate > 0 and deliveries >= rate  # every post reaches the three occupants, its sender too
    assert errors == 0
    assert archived >= rate * 2  # the acknowledged posts of the two-second window are in the archive
    assert "| 3 | imp |" in output  # the table for docs/benchmarks.md
