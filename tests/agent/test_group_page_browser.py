"""An operator, in a real browser, watches a failover and a fallback on the group page while
real node agents carry them out: the page follows the states by itself (htmx), no reload."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.agent.conftest import build_pair, state_of
from tests.conftest import browser_login, wait_for
from topology.catalog import ServiceName, ServiceStatus
from topology.choices import HAReason, HAState
from topology.models import Service

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
STATE_TIMEOUT = 30_000  # ms: the critical service delay is 2 s, the panel polls every 1–2 s


@pytest.fixture
def reference_pair(transactional_db, postgres):
    """imp-1a and imp-1b, as in the reference use case; the chat bus prefix is per test process."""
    return build_pair(postgres, ("imp-1a", "imp-1b"))


def press_on_control_center(page, node, action: str) -> None:
    """Feature Services of ``node``: select the Text Conference Manager, press ``action``."""
    tc = Service.objects.get(node=node, name=ServiceName.TEXT_CONFERENCE_MANAGER)
    page.goto(f"/serviceability/control-center/feature/?server={node.pk}")
    page.check(f"#service-{tc.pk}")
    page.get_by_role("button", name=action, exact=True).click()
    expect(page.get_by_text(f"{action} of Cisco XCP Text Conference Manager on {node} requested")).to_be_visible()


def test_operator_watches_the_group_page_follow_a_failover_then_presses_fallback(
    browser_page, reference_pair, agents, operator
):
    a, b, group = reference_pair["a"], reference_pair["b"], reference_pair["group"]
    agents(a.name)
    agents(b.name)
    wait_for(lambda: all(state_of(n.name) == (HAState.NORMAL, HAReason.NORMAL) for n in (a, b)), 30, "both Normal")

    group_page = browser_page
    browser_login(group_page, "operator")
    group_page.goto(f"/system/redundancy-groups/{group.pk}/")
    state_a, reason_a = group_page.locator("[data-node-state=imp-1a]"), group_page.locator("[data-node-reason=imp-1a]")
    state_b, reason_b = group_page.locator("[data-node-state=imp-1b]"), group_page.locator("[data-node-reason=imp-1b]")
    expect(state_a).to_have_text("Normal")
    expect(state_b).to_have_text("Normal")
    expect(group_page.locator("[data-server-actions=imp-1a] button")).to_have_text("Failover")
    group_page.evaluate("window.notReloaded = true")

    control_center = group_page.context.new_page()
    press_on_control_center(control_center, a, "Stop")

    expect(state_a).to_have_text("Failed Over with Critical Services Not Running", timeout=STATE_TIMEOUT)
    expect(reason_a).to_have_text("Critical Service Down")
    expect(state_b).to_have_text("Running in Backup Mode", timeout=STATE_TIMEOUT)
    expect(reason_b).to_have_text("Critical Service Down")
    expect(group_page.locator("[data-server-actions=imp-1a] button")).to_have_count(0)  # A's TC is down
    timeline = group_page.locator("[data-timeline]")
    expect(timeline).to_contain_text("Taking Over")
    expect(timeline).to_contain_text("Running in Backup Mode")

    # The operator starts TC on A again: A is Failed Over and offers Fallback.
    wait_for(
        lambda: Service.objects.get(node=a, name=ServiceName.TEXT_CONFERENCE_MANAGER).status == ServiceStatus.STOPPED,
        30,
        "the Stop carried out, so the Control Center has stopped polling",
    )
    press_on_control_center(control_center, a, "Start")
    expect(state_a).to_have_text("Failed Over", timeout=STATE_TIMEOUT)
    fallback = group_page.locator("[data-server-actions=imp-1a] button")
    expect(fallback).to_have_text("Fallback", timeout=STATE_TIMEOUT)
    expect(state_b).to_have_text("Running in Backup Mode")
    assert group_page.evaluate("window.notReloaded === true")  # every change came by htmx
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    group_page.screenshot(path=str(SCREENSHOTS / "failover.png"), full_page=True)

    group_page.once("dialog", lambda dialog: dialog.accept())
    fallback.click()
    expect(group_page.get_by_text("Fallback of imp-1a requested")).to_be_visible()
    expect(state_a).to_have_text("Normal", timeout=STATE_TIMEOUT)
    expect(state_b).to_have_text("Normal", timeout=STATE_TIMEOUT)
    expect(reason_a).to_have_text("Normal")
    expect(timeline).to_contain_text("Taking Back")
    expect(timeline).to_contain_text("Falling Back")
    expect(group_page.locator("[data-server-actions=imp-1a] button")).to_have_text("Failover")
