"""Check now runs on a real Celery worker (a subprocess sharing the test config DB)."""

from __future__ import annotations

import time

import pytest
from django.urls import reverse

from messaging.models import CheckRunState, ExternalDatabase, ExternalDatabaseCheck

pytestmark = [pytest.mark.slow]


def wait_for(predicate, attempts: int = 240, pause: float = 0.25):
    """Poll a bounded number of times; return the last value."""
    for _ in range(attempts):
        value = predicate()
        if value:
            return value
        time.sleep(pause)
    return predicate()


def test_check_now_runs_on_the_worker_and_records_three_passing_checks(celery_worker, installed_database, operator):
    from django.test import Client

    client = Client()
    client.force_login(operator)
    response = client.post(reverse("messaging:externaldatabase_check", args=[installed_database.pk]))
    assert response.status_code == 302
    assert ExternalDatabase.objects.get(pk=installed_database.pk).check_state == CheckRunState.QUEUED

    done = wait_for(lambda: ExternalDatabase.objects.get(pk=installed_database.pk).last_checked_at)
    if not done:
        celery_worker.terminate()
        pytest.fail("the worker recorded no check:\n" + celery_worker.communicate(timeout=20)[0].decode()[-3000:])
    checks = dict(ExternalDatabaseCheck.objects.filter(database=installed_database).values_list("name", "passed"))
    assert checks == {"reachability": True, "connectivity": True, "schema": True, "privileges": True}
    assert ExternalDatabase.objects.get(pk=installed_database.pk).check_state == CheckRunState.IDLE
    status = client.get(reverse("messaging:externaldatabase_status", args=[installed_database.pk]))
    assert status.status_code == 286
    assert status.content.decode().count('data-passed="true"') == 3
