"""``manage.py load_bench_data``: the large data set of ``bench/console_load.py``."""

from __future__ import annotations

import os
import time

from django.core.management.base import BaseCommand, CommandError

from imp_admin.bench_data import Sizes, load


class Command(BaseCommand):
    help = (
        "Fill an empty config DB with the console benchmark's data set: 3 redundancy groups (6 nodes), "
        "1,000 end users, 10,000 persistent rooms in one PostgreSQL chat database per group (created on "
        "PGHOST/PGPORT/PGUSER, replaced if it exists), 1,000 merge jobs, 100,000 audit trail entries and "
        "20 super administrators bench-admin-01… with the given password."
    )

    def add_arguments(self, parser):
        parser.add_argument("--admin-password", required=True, help="Password of the bench-admin-NN logins.")
        parser.add_argument("--admins", type=int, default=20, help="How many administrators (default 20).")
        parser.add_argument("--users", type=int, default=1000)
        parser.add_argument("--rooms", type=int, default=10_000)
        parser.add_argument("--merge-jobs", type=int, default=1000)
        parser.add_argument("--audit-entries", type=int, default=100_000)
        parser.add_argument(
            "--database-prefix",
            default="imp_bench_tc_",
            help="Name prefix of the chat databases, one per group (default imp_bench_tc_).",
        )

    def handle(self, *args, **options):
        sizes = Sizes(
            users=options["users"],
            rooms=options["rooms"],
            merge_jobs=options["merge_jobs"],
            audit_entries=options["audit_entries"],
            admins=options["admins"],
        )
        pg = {
            "host": os.environ.get("PGHOST", "127.0.0.1"),
            "port": int(os.environ.get("PGPORT", "5432")),
            "user": os.environ.get("PGUSER", "postgres"),
            "password": os.environ.get("PGPASSWORD") or None,
        }
        started = time.monotonic()
        try:
            load(sizes, pg, options["database_prefix"], options["admin_password"], say=self.stdout.write)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"Benchmark data loaded in {time.monotonic() - started:.1f} s.")
