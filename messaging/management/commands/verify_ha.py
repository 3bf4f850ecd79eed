"""Verify High Availability settings from the command line; exits 1 on any failure (not on a warning)."""

from __future__ import annotations

import sys

from django.core.management.base import BaseCommand

from messaging.verify import verify_ha


class Command(BaseCommand):
    help = "Check every redundancy group's HA, persistent chat and database settings; exit 1 on any failure."

    def handle(self, *args, **options):
        rows = verify_ha(live=True)
        for row in rows:
            mark = "PASS" if row.passed else "WARN" if row.warning else "FAIL"
            self.stdout.write(f"{mark}  {row.group}  {row.check}: {row.reason}")
        failed = sum(row.failed for row in rows)
        warned = sum(row.warning for row in rows)
        if not rows:
            self.stdout.write("No presence redundancy group is configured.")
        warnings = f", {warned} warning{'s' if warned != 1 else ''}" if warned else ""
        self.stdout.write(f"{len(rows) - failed - warned} passed, {failed} failed{warnings}.")
        if failed or not rows:
            sys.exit(1)
