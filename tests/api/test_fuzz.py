"""Schemathesis, pinned in requirements.txt, fuzzes every operation of the published schema
against a live server with a super administrator's token: generated valid and invalid input,
no 5xx, every response as the schema says, every 4xx with a readable error.

Bounded: the fuzzing phase with ``API_FUZZ_EXAMPLES`` (default 15) examples per operation, so
the run ends in a few minutes on two cores. ``API_FUZZ_PHASES=coverage,fuzzing`` adds
schemathesis' coverage phase (boundary and invalid values of every field; about ten minutes).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from django.core.management import call_command

from api.models import ApiToken
from api.throttling import TokenRateThrottle
from dbmerge.models import MergeJob
from messaging.database_assignment import assign
from messaging.models import ChatAlias, GroupChatAdministrator
from tests.chat.conftest import external_database, install_schema
from topology.models import AlarmRecipient, Cluster, Node

pytestmark = [pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_schema_conformance",
        "response_headers_conformance",
        "readable_error",
    ]
)


@pytest.fixture
def fuzz_world(transactional_db, postgres, super_admin):
    """The demo topology, two real external databases (one with the TC schema, assigned), and one
    of every other object, so that the fuzzer's small ids find something."""
    from io import StringIO

    call_command("load_demo", admin_password="demo-admin-password", stdout=StringIO())
    name = postgres.database("imp_fuzz")
    install_schema(postgres, name)
    database = external_database(name)
    other = external_database(postgres.database("imp_fuzz"))
    nodes = {n.name: n for n in Node.objects.all()}
    assign({nodes["imp-1a"]: database, nodes["imp-1b"]: database})
    ChatAlias.objects.create(alias="chat.example.org", node=nodes["imp-1a"])
    GroupChatAdministrator.objects.create(cluster=Cluster.objects.first(), im_address="boss@example.com")
    MergeJob.objects.create(
        db_type="postgres", source_1=database, source_2=other, target=other, database_name=other.database_name
    )
    AlarmRecipient.objects.create(email="oncall@example.com")
    _, token = ApiToken.issue(super_admin, "schemathesis")
    return token


def purge_test_queue() -> None:
    """Drop the tasks the fuzzer queued (status checks, merge jobs): no worker runs in this test."""
    from imp_admin.celery import app

    with app.connection_for_write() as connection:
        connection.default_channel.queue_purge(os.environ["CELERY_TASK_DEFAULT_QUEUE"])


def test_schemathesis_finds_no_server_error_and_no_schema_violation(live_server, fuzz_world, monkeypatch, tmp_path):
    monkeypatch.setattr(TokenRateThrottle, "THROTTLE_RATES", {"token": "100000/minute"})
    examples = os.environ.get("API_FUZZ_EXAMPLES", "15")
    # The schema as the live server publishes it, fetched with a patient timeout: on a busy
    # machine generating it takes longer than schemathesis' own 10 s for loading one.
    published = requests.get(
        f"{live_server.url}/api/schema/", headers={"Authorization": f"Bearer {fuzz_world}"}, timeout=120
    )
    assert published.status_code == 200
    schema_file = tmp_path / "schema.yaml"
    schema_file.write_bytes(published.content)
    env = {**os.environ, "SCHEMATHESIS_HOOKS": "tests.api.schemathesis_hooks", "PYTHONPATH": str(ROOT)}
    command = [
        str(Path(sys.executable).parent / "schemathesis"),
        "run",
        str(schema_file),
        "--url",
        live_server.url,
        "--header",
        f"Authorization: Bearer {fuzz_world}",
        "--checks",
        CHECKS,
        "--phases",
        os.environ.get("API_FUZZ_PHASES", "fuzzing"),
        "--max-examples",
        examples,
        "--seed",
        os.environ.get("API_FUZZ_SEED", "20261207"),
        "--workers",
        "1",
        "--request-timeout",
        "30",
        "--no-color",
        "--suppress-health-check",
        "all",
        "--report",
        "junit",
        "--report-dir",
        str(tmp_path),
    ]
    try:
        result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1500)
    finally:
        purge_test_queue()
    report = Path(os.environ["IMP_VAR_DIR"]) / f"schemathesis-{os.getpid()}.txt"
    report.write_text(result.stdout + result.stderr)
    summary = result.stdout[result.stdout.find("FAILURES") :] if "FAILURES" in result.stdout else result.stdout[-3000:]
    assert result.returncode == 0, (
        f"schemathesis (whole output in {report}):\n{summary[-12000:]}{result.stderr[-2000:]}"
    )
