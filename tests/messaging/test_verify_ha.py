"""Verify High Availability settings: the page and ``manage.py verify_ha``."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from messaging.models import ChatSettings, PersistentChatAssignment
from messaging.verify import verify_ha

pytestmark = pytest.mark.django_db


@pytest.fixture
def group1(build):
    cluster = build.cluster("cluster1")
    a, b = build.node("imp-1a", cluster), build.node("imp-1b", cluster)
    build.group("group1", a, b, ha=True)
    return cluster, a, b


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


def test_a_group_without_ha_fails_the_ha_check(build):
    cluster = build.cluster()
    build.group("solo", build.node("imp-1a", cluster), build.node("imp-1b", cluster), ha=False)
    row = rows_by_check(verify_ha())["High availability enabled"]
    assert (row.passed, row.reason) == (False, "Enable High Availability is off for this group.")


def test_the_page_lists_one_row_per_check_and_verify_refreshes_database_checks(operator_client, group1, empty_database):
    _, a, b = group1
    PersistentChatAssignment.objects.create(node=a, database=empty_database)
    PersistentChatAssignment.objects.create(node=b, database=empty_database)
    page = operator_client.get(reverse("messaging:verify_ha")).content.decode()
    assert f"{empty_database} has not been checked yet; run Check now on its page." in page
    response = operator_client.post(reverse("messaging:verify_ha"), follow=True)
    page = response.content.decode()
    assert 'data-check="Database connectivity" data-passed="true"' in page
    assert 'data-check="Database schema verification" data-passed="false"' in page
    assert "checks did not pass." in page


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
