"""Check now runs on a real Celery worker (a subprocess sharing the test config DB)."""

from __future__ import annotations

import pytest
from django.urls import reverse

from messaging.models import CheckRunState, ExternalDatabase, ExternalDatabaseCheck
from tests.conftest import wait_for, worker_log

pytestmark = [pytest.mark.slow]


def test_check_now_runs_on_the_worker_and_records_three_passing_checks(celery_worker, installed_database, operator):
    from django.test import Client

    client = Client()
    client.force_login(operator)
    response = client.post(reverse("messaging:externaldatabase_check", args=[installed_database.pk]), follow=True)
    assert response.redirect_chain[-1][1] == 302
    # The worker may already be running it; what the operator is told does not depend on that.
    assert f"Checking {installed_database}; the status below refreshes when the checks finish." in (
        response.content.decode()
    )

    try:
        wait_for(lambda: ExternalDatabase.objects.get(pk=installed_database.pk).last_checked_at, 60.0, "the check")
    except AssertionError:
        pytest.fail("the worker recorded no check:\n" + worker_log(celery_worker))
    checks = dict(ExternalDatabaseCheck.objects.filter(database=installed_database).values_list("name", "passed"))
    assert checks == {"reachability": True, "connectivity": True, "schema": True, "privileges": True}
    assert ExternalDatabase.objects.get(pk=installed_database.pk).check_state == CheckRunState.IDLE
    status = client.get(reverse("messaging:externaldatabase_status", args=[installed_database.pk]))
    assert status.status_code == 286
    assert status.content.decode().count('data-passed="true"') == 3


def test_an_edited_connection_is_checked_again_on_the_worker(celery_worker, installed_database, operator):
    from django.test import Client

    from messaging.dbcheck import record, run_checks

    record(installed_database, run_checks(installed_database))
    client = Client()
    client.force_login(operator)
    form = {
        "database_name": installed_database.database_name,
        "db_type": "postgres",
        "username": installed_database.username,
        "hostname": "localhost",
        "port": "5432",
    }
    response = client.post(reverse("messaging:externaldatabase_edit", args=[installed_database.pk]), form)
    assert response.status_code == 302

    def rechecked():
        database = ExternalDatabase.objects.get(pk=installed_database.pk)
        return database.last_checked_at and database.check_state == CheckRunState.IDLE

    try:
        wait_for(rechecked, 60.0, "the check after the edit")
    except AssertionError:
        pytest.fail("the worker recorded no check:\n" + worker_log(celery_worker))
    reachability = ExternalDatabaseCheck.objects.get(database=installed_database, name="reachability")
    assert reachability.message == "localhost port 5432 accepts connections."
    status = client.get(reverse("messaging:externaldatabase_status", args=[installed_database.pk]))
    assert status.status_code == 286
    page = status.content.decode()
    assert page.count('data-passed="true"') == 3
    assert "The connection settings changed" not in page


def test_the_periodic_refresh_rechecks_a_check_whose_worker_died_and_skips_a_fresh_one(
    celery_worker, installed_database, operator
):
    from datetime import timedelta

    from django.test import Client
    from django.utils import timezone

    from messaging.tasks import check_all_external_databases
    from tests.messaging.conftest import make_external_database

    long_ago = timezone.now() - timedelta(hours=1)
    ExternalDatabase.objects.filter(pk=installed_database.pk).update(
        check_state=CheckRunState.RUNNING, check_requested_at=long_ago, check_started_at=long_ago
    )
    fresh = make_external_database("queued_elsewhere", "tcuser")
    queued_at = timezone.now()
    ExternalDatabase.objects.filter(pk=fresh.pk).update(check_state=CheckRunState.QUEUED, check_requested_at=queued_at)

    assert check_all_external_databases() == 1  # the task itself, as celery beat runs it

    try:
        wait_for(
            lambda: ExternalDatabase.objects.get(pk=installed_database.pk).check_state == CheckRunState.IDLE,
            60.0,
            "the stale check to run again",
        )
    except AssertionError:
        pytest.fail("the worker recorded no check:\n" + worker_log(celery_worker))
    client = Client()
    client.force_login(operator)
    status = client.get(reverse("messaging:externaldatabase_status", args=[installed_database.pk]))
    assert status.status_code == 286
    assert status.content.decode().count('data-passed="true"') == 3
    fresh.refresh_from_db()
    assert (fresh.check_state, fresh.check_requested_at) == (CheckRunState.QUEUED, queued_at)
    assert not fresh.checks.exists()


