"""Verify High Availability settings: the page and ``manage.py verify_ha``."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone

from messaging.models import ChatSettings, ExternalDatabaseCheck, PersistentChatAssignment
from messaging.verify import verify_ha
from tests.messaging.conftest import make_external_database
from topology.catalog import ServiceName, ServiceStatus
from topology.models import Node, Service
from topology.observed import TEXT_CONFERENCE_MANAGER

pytestmark = pytest.mark.django_db


@pytest.fixture
def group1(build):
    cluster = build.cluster("cluster1")
    a, b = build.node("imp-1a", cluster), build.node("imp-1b", cluster)
    build.group("group1", a, b, ha=True)
    return cluster, a, b


def report_service(node, status: str) -> None:
    """What a node agent writes: a fresh heartbeat and the Text Conference Manager's observed status."""
    now = timezone.now()
    Node.objects.filter(pk=node.pk).update(last_heartbeat=now, heartbeat_expires_at=now + timedelta(minutes=10))
    Service.objects.update_or_create(node=node, name=ServiceName.TEXT_CONFERENCE_MANAGER, defaults={"status": status})


def rows_by_check(rows):
    return {row.check: row for row in rows}


def test_an_unconfigured_group_fails_with_reasons_and_fix_links(group1):
    cluster, _, _ = group1
    rows = rows_by_check(verify_ha())
    assert rows["High availability enabled"].passed
    assert rows["Persistent chat enabled"].reason == "Persistent chat is off in cluster cluster1."
    assert rows["Persistent chat enabled"].fix_url == reverse("messaging:chatsettings_edit") + f"?cluster={cluster.pk}"
    assert rows["External database assigned to both nodes"].reason == "Unassigned: imp-1a, imp-1b."
    assert rows["Database reachability"].reason == "Not checked: the group has no single external database."
    assert rows["Cisco XCP Text Conference Manager on imp-1a"].reason == "Unknown — node agent not reporting."
    assert not any(row.passed for check, row in rows.items() if check != "High availability enabled")


def test_every_database_check_passes_once_the_flow_is_followed(group1, installed_database):
    cluster, a, b = group1
    ChatSettings.objects.create(cluster=cluster, enable_persistent_chat=True)
    PersistentChatAssignment.objects.create(node=a, database=installed_database)
    PersistentChatAssignment.objects.create(node=b, database=installed_database)
    rows = rows_by_check(verify_ha(live=True))
    for check in (
        "High availability enabled",
        "Persistent chat enabled",
        "External database assigned to both nodes",
        "Both nodes use the same database",
        "Database reachability",
        "Database connectivity",
        "Database schema verification",
    ):
        assert rows[check].passed, (check, rows[check].reason)
    # Honest until the node agents report service state.
    assert not rows["Cisco XCP Text Conference Manager on imp-1a"].passed


def test_each_group_checks_the_text_conference_manager_of_its_own_nodes_only(build):
    cluster = build.cluster("cluster1")
    a, b, c, d = (build.node(name, cluster) for name in ("imp-1a", "imp-1b", "imp-2a", "imp-2b"))
    build.group("group1", a, b, ha=True)
    build.group("group2", c, d, ha=True)
    for node in (a, b, d):
        report_service(node, ServiceStatus.STARTED)
    report_service(c, ServiceStatus.STOPPED)
    tc_rows = [(row.group, row.check, row.passed) for row in verify_ha() if TEXT_CONFERENCE_MANAGER in row.check]
    assert tc_rows == [
        ("group1", f"{TEXT_CONFERENCE_MANAGER} on imp-1a", True),
        ("group1", f"{TEXT_CONFERENCE_MANAGER} on imp-1b", True),
        ("group2", f"{TEXT_CONFERENCE_MANAGER} on imp-2a", False),
        ("group2", f"{TEXT_CONFERENCE_MANAGER} on imp-2b", True),
    ]


def test_a_group_without_ha_fails_the_ha_check(build):
    cluster = build.cluster()
    build.group("solo", build.node("imp-1a", cluster), build.node("imp-1b", cluster), ha=False)
    row = rows_by_check(verify_ha())["High availability enabled"]
    assert (row.passed, row.reason) == (False, "Enable High Availability is off for this group.")


