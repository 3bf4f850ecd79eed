"""An operator, in headless Chromium, adds a merge job, validates it, merges, and watches the
job page update itself (htmx) until Completed, with a real Celery worker subprocess and real
PostgreSQL databases."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import expect

from dbmerge.choices import JobKind, JobState
from dbmerge.models import MergeJob
from messaging.models import DatabaseType, PersistentChatAssignment
from tests.conftest import browser_login
from tests.dbmerge.conftest import fill_generated, tc_stopped_on
from tests.dbmerge.test_pages import external

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
# Enough rows that the merge spans several polls of the page (one a second).
ROWS = 400_000

# Runs in the page: marks the document (a reload would lose the mark) and records the overall
# progress bar after every htmx swap.
WATCH_PROGRESS = """() => {
  window.sameDocument = true;
  window.percents = [];
  document.body.addEventListener('htmx:afterSwap', () => {
    const bar = document.querySelector('[role=progressbar][aria-label=Overall]');
    if (bar) window.percents.push(Number(bar.getAttribute('aria-valuenow')));
  });
}"""


@pytest.fixture
def per_node_databases(chat_db, build):
    """Two per-node databases with the same 50 rooms and colliding ids, an empty destination,
    the sources used by imp-1a and imp-1b, whose agents report TC stopped."""
    a, b, target = chat_db(), chat_db(), chat_db()
    fill_generated(a, ROWS)
    fill_generated(b, ROWS, offset=ROWS)
    entries = a.external(), b.external(), target.external()
    cluster = build.cluster()
    for name, entry in (("imp-1a", entries[0]), ("imp-1b", entries[1])):
        node = build.node(name, cluster)
        PersistentChatAssignment.objects.create(node=node, database=entry)
        tc_stopped_on(node)
    return entries


def label(entry) -> str:
    return f"{entry.hostname} – {entry.database_name} ({entry.get_db_type_display()})"


def test_operator_merges_in_the_browser_and_the_job_page_follows_the_merge_live_until_completed(
    browser_page, celery_worker, operator, per_node_databases
):
    source_1, source_2, target = per_node_databases
    page = browser_page
    browser_login(page, "operator")

    page.get_by_role("button", name="Messaging").click()
    page.get_by_role("link", name="External Database Jobs").click()
    page.get_by_role("link", name="Add New").click()
    page.select_option("select[name=db_type]", label="Postgres")
    page.select_option("select[name=source_1]", label=label(source_1))
    page.select_option("select[name=source_2]", label=label(source_2))
    page.select_option("select[name=target]", label=label(target))
    page.get_by_role("button", name="Validate Selected Tables").click()

    job = MergeJob.objects.get()
    page.wait_for_url(f"**{job.get_absolute_url()}")
    page.wait_for_selector("#job-state:has-text('Validated')", timeout=60_000)
    details = page.locator("#validation-details tbody tr")
    assert details.filter(has_text="Failed").count() == 0
    assert "Text Conference Manager is stopped on imp-1a" in page.inner_text("#validation-details")

    page.get_by_role("button", name="Merge Selected Tables").click()
    page.wait_for_url(f"**{job.get_absolute_url()}")
    page.evaluate(WATCH_PROGRESS)
    status_answers = []
    page.on("response", lambda r: status_answers.append(r.status) if r.url.endswith("/status/") else None)

    page.wait_for_selector("#job-state:has-text('Completed')", timeout=180_000)

    assert page.evaluate("window.sameDocument") is True  # updated in place, never reloaded
    percents = page.evaluate("window.percents")
    assert percents == sorted(percents)
    assert any(0 < percent < 100 for percent in percents), percents
    assert percents[-1] == 100
    assert page.get_attribute("[role=progressbar][aria-label=Overall]", "aria-valuenow") == "100"
    assert [row.split("\t") for row in page.locator("#merge-report tbody tr").all_inner_texts()] == [
        # table, rows in the destination before, read, written, duplicates removed, ids remapped
        ["tc_rooms", "0", "100", "50", "50", "0"],
        ["tc_users", "0", "0", "0", "0", "0"],
        ["tc_messages", "0", str(ROWS), str(ROWS), "0", str(ROWS // 2)],
        ["tc_msgarchive", "0", str(2 * ROWS), str(2 * ROWS), "0", str(ROWS)],
        ["tc_timelog", "0", str(2 * ROWS // 5), str(2 * ROWS // 5), "0", "0"],
        ["xcp_sequence", "1", "2", "0", "2", "0"],  # the destination already held tc_message_id
    ]
    assert "Next steps" in page.inner_text("#next-steps")

    # The answer that showed Completed was HTTP 286, and htmx asked no more after it.
    assert status_answers[-1] == 286
    answers = len(status_answers)
    page.wait_for_timeout(3_000)  # three polling intervals
    assert len(status_answers) == answers
    assert page.locator("#job-status[hx-get]").count() == 0

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    report = page.locator("#merge-report").bounding_box()
    bottom = report["y"] + report["height"] + 60  # with the line of totals under the table
    page.screenshot(
        path=str(SCREENSHOTS / "merge-job.png"), full_page=True, clip={"x": 0, "y": 0, "width": 1400, "height": bottom}
    )


def offered(page, name: str) -> list[str]:
    texts = page.locator(f"select[name={name}] option").all_inner_texts()
    return [text.strip() for text in texts if text != "---------"]


def test_the_add_page_offers_the_databases_of_the_chosen_type_and_merge_once_the_selection_validated(
    browser_page, operator
):
    from django.conf import settings

    from imp_admin.celery import app

    node1, node2, merged = (external(name) for name in ("tcnode1", "tcnode2", "tcmerged"))
    external("tcora", DatabaseType.ORACLE)
    external("tcsql", DatabaseType.MSSQL)
    job = MergeJob.objects.create(
        db_type="postgres",
        source_1=node1,
        source_2=node2,
        target=merged,
        database_name="tcmerged",
        state=JobState.VALIDATED,
    )
    postgres = sorted(label(entry) for entry in (node1, node2, merged))
    oracle = ["db.example.com – tcora (Oracle)"]
    page = browser_page
    browser_login(page, "operator")
    page.goto("/messaging/jobs/merge/add/")
    assert offered(page, "source_1") == postgres

    page.select_option("select[name=db_type]", label="Oracle")
    expect(page.locator("select[name=target] option")).to_have_count(2)
    assert offered(page, "source_1") == offered(page, "source_2") == offered(page, "target") == oracle

    page.select_option("select[name=db_type]", label="Postgres")
    expect(page.locator("select[name=target] option")).to_have_count(4)
    merge = page.get_by_role("button", name="Merge Selected Tables")
    assert merge.is_disabled()
    for name, entry in (("source_1", node1), ("source_2", node2), ("target", merged)):
        page.select_option(f"select[name={name}]", label=label(entry))
    page.wait_for_selector("#merge-selected:not([disabled])")
    assert f"merge job {job.pk}" in page.inner_text("#merge-validated-by")

    page.select_option("select[name=method]", value="dblink")  # not the validated selection
    page.wait_for_selector("#merge-selected[disabled]")
    page.select_option("select[name=method]", value="copy")
    page.wait_for_selector("#merge-selected:not([disabled])")

    try:
        merge.click()
        page.wait_for_url(f"**{job.get_absolute_url()}")
        job.refresh_from_db()
        assert (job.state, job.kind) == (JobState.PENDING, JobKind.MERGE)
    finally:  # no worker here: take the message back off this run's queue
        with app.connection_for_write() as connection:
            connection.SimpleQueue(settings.CELERY_TASK_DEFAULT_QUEUE).clear()
