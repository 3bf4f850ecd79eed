"""Asking for an external database status check: the request is a row first (the database's
check state), then a Celery task that carries only the primary key."""

from __future__ import annotations

from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from messaging.models import ACTIVE_CHECK_STATES, CheckRunState, ExternalDatabase

# A queued or running check older than this is taken to be lost (a worker died) and may be
# asked for again.
STALE_CHECK = timedelta(minutes=5)


def check_in_progress(database: ExternalDatabase) -> bool:
    return database.check_state in ACTIVE_CHECK_STATES and not (
        database.check_requested_at and timezone.now() - database.check_requested_at > STALE_CHECK
    )


def request_check(database: ExternalDatabase) -> bool:
    """Queue a status check of ``database``; False if one is already queued or running."""
    from messaging.tasks import check_external_database

    if check_in_progress(database):
        return False
    now = timezone.now()
    ExternalDatabase.objects.filter(pk=database.pk).update(check_state=CheckRunState.QUEUED, check_requested_at=now)
    database.check_state, database.check_requested_at = CheckRunState.QUEUED, now
    transaction.on_commit(lambda: check_external_database.delay(database.pk))
    return True