def test_verify_on_the_page_is_answered_by_the_worker(celery_worker, installed_database, operator, build):
    from django.test import Client

    from messaging.models import PersistentChatAssignment

    cluster = build.cluster("cluster1")
    a, b = build.node("imp-1a", cluster), build.node("imp-1b", cluster)
    build.group("group1", a, b, ha=True)
    PersistentChatAssignment.objects.create(node=a, database=installed_database)
    PersistentChatAssignment.objects.create(node=b, database=installed_database)
    client = Client()
    client.force_login(operator)

    response = client.post(reverse("messaging:verify_ha"), follow=True)
    assert "Checking 1 external database on the worker" in response.content.decode()

    def answered():
        results = client.get(reverse("messaging:verify_ha_results"))
        return results if results.status_code == 286 else None

    try:
        results = wait_for(answered, 60.0, "the worker's database checks")
    except AssertionError:
        pytest.fail("the worker recorded no check:\n" + worker_log(celery_worker))
    page = results.content.decode()
    for check in ("Database reachability", "Database connectivity", "Database schema verification"):
        assert f'data-check="{check}" data-passed="true"' in page, check
    assert "data-checking" not in page


def test_a_database_added_on_the_page_is_checked_at_once_on_the_worker(celery_worker, tc_owner, operator):
    from django.test import Client

    from tests.messaging.conftest import ROLE_PASSWORD

    dbname, role = tc_owner
    client = Client()
    client.force_login(operator)
    form = {
        "database_name": dbname,
        "db_type": "postgres",
        "username": role,
        "password": ROLE_PASSWORD,
        "confirm_password": ROLE_PASSWORD,
        "hostname": "127.0.0.1",
        "port": "5432",
    }
    response = client.post(reverse("messaging:externaldatabase_add"), form)
    assert response.status_code == 302
    database = ExternalDatabase.objects.get()

    # No Check now pressed and no celery beat for the periodic check: the worker checks it anyway.
    try:
        wait_for(
            lambda: ExternalDatabase.objects.get(pk=database.pk).last_checked_at, timeout=60.0, what="the first check"
        )
    except AssertionError:
        pytest.fail("the worker recorded no check:\n" + worker_log(celery_worker))
    checks = dict(ExternalDatabaseCheck.objects.filter(database=database).values_list("name", "passed"))
    assert checks["reachability"] and checks["connectivity"]
    page = client.get(database.get_absolute_url()).content.decode()
    assert "Not checked" not in page


def test_install_schema_runs_on_the_worker_and_the_page_stops_polling_when_done(
    celery_worker, empty_database, operator, postgres
):
    from django.test import Client

    client = Client()
    client.force_login(operator)
    client.post(reverse("messaging:externaldatabase_install", args=[empty_database.pk]))
    status_url = reverse("messaging:externaldatabase_status", args=[empty_database.pk])
    try:
        status = wait_for(
            lambda: (answer := client.get(status_url)).status_code == 286 and answer,
            timeout=60.0,
            what="the install and its check",
        )
    except AssertionError:
        pytest.fail("the worker did not finish the install:\n" + worker_log(celery_worker))
    shown = status.content.decode()
    assert f"The TC schema (tc_* tables, xcp_sequence and their keys) was installed in {empty_database}." in shown
    assert shown.count('data-passed="true"') == 3
    with postgres.connect(empty_database.database_name) as conn:
        assert conn.execute("SELECT count(*) FROM pg_tables WHERE tablename LIKE 'tc_%'").fetchone() == (5,)
