"""External database status checks on Celery workers.

A check request is a row first (the database's check state), then a Celery task that carries
only the primary key. A queued or running check is taken to be lost (its worker died) once it
is older than ``stale_after()``; the periodic refresh and Check now ask for it again then.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from imp_admin.celery import app
from messaging.models import ACTIVE_CHECK_STATES, CheckRunState, ExternalDatabase

logger = logging.getLogger(__name__)

# A check is bounded by the reachability and login timeouts; these limits only catch a
# driver that hangs past them.
CHECK_SOFT_TIME_LIMIT = 120
CHECK_TIME_LIMIT = 150


# A whole check takes at most about two timeouts (reachability, then the login) plus a few
# catalog queries; a check queued or running for this many timeouts has lost its worker.
STALE_CHECK_TIMEOUTS = 10


def stale_after() -> timedelta:
    """How old a queued or running check may be before it counts as lost."""
    return timedelta(seconds=STALE_CHECK_TIMEOUTS * int(settings.EXTERNAL_DB_CHECK_TIMEOUT))


def _active_since(database: ExternalDatabase):
    if database.check_state == CheckRunState.RUNNING and database.check_started_at:
        return database.check_started_at
    return database.check_requested_at


def check_in_progress(database: ExternalDatabase) -> bool:
    """Whether a check of ``database`` is queued or running and not yet stale."""
    if database.check_state not in ACTIVE_CHECK_STATES:
        return False
    since = _active_since(database)
    return since is not None and timezone.now() - since <= stale_after()


def in_progress_filter() -> Q:
    """``check_in_progress`` as a query: checks queued or started recently."""
    cutoff = timezone.now() - stale_after()
    return (
        Q(check_state=CheckRunState.QUEUED, check_requested_at__gt=cutoff)
        | Q(check_state=CheckRunState.RUNNING, check_started_at__gt=cutoff)
        | Q(check_state=CheckRunState.RUNNING, check_started_at__isnull=True, check_requested_at__gt=cutoff)
    )


def request_check(database: ExternalDatabase, force: bool = False) -> bool:
    """Queue a status check of ``database``; False if one is already queued or running.

    ``force`` queues a new check even then: the running one uses settings that changed, and
    its results are dropped when it finishes (``dbcheck.record`` compares the request time).
    """
    if not force and check_in_progress(database):
        return False
    now = timezone.now()
    ExternalDatabase.objects.filter(pk=database.pk).update(check_state=CheckRunState.QUEUED, check_requested_at=now)
    database.check_state, database.check_requested_at = CheckRunState.QUEUED, now
    transaction.on_commit(lambda: check_external_database.delay(database.pk))
    return True


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


def request_install(database: ExternalDatabase) -> None:
    """Queue Install schema on a worker, then a status check; the database's page follows
    both as it follows a check. A check already queued or running is superseded."""
    now = timezone.now()
    ExternalDatabase.objects.filter(pk=database.pk).update(check_state=CheckRunState.QUEUED, check_requested_at=now)
    database.check_state, database.check_requested_at = CheckRunState.QUEUED, now
    transaction.on_commit(lambda: install_tc_schema.delay(database.pk, now.isoformat()))


@shared_task(soft_time_limit=CHECK_SOFT_TIME_LIMIT, time_limit=CHECK_TIME_LIMIT, acks_late=True)
def install_tc_schema(database_id: int, requested_at: str | None = None) -> None:
    """Install the TC schema into one external database, then check it; the outcome is the
    status note above the check results.

    The install is claimed by its request time: a status check queued just before it (a new
    database is checked at once) may run first and claim the queued state, and the install
    must still run after it. A later request (Install pressed again) supersedes this one.
    """
    from django.utils.dateparse import parse_datetime

    from messaging.dbcheck import check_and_record, install_schema

    rows = ExternalDatabase.objects.filter(pk=database_id)
    if requested_at is not None:
        rows = rows.filter(check_requested_at=parse_datetime(requested_at))
    else:
        rows = rows.filter(check_state=CheckRunState.QUEUED)
    claimed = rows.update(check_state=CheckRunState.RUNNING, check_started_at=timezone.now())
    if not claimed:
        logger.info("External database %s: no queued install to run", database_id)
        return
    database = ExternalDatabase.objects.get(pk=database_id)
    try:
        outcome = install_schema(database)
    except Exception:
        ExternalDatabase.objects.filter(pk=database_id).update(check_state=CheckRunState.IDLE)
        raise
    logger.info("External database %s: %s", database, outcome.message)
    check_and_record(database, requested_at=database.check_requested_at, note=f"Install schema: {outcome.message}")


@shared_task(soft_time_limit=CHECK_SOFT_TIME_LIMIT, time_limit=CHECK_TIME_LIMIT)
def check_all_external_databases() -> int:
    """The periodic refresh: queue a check of every external database, except those whose
    check was queued or started recently; an older one lost its worker and is asked again."""
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
