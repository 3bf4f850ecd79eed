"""Run an external database merge job from a shell, printing its checks and progress.

Creates the same job row the console does, so the job appears in External Database Jobs.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from dbmerge import jobrunner
from dbmerge.choices import JobKind, JobState, MergeDatabaseType, MergeMethod
from dbmerge.forms import MergeJobForm
from dbmerge.models import MergeJob
from messaging.models import ExternalDatabase


class Command(BaseCommand):
    help = "Validate and merge two persistent chat databases into a destination (External Database Merge Job)."

    def add_arguments(self, parser):
        parser.add_argument("--type", required=True, help="oracle or postgres (MS SQL is not supported for merging)")
        parser.add_argument("--source-1", required=True, help="Database name of source database 1")
        parser.add_argument("--source-2", required=True, help="Database name of source database 2")
        parser.add_argument("--target", required=True, help="Database name of the destination database")
        parser.add_argument("--tablespace", default="", help="Oracle: the destination's tablespace")
        parser.add_argument("--validate-only", action="store_true", help="Run the checks only")
        parser.add_argument("--method", choices=MergeMethod.values, default=MergeMethod.COPY)

    def _database(self, name: str, option: str) -> ExternalDatabase:
        found = list(ExternalDatabase.objects.filter(database_name=name)[:2])
        if not found:
            raise CommandError(f"{option}: no external database named {name!r} is configured.")
        if len(found) > 1:
            raise CommandError(f"{option}: several external databases are named {name!r}; rename one.")
        return found[0]

    def handle(self, *args, **options):
        form = MergeJobForm(
            data={
                "db_type": options["type"],
                "source_1": self._database(options["source_1"], "--source-1").pk,
                "source_2": self._database(options["source_2"], "--source-2").pk,
                "target": self._database(options["target"], "--target").pk,
                "tablespace": options["tablespace"],
                "feature_tables": ["tc"],
                "method": options["method"],
            }
        )
        if not form.is_valid():
            errors = [f"{field}: {' '.join(messages)}" for field, messages in form.errors.items()]
            raise CommandError(" ".join(errors))
        data = form.cleaned_data
        with transaction.atomic():
            job = MergeJob.objects.create(
                db_type=MergeDatabaseType(data["db_type"]),
                source_1=data["source_1"],
                source_2=data["source_2"],
                target=data["target"],
                tablespace=data["tablespace"],
                database_name=data["database_name"],
                method=data["method"],
                kind=JobKind.VALIDATE if options["validate_only"] else JobKind.MERGE,
            )
        self.stdout.write(f"Merge job {job.pk} created.")
        job = jobrunner.run_job(job.pk, echo=self.stdout.write)
        self.stdout.write(f"Merge job {job.pk}: {job.get_state_display()}.")
        if job.reason:
            self.stdout.write(job.reason)
        if job.state == JobState.COMPLETED:
            report = job.report
            self.stdout.write(
                f"{report['rows_written']} rows written in {report['seconds']:.1f} s "
                f"({report['rows_per_second']:.0f} rows/s)."
            )
        if job.state not in (JobState.COMPLETED, JobState.VALIDATED):
            raise CommandError(f"Merge job {job.pk} ended {job.get_state_display()}.")
