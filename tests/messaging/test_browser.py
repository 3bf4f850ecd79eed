"""An administrator, in a real browser, follows the reference task flow steps 1–3: adds a
PostgreSQL database, installs the schema, sees live status, assigns it to a redundancy
group and runs Verify."""

from __future__ import annotations

from pathlib import Path

import pytest

from messaging.models import ChatSettings, PersistentChatAssignment
from tests.conftest import browser_login
from tests.messaging.conftest import ROLE_PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


def test_administrator_adds_a_database_sees_it_pass_and_verifies_ha(
    browser_page, celery_worker, operator, build, tc_owner
):
    dbname, role = tc_owner
    cluster = build.cluster("cluster1")
    a, b = build.node("imp-1a", cluster), build.node("imp-1b", cluster)
    build.group("group1", a, b, ha=True)
    page = browser_page
    browser_login(page, "operator")

    page.get_by_role("button", name="Messaging").click()
    page.get_by_role("link", name="External Databases").click()
    page.get_by_role("link", name="Add New").click()
    page.fill("input[name=database_name]", dbname)
    page.select_option("select[name=db_type]", label="Postgres")
    assert page.input_value("input[name=port]") == "5432"
    page.fill("input[name=username]", role)
    page.fill("input[name=password]", ROLE_PASSWORD)
    page.fill("input[name=confirm_password]", ROLE_PASSWORD)
    page.fill("input[name=hostname]", "127.0.0.1")
    page.click("button[type=submit]")
    page.wait_for_selector("text=External Database Status")

    page.click("button[data-action=install]")
    page.wait_for_selector("text=on the worker; the status below follows it")
    # The worker installs, then checks; the panel polls until it has recorded both.
    page.wait_for_selector("#database-status:not([hx-get])", timeout=60_000)
    assert "Install schema: The TC schema (tc_* tables, xcp_sequence and their keys) was installed" in (
        page.locator("[data-status-note]").inner_text()
    )
    page.click("button[data-action=check]")
    page.wait_for_selector("#database-status:not([hx-get])", timeout=60_000)
    passed = page.locator('#database-status td[data-passed="true"]')
    assert passed.count() == 3
    assert page.locator("#database-status").get_by_text("✔ Passed").count() == 4  # with the privileges row
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "external-database.png"), full_page=True)

    page.get_by_role("button", name="Messaging").click()
    page.get_by_role("link", name="Group Chat and Persistent Chat").click()
    page.check("input[name=settings-enable_persistent_chat]")
    label = f"{dbname}@127.0.0.1:5432"
    page.select_option(f"select[name=assign-node_{a.pk}]", label=label)
    page.select_option(f"select[name=assign-node_{b.pk}]", label=label)
    page.click("button[type=submit]:not([name])")
    page.wait_for_selector("text=Restart Cisco XCP Text Conference Manager on these nodes")
    assert ChatSettings.objects.get(cluster=cluster).enable_persistent_chat
    assert set(PersistentChatAssignment.objects.values_list("database__database_name", flat=True)) == {dbname}

    page.get_by_role("button", name="Messaging").click()
    page.get_by_role("link", name="Verify High Availability Settings").click()
    page.click("button[data-action=verify]")
    # The worker checks the database; the results table polls until it has answered.
    page.wait_for_selector("text=Checking 1 external database on the worker")
    page.wait_for_selector("#verify-results:not([hx-get])", timeout=60_000)
    for check in (
        "High availability enabled",
        "Persistent chat enabled",
        "External database assigned to both nodes",
        "Both nodes use the same database",
        "Database reachability",
        "Database connectivity",
        "Database schema verification",
    ):
        assert page.locator(f'tr[data-check="{check}"]').get_attribute("data-passed") == "true", check
    # Honest: no node agent reports the Text Conference Manager yet.
    tc_row = page.locator('tr[data-check="Cisco XCP Text Conference Manager on imp-1a"]')
    assert tc_row.get_attribute("data-passed") == "false"
    assert "Unknown — node agent not reporting." in tc_row.inner_text()
