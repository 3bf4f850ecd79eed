"""Celery tasks of the messaging app: external database status checks."""

from __future__ import annotations

import logging

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from imp_admin.celery import app
from messaging.models import CheckRunState, ExternalDatabase

logger = logging.getLogger(__name__)

# A check is bounded by the reachability and login timeouts; these limits only catch a
# driver that hangs past them.
CHECK_SOFT_TIME_LIMIT = 120
CHECK_TIME_LIMIT = 150


@shared_task(soft_time_limit=CHECK_SOFT_TIME_LIMIT, time_limit=CHECK_TIME_LIMIT, acks_late=True)
def check_external_database(database_id: int) -> None:
    """Run the status checks of one external database and record them on its rows."""
    from messaging.dbcheck import check_and_record

    claimed = ExternalDatabase.objects.filter(pk=database_id, check_state=CheckRunState.QUEUED).update(
        check_state=CheckRunState.RUNNING, check_started_at=timezone.now()
    )
    if not claimed:
        # Deleted, or another worker already ran this request (a redelivered message).
        logger.info("External database %s: no queued check to run", database_id)
        return
    database = ExternalDatabase.objects.get(pk=database_id)
    results = check_and_record(database, requested_at=database.check_requested_at)
    logger.info(
        "External database %s checked: %s",
        database,
        ", ".join(f"{r.name} {'passed' if r.passed else 'failed'}" for r in results),
    )


@shared_task(soft_time_limit=CHECK_SOFT_TIME_LIMIT, time_limit=CHECK_TIME_LIMIT)
def check_all_external_databases() -> int:
    """The periodic refresh: queue a check of every external database, except those whose
    check was queued or started recently; an older one lost its worker and is asked again."""
    from messaging.status import in_progress_filter, request_check

    count = 0
    for database in ExternalDatabase.objects.exclude(in_progress_filter()):
        request_check(database, force=True)
        count += 1
    logger.info("Queued status checks of %d external databases at %s", count, timezone.now())
    return count


@app.on_after_finalize.connect
def schedule_periodic_checks(sender, **kwargs) -> None:
    interval = settings.EXTERNAL_DB_CHECK_INTERVAL
    if interval:
        sender.add_periodic_task(interval, check_all_external_databases.s(), name="external database status")
