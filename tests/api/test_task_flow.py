"""The task-flow script of docs/api.md, run as written against a live console with real node
agents, a real Celery worker and a real PostgreSQL: from an empty external database to a
verified high-availability group with the Text Conference Manager running, through a
failover and a Fallback."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from api.models import ApiToken
from tests.agent.conftest import FAST_SRM, fast_srm
from tests.conftest import PG_ADMIN
from tests.scenario import free_port
from topology.catalog import ControlAction, ServiceName
from topology.choices import HAState
from topology.models import Cluster, EndUser, Node, NodeServiceParameters, RedundancyGroup, Service

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


def docs_script() -> str:
    text = (ROOT / "docs" / "api.md").read_text()
    return re.search(r"<!-- task-flow-script -->\n```python\n(.*?)\n```", text, re.S).group(1)


@pytest.fixture
def before_high_availability(transactional_db):
    """cluster1 with two nodes in subcluster1, high availability off, no database assigned,
    persistent chat off and the Text Conference Manager stopped on both: where the flow starts."""
    suffix = uuid.uuid4().hex[:6]
    cluster = Cluster.objects.create(name="cluster1", cluster_id="imp1", domain="example.com")
    nodes = [
        Node.objects.create(name=f"imp-1{x}-{suffix}", cluster=cluster, ip_address="127.0.0.1", agent_port=free_port())
        for x in "ab"
    ]
    for node in nodes:
        NodeServiceParameters.objects.create(node=node, client_relogin_lower_limit=1, client_relogin_upper_limit=1)
        Service.objects.get(node=node, name=ServiceName.TEXT_CONFERENCE_MANAGER).request(ControlAction.STOP)
    group = RedundancyGroup.objects.create(name="subcluster1", cluster=cluster)
    group.set_servers(*nodes)
    EndUser.objects.create(user_id="andy", jid="andy@example.com", assigned_node=nodes[0])
    # The script has time to start TC once it turns HA on before the SRM counts it as down.
    fast_srm(cluster, critical_service_delay=max(60, FAST_SRM["critical_service_delay"]))
    return nodes


def test_docs_task_flow_script_runs_against_a_live_console(
    live_server, before_high_availability, agents, celery_worker, postgres, super_admin
):
    for node in before_high_availability:
        agents(node.name)
    _, token = ApiToken.issue(super_admin, "task flow")
    script = docs_script()
    env = {
        **os.environ,
        "IMP_URL": live_server.url,
        "IMP_TOKEN": token,
        "IMP_GROUP": "subcluster1",
        "DB_HOST": PG_ADMIN["host"],
        "DB_PORT": str(PG_ADMIN["port"]),
        "DB_NAME": postgres.database("imp_flow"),
        "DB_USER": PG_ADMIN["user"],
        "DB_PASSWORD": "flow-password",
    }
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    print(result.stdout, result.stderr)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "task flow complete" in result.stdout
    assert "Text Conference Manager on" in result.stdout  # Verify's TC rows were printed, passed
    group = RedundancyGroup.objects.get(name="subcluster1")
    assert group.ha_enabled
    assert [n.ha_state for n in Node.objects.filter(redundancy_group=group)] == [HAState.NORMAL, HAState.NORMAL]
    assert group.server_actions.filter(action="failover", status="applied").exists()
    assert group.server_actions.filter(action="fallback", status="applied").exists()
    assert not EndUser.objects.filter(active_node__isnull=False).exists()
