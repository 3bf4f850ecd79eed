"""Verify High Availability settings from the command line; exits 1 on any failure."""

from __future__ import annotations

import sys

from django.core.management.base import BaseCommand

from messaging.verify import verify_ha


class Command(BaseCommand):
    help = "Check every redundancy group's HA, persistent chat and database settings; exit 1 on any failure."

    def handle(self, *args, **options):
        rows = verify_ha(live=True)
        for row in rows:
            mark = "PASS" if row.passed else "FAIL"
            self.stdout.write(f"{mark}  {row.group}  {row.check}: {row.reason}")
        failed = sum(not row.passed for row in rows)
        if not rows:
            self.stdout.write("No presence redundancy group is configured.")
        self.stdout.write(f"{len(rows) - failed} passed, {failed} failed.")
        if failed or not rows:
            sys.exit(1)
