"""Asking for an external database status check: the request is a row first (the database's
check state), then a Celery task that carries only the primary key.

A queued or running check is taken to be lost (its worker died) once it is older than
``stale_after()``; the periodic refresh and Check now ask for it again then.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from messaging.models import ACTIVE_CHECK_STATES, CheckRunState, ExternalDatabase, ExternalDatabaseCheck
from messaging.models.databases import CONNECTION_CHANGED_NOTE, CONNECTION_FIELDS

# Written by the check request and the worker, never by an edit of the settings.
CHECK_FIELDS = {"id", "check_state", "check_requested_at", "check_started_at", "last_checked_at", "status_note"}

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
    from messaging.tasks import check_external_database

    if not force and check_in_progress(database):
        return False
    now = timezone.now()
    ExternalDatabase.objects.filter(pk=database.pk).update(check_state=CheckRunState.QUEUED, check_requested_at=now)
    database.check_state, database.check_requested_at = CheckRunState.QUEUED, now
    transaction.on_commit(lambda: check_external_database.delay(database.pk))
    return True


def connection_settings_changed(database: ExternalDatabase) -> bool:
    """Whether the (unsaved) ``database`` connects differently from its stored row."""
    if database.pk is None:
        return False
    stored = ExternalDatabase.objects.filter(pk=database.pk).values(*CONNECTION_FIELDS).first()
    return stored is not None and any(stored[name] != getattr(database, name) for name in CONNECTION_FIELDS)


@transaction.atomic
def save_database(database: ExternalDatabase) -> bool:
    """Save an added or edited external database; True if its connection settings changed.

    A new database is checked at once (a check is queued on the worker), so that its page
    does not say "Not checked" until the next periodic check. The recorded results of an
    edited connection describe another server (or another user), so they are cleared, the
    page says why, and a new check is queued on the worker.
    """
    changed = connection_settings_changed(database)
    if database.pk is None:
        database.save()
        request_check(database, force=True)
    else:
        # The check state belongs to the worker: an edit form loaded before a check finished
        # must not write back what it saw then.
        database.save(update_fields=[f.name for f in database._meta.concrete_fields if f.name not in CHECK_FIELDS])
    if changed:
        ExternalDatabaseCheck.objects.filter(database=database).delete()
        ExternalDatabase.objects.filter(pk=database.pk).update(
            last_checked_at=None, status_note=CONNECTION_CHANGED_NOTE
        )
        database.last_checked_at, database.status_note = None, CONNECTION_CHANGED_NOTE
        request_check(database, force=True)
    return changed
