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
        wait_for(lambda: ExternalDatabase.objects.get(pk=installed_database.pk).last_checked_at, what="the check")
    except AssertionError:
        pytest.fail("the worker recorded no check:\n" + worker_log(celery_worker))
    checks = dict(ExternalDatabaseCheck.objects.filter(database=installed_database).values_list("name", "passed"))
    assert checks == {"reachability": True, "connectivity": True, "schema": True, "privileges": True}
    assert ExternalDatabase.objects.get(pk=installed_database.pk).check_state == CheckRunState.IDLE
    status = client.get(reverse("messaging:externaldatabase_status", args=[installed_database.pk]))
    assert status.status_code == 286
    assert status.content.decode().count('data-passed="true"') == 3
