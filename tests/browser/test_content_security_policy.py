"""The console under its Content-Security-Policy, in Chromium: no page breaks the policy."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User

from tests.conftest import PASSWORD, browser_login
from topology.models import Node, RedundancyGroup, Service

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Runs before any script of the page: records every violation the page reports.
RECORD_VIOLATIONS = """
window.cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.cspViolations.push(event.violatedDirective + " " + (event.blockedURI || "inline"));
});
"""


def watch(page) -> list[str]:
    """Console messages about the policy (Chromium logs each refusal there)."""
    messages: list[str] = []
    page.on(
        "console",
        lambda message: messages.append(message.text) if "Content Security Policy" in message.text else None,
    )
    page.context.add_init_script(RECORD_VIOLATIONS)
    return messages


def visit(page, url: str) -> list[str]:
    response = page.goto(url)
    assert response.status == 200, f"{url} answered {response.status}"
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert "unsafe-inline" not in response.headers["content-security-policy"]
    page.wait_for_load_state("networkidle")
    return page.evaluate("window.cspViolations")


def test_the_main_pages_report_no_policy_violation(browser_page, demo_topology, super_admin):
    page = browser_page
    messages = watch(page)
    violations = {"/login/": visit(page, "/login/")}
    browser_login(page, "sadmin")

    menu = page.eval_on_selector_all(
        "nav a.dropdown-item, nav a.nav-link[href^='/']", "links => links.map(a => a.pathname)"
    )
    group = RedundancyGroup.objects.get(name="subcluster1")
    node = Node.objects.get(name="imp-1a")
    pages = [
        "/",
        *menu,
        group.get_absolute_url(),
        node.get_absolute_url(),
        "/system/redundancy-groups/add/",
        "/messaging/external-databases/add/",
        "/messaging/jobs/merge/add/",
        "/lockouts/",
        "/api/docs/",
    ]
    assert len(set(pages)) >= 20, pages
    for url in dict.fromkeys(pages):
        violations[url] = visit(page, url)

    assert {url: found for url, found in violations.items() if found} == {}
    assert messages == []


def test_the_django_admin_reports_no_policy_violation(browser_page, demo_topology):
    User.objects.create_user("root", password=PASSWORD, is_staff=True, is_superuser=True)
    page = browser_page
    messages = watch(page)
    page.goto("/admin/login/")
    page.fill("input[name=username]", "root")
    page.fill("input[name=password]", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url("**/admin/")
    user = User.objects.get(username="root")
    for url in ("/admin/", "/admin/auth/user/", f"/admin/auth/user/{user.pk}/change/", "/admin/axes/accessattempt/"):
        assert visit(page, url) == [], url
    assert messages == []


def test_a_button_that_asks_first_does_nothing_when_the_question_is_dismissed(browser_page, demo_topology, super_admin):
    page = browser_page
    watch(page)
    browser_login(page, "sadmin")
    node = Node.objects.get(name="imp-1a")
    page.goto(f"/serviceability/control-center/feature/?server={node.pk}")
    page.locator("input[type=radio][name=service]").first.check()
    asked = []
    page.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.dismiss()))
    before = list(Service.objects.filter(node=node).values_list("request_number", flat=True))
    page.get_by_role("button", name="Restart").click()
    page.wait_for_load_state("networkidle")
    assert asked == ["Restarting the selected service may take a while. Continue?"]
    assert list(Service.objects.filter(node=node).values_list("request_number", flat=True)) == before
    assert page.evaluate("window.cspViolations") == []
