"""Saving an external database: an edit of its connection settings clears the recorded status
and asks for a new check (``messaging.tasks.request_check``)."""

from __future__ import annotations

from django.db import transaction

from messaging.models import ExternalDatabase, ExternalDatabaseCheck
from messaging.models.databases import CONNECTION_CHANGED_NOTE, CONNECTION_FIELDS
from messaging.tasks import request_check

# Written by the check request and the worker, never by an edit of the settings.
CHECK_FIELDS = {"id", "check_state", "check_requested_at", "check_started_at", "last_checked_at", "status_note"}


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
