"""An administrator, in a real browser, creates a redundancy group and enables HA."""

from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.conftest import browser_login
from topology.models import RedundancyGroup

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


def test_administrator_creates_a_group_enables_ha_and_sees_it(browser_page, super_admin, build):
    page = browser_page
    cluster = build.cluster("cluster1")
    build.node("imp-1a", cluster, "publisher")
    build.node("imp-1b", cluster)

    browser_login(page, "sadmin")
    page.get_by_role("button", name="System").click()
    page.get_by_role("link", name="Presence Redundancy Groups").click()
    page.get_by_role("link", name="Add New").click()
    page.fill("input[name=name]", "subcluster1")
    page.fill("input[name=description]", "Nodes 1A and 1B")
    page.select_option("select[name=server1]", label="imp-1a")
    page.select_option("select[name=server2]", label="imp-1b")
    page.click("button[type=submit]")

    page.wait_for_selector("text=Presence redundancy group subcluster1 saved.")
    assert page.locator("[data-ha-enabled]").inner_text() == "Disabled"
    # The nodes have no agent yet: the page says so instead of inventing a state.
    assert page.locator("[data-node-state=imp-1a]").inner_text() == "Unknown"
    assert page.get_by_text("Node agent not reporting").count() == 2

    page.get_by_role("link", name="Edit").click()
    page.check("input[name=ha_enabled]")
    page.click("button[type=submit]")
    page.wait_for_selector("text=Presence redundancy group subcluster1 saved.")
    assert page.locator("[data-ha-enabled]").inner_text() == "Enabled"
    assert RedundancyGroup.objects.get(name="subcluster1").ha_enabled

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "group.png"), full_page=True)

    page.get_by_role("button", name="System").click()
    page.get_by_role("link", name="Presence Topology").click()
    assert page.locator("[data-node=imp-1a]").count() == 1
    assert page.get_by_text("HA enabled").count() == 1


def test_a_refused_group_shows_the_reason_next_to_the_field(browser_page, super_admin, build):
    page = browser_page
    cluster = build.cluster("cluster1")
    build.node("imp-1a", cluster)
    browser_login(page, "sadmin")
    page.goto("/system/redundancy-groups/add/")
    page.fill("input[name=name]", "solo")
    page.select_option("select[name=server1]", label="imp-1a")
    page.check("input[name=ha_enabled]")
    page.click("button[type=submit]")
    expect(page.get_by_text("High availability needs two nodes in the group; choose Server 2 first.")).to_be_visible()
    assert not RedundancyGroup.objects.exists()
