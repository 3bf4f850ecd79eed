"""Two Server Recovery Managers racing to fail the same group over: exactly one wins.

Each contender is its own process (as each SRM runs in its own node agent) calling the
SRM's transition against the shared config DB at the same moment.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.agent.conftest import ROOT, agent_env
from topology.choices import HAReason, HAState
from topology.models import EndUser, HAAlarm, HATransition, Node

pytestmark = [pytest.mark.slow, pytest.mark.configdb]

CONTENDER = """
import os, sys, time, django
django.setup()
from topology.choices import HAReason
from topology.ha import transitions
from topology.models import Node
backup, failed, go = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
Node.objects.count()  # connected and warm before the start
print("ready", flush=True)
while not os.path.exists(go):
    time.sleep(0.001)
won = transitions.take_over(backup, failed, reason=HAReason.CRITICAL_SERVICE_DOWN)
print("won" if won else "lost", flush=True)
"""


def race(pairs: list[tuple[int, int]], tmp_path: Path) -> list[str]:
    """Start one contender per pair; once every one is set up and waiting, start them all at once."""
    go = tmp_path / "go"
    env = {**agent_env(), "DJANGO_SETTINGS_MODULE": "imp_admin.settings"}
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", CONTENDER, str(backup), str(failed), str(go)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for backup, failed in pairs
    ]
    for process in processes:  # readline returns "" if a contender died before it was ready
        assert process.stdout.readline().strip() == "ready", process.stderr.read()
    go.touch()
    results = []
    for process in processes:
        out, err = process.communicate(timeout=60)
        assert process.returncode == 0, err
        results.append(out.strip())
    return results


def _normal(*nodes: Node) -> None:
    Node.objects.filter(pk__in=[n.pk for n in nodes]).update(ha_state=HAState.NORMAL, ha_reason=HAReason.NORMAL)


def test_two_srms_taking_over_each_other_at_once_leave_exactly_one_node_failed_over(transactional_db, build, tmp_path):
    cluster = build.cluster()
    a, b = build.node("imp-1a", cluster), build.node("imp-1b", cluster)
    build.group("subcluster1", a, b, ha=True)
    EndUser.objects.create(user_id="andy", jid="andy@example.com", assigned_node=a)
    EndUser.objects.create(user_id="bob", jid="bob@example.com", assigned_node=b)
    _normal(a, b)

    results = race([(b.pk, a.pk), (a.pk, b.pk), (b.pk, a.pk), (a.pk, b.pk)], tmp_path)

    assert sorted(results) == ["lost", "lost", "lost", "won"]
    assert HATransition.objects.filter(to_state=HAState.TAKING_OVER).count() == 1
    assert HAAlarm.objects.count() == 1
    a, b = Node.objects.get(pk=a.pk), Node.objects.get(pk=b.pk)
    hosts = {a.rooms_hosted_by_id, b.rooms_hosted_by_id}
    # One node's rooms moved to the other; never both nodes' rooms, never a room on two nodes.
    assert hosts in ({None, a.pk}, {None, b.pk})
    backups = set(EndUser.objects.exclude(active_node=None).values_list("active_node", flat=True))
    assert len(backups) == 1
