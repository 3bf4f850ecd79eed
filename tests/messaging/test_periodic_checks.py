"""The periodic refresh (``check_all_external_databases``): which databases it queues again."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from messaging.models import CheckRunState, ExternalDatabase
from messaging.tasks import check_all_external_databases, stale_after
from tests.messaging.conftest import make_external_database

pytestmark = pytest.mark.django_db


def database_in(state, requested_ago=None, started_ago=None) -> ExternalDatabase:
    now = timezone.now()
    database = make_external_database(f"tcmadb_{ExternalDatabase.objects.count()}", "tcuser")
    ExternalDatabase.objects.filter(pk=database.pk).update(
        check_state=state,
        check_requested_at=None if requested_ago is None else now - requested_ago,
        check_started_at=None if started_ago is None else now - started_ago,
    )
    return ExternalDatabase.objects.get(pk=database.pk)


def test_the_refresh_skips_recent_checks_and_queues_lost_and_idle_ones(
    operator_client, check_timeout, django_capture_on_commit_callbacks
):
    stale = stale_after() + timedelta(seconds=1)
    recent = timedelta(seconds=1)
    fresh_queued = database_in(CheckRunState.QUEUED, requested_ago=recent)
    # Queued long ago (a busy worker), started a moment ago: still its worker's.
    fresh_running = database_in(CheckRunState.RUNNING, requested_ago=stale * 3, started_ago=recent)
    lost_queued = database_in(CheckRunState.QUEUED, requested_ago=stale)
    lost_running = database_in(CheckRunState.RUNNING, requested_ago=stale * 2, started_ago=stale)
    idle = database_in(CheckRunState.IDLE)
    page = operator_client.get(lost_running.get_absolute_url()).content.decode()
    assert "Checking…" not in page  # a lost check no longer shows as running

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        queued = check_all_external_databases()

    assert queued == 3 and len(callbacks) == 3
    for database in (fresh_queued, fresh_running):
        after = ExternalDatabase.objects.get(pk=database.pk)
        assert (after.check_state, after.check_requested_at) == (database.check_state, database.check_requested_at)
    for database in (lost_queued, lost_running, idle):
        after = ExternalDatabase.objects.get(pk=database.pk)
        assert after.check_state == CheckRunState.QUEUED
        assert timezone.now() - after.check_requested_at < timedelta(seconds=5)
        status = operator_client.get(reverse("messaging:externaldatabase_status", args=[database.pk]))
        assert status.status_code == 200 and "Checking… (Queued)" in status.content.decode()


def test_check_now_takes_over_a_lost_check(operator_client, django_capture_on_commit_callbacks):
    lost = database_in(CheckRunState.RUNNING, requested_ago=stale_after() * 2, started_ago=stale_after() * 2)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = operator_client.post(reverse("messaging:externaldatabase_check", args=[lost.pk]), follow=True)
    assert len(callbacks) == 1
    assert f"Checking {lost}; the status below refreshes when the checks finish." in response.content.decode()


def test_a_check_that_finishes_after_an_edit_does_not_bring_back_old_results(
    operator_client, installed_database, django_capture_on_commit_callbacks
):
    from messaging.dbcheck import check_and_record, record, run_checks
    from messaging.status import save_database

    database = installed_database
    with django_capture_on_commit_callbacks(execute=False):
        operator_client.post(reverse("messaging:externaldatabase_check", args=[database.pk]))
    claimed = ExternalDatabase.objects.get(pk=database.pk)
    claimed_request = claimed.check_requested_at
    results = run_checks(claimed)  # the worker runs the old settings ...
    claimed.hostname = "localhost"
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        save_database(claimed)  # ... while the administrator edits the host
    assert len(callbacks) == 1
    # The old run now records: its results describe the old host and are dropped.
    assert not record(database, results, requested_at=claimed_request)
    after = ExternalDatabase.objects.get(pk=database.pk)
    assert after.check_state == CheckRunState.QUEUED and not after.checks.exists()
    page = operator_client.get(database.get_absolute_url()).content.decode()
    assert 'data-passed="true"' not in page and "Checking… (Queued)" in page
    # The newer request's check records as usual.
    check_and_record(after, requested_at=after.check_requested_at)
    assert operator_client.get(database.get_absolute_url()).content.decode().count('data-passed="true"') == 3