def test_verify_queues_the_database_checks_and_returns_without_waiting_for_them(
    operator_client, group1, dropping_port, check_timeout, django_capture_on_commit_callbacks
):
    # A database whose host drops packets: checked inside the request, it would hold it for
    # the whole timeout and come back with a failed reachability row.
    _, a, b = group1
    silent = make_external_database("tcmadb", "tcuser", port=dropping_port)
    PersistentChatAssignment.objects.create(node=a, database=silent)
    PersistentChatAssignment.objects.create(node=b, database=silent)
    page = operator_client.get(reverse("messaging:verify_ha")).content.decode()
    assert f"{silent} has not been checked yet; run Verify, or Check now on its page." in page
    assert "hx-get" not in page  # nothing to wait for

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = operator_client.post(reverse("messaging:verify_ha"), follow=True)
    assert len(callbacks) == 1  # one check task, sent to the worker once the request commits
    assert not ExternalDatabaseCheck.objects.exists()  # the request itself checked nothing
    page = response.content.decode()
    assert (
        "Checking 1 external database on the worker; the database checks below fill in as each check finishes." in page
    )
    assert "Checking the external databases on the worker…" in page
    assert 'hx-get="/messaging/verify-ha/results/" hx-trigger="every 1s"' in page
    assert page.count('data-passed="false" data-checking>') == 3  # reachability, connectivity and schema rows
    results = operator_client.get(reverse("messaging:verify_ha_results"))
    assert results.status_code == 200 and "hx-get" in results.content.decode()


def test_the_results_stop_polling_once_no_database_check_runs(operator_client, group1):
    results = operator_client.get(reverse("messaging:verify_ha_results"))
    assert results.status_code == 286
    assert "hx-get" not in results.content.decode()
    assert 'data-check="External database assigned to both nodes" data-passed="false"' in results.content.decode()


def test_read_only_users_see_the_report_but_cannot_run_verify(read_only_client, group1):
    page = read_only_client.get(reverse("messaging:verify_ha")).content.decode()
    assert 'data-action="verify"' not in page and "High availability enabled" in page
    assert read_only_client.post(reverse("messaging:verify_ha")).status_code == 403


def test_nodes_of_a_group_using_different_databases_fail_the_same_database_check(group1):
    _, a, b = group1
    db1, db2 = make_external_database("tcdb1", "tcuser"), make_external_database("tcdb2", "tcuser")
    # Written directly, as a database left over from before HA was enabled would be.
    PersistentChatAssignment.objects.create(node=a, database=db1)
    PersistentChatAssignment.objects.create(node=b, database=db2)
    rows = rows_by_check(verify_ha())
    assert rows["External database assigned to both nodes"].passed
    same = rows["Both nodes use the same database"]
    assert (same.passed, same.reason) == (
        False,
        f"The nodes use different databases (imp-1a: {db1}, imp-1b: {db2}); "
        "with high availability both must use the same one.",
    )
    assert rows["Database reachability"].reason == "Not checked: the group has no single external database."


def test_the_text_conference_manager_check_follows_the_state_the_node_agents_report(group1):
    _, a, b = group1
    report_service(a, ServiceStatus.STARTED)
    report_service(b, ServiceStatus.STOPPED)
    rows = rows_by_check(verify_ha())
    started, stopped = rows[f"{TEXT_CONFERENCE_MANAGER} on imp-1a"], rows[f"{TEXT_CONFERENCE_MANAGER} on imp-1b"]
    assert (started.passed, started.reason) == (True, "Running.")
    assert (stopped.passed, stopped.reason) == (False, "Not running; start it in Control Center – Feature Services.")


def test_the_command_exits_zero_when_every_check_passes(group1, installed_database):
    cluster, a, b = group1
    ChatSettings.objects.create(cluster=cluster, enable_persistent_chat=True)
    PersistentChatAssignment.objects.create(node=a, database=installed_database)
    PersistentChatAssignment.objects.create(node=b, database=installed_database)
    for node in (a, b):
        report_service(node, ServiceStatus.STARTED)
    out = StringIO()
    call_command("verify_ha", stdout=out)  # returns: exit status 0 (a failure calls sys.exit(1))
    text = out.getvalue()
    assert "FAIL" not in text
    assert f"PASS  group1  Database schema verification: {installed_database}: " in text
    assert text.strip().endswith("9 passed, 0 failed.")


def test_the_command_exits_non_zero_and_prints_each_failure(group1):
    out = StringIO()
    with pytest.raises(SystemExit) as exc:
        call_command("verify_ha", stdout=out)
    assert exc.value.code == 1
    text = out.getvalue()
    assert "FAIL  group1  Persistent chat enabled: Persistent chat is off in cluster cluster1." in text
    assert "PASS  group1  High availability enabled: Enable High Availability is on." in text


def test_install_command_installs_then_says_nothing_to_do(empty_database):
    out = StringIO()
    call_command("install_tc_schema", str(empty_database.pk), stdout=out)
    assert "was installed" in out.getvalue()
    out = StringIO()
    call_command("install_tc_schema", empty_database.database_name, stdout=out)
    assert out.getvalue().strip() == f"{empty_database} already holds a valid TC schema; nothing was changed."


def test_install_command_refuses_an_unknown_database(db):
    with pytest.raises(CommandError, match="No external database 'nope'"):
        call_command("install_tc_schema", "nope")
