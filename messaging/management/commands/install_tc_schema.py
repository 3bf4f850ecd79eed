"""Install the TC schema into an external database: ``manage.py install_tc_schema DB``."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from messaging.dbcheck import install_schema
from messaging.models import ExternalDatabase


def find_database(value: str) -> ExternalDatabase:
    """An external database by id, by database name, or as ``name@host:port``."""
    if value.isdigit():
        found = ExternalDatabase.objects.filter(pk=int(value))
    else:
        found = [db for db in ExternalDatabase.objects.all() if value in (db.database_name, str(db))]
    found = list(found)
    if not found:
        raise CommandError(f"No external database {value!r}; give its id, its name or name@host:port.")
    if len(found) > 1:
        raise CommandError(f"{value!r} names {len(found)} external databases; give name@host:port or the id.")
    return found[0]


class Command(BaseCommand):
    help = "Create the tc_* tables, their keys and xcp_sequence in an empty external database."

    def add_arguments(self, parser):
        parser.add_argument("database", help="External database id, name, or name@host:port.")

    def handle(self, *args, database: str, **options):
        outcome = install_schema(find_database(database))
        if not outcome.ok:
            raise CommandError(outcome.message)
        self.stdout.write(outcome.message)
