"""External database merge jobs (Messaging > External Server Setup > External Database Jobs).

A job is a row first; the Celery worker (or ``manage.py merge_external_databases``) runs it
and writes its state, checks, progress, report and log back onto the row, so any console
process can render it.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import F, Q
from django.urls import reverse
from django.utils import timezone

from dbmerge.choices import (
    ACTIVE,
    RUNNING,
    CheckName,
    FeatureTable,
    JobKind,
    JobState,
    MergeDatabaseType,
    MergeMethod,
)

SAME_SOURCES_MESSAGE = "Source database 1 and Source database 2 must be two different databases."
SOURCE_IS_TARGET_TWICE_MESSAGE = "The destination can be one of the sources, but not both."
# What a validation vouches for: Merge Selected Tables is allowed only for the same values.
SELECTION_FIELDS = ("db_type", "source_1", "source_2", "target", "method", "tablespace")


class MergeJobQuerySet(models.QuerySet):
    def awaiting_merge(self, selection: dict) -> MergeJob | None:
        """The job whose passed validation lets Merge Selected Tables go ahead for ``selection``
        (values of SELECTION_FIELDS): the latest job of that selection, if it is Validated.
        A later job of the selection, running, failed or merged, withdraws an earlier pass."""
        latest = self.filter(**{name: selection[name] for name in SELECTION_FIELDS}).order_by("-pk").first()
        return latest if latest is not None and latest.state == JobState.VALIDATED else None


class MergeJob(models.Model):
    """One merge of two persistent chat databases into a destination, from validation to report.

    Written by the console when created (the selection) and afterwards only by the worker
    that runs it (state, times, heartbeat, progress, report); the console sets only the
    cancel flag and, for a validated job, asks for the merge.
    """

    db_type = models.CharField(
        "Database Type",
        max_length=16,
        choices=MergeDatabaseType.choices,
        help_text="Oracle or Postgres; Microsoft SQL Server databases cannot be merged.",
    )
    source_1 = models.ForeignKey(
        "messaging.ExternalDatabase",
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name="Source database 1",
        help_text="The first per-node persistent chat database; only read, unless it is also the destination.",
    )
    source_2 = models.ForeignKey(
        "messaging.ExternalDatabase",
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name="Source database 2",
        help_text="The second per-node persistent chat database; only read, unless it is also the destination.",
    )
    target = models.ForeignKey(
        "messaging.ExternalDatabase",
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name="Destination database",
        help_text="Receives the union of both sources; may be empty or be one of the sources.",
    )
    tablespace = models.CharField(
        "Tablespace name", max_length=128, blank=True, help_text="Oracle only: the destination's tablespace."
    )
    database_name = models.CharField(
        "Database name", max_length=128, help_text="Name of the destination database (as configured)."
    )
    feature_tables = models.CharField(
        "Feature Tables",
        max_length=16,
        choices=FeatureTable.choices,
        default=FeatureTable.TEXT_CONFERENCE,
        help_text="Only Text Conference (TC) tables can be merged.",
    )
    method = models.CharField(
        max_length=16,
        choices=MergeMethod.choices,
        default=MergeMethod.COPY,
        help_text="PostgreSQL transfer: COPY through the worker (default) or dblink pulled by the destination.",
    )
    kind = models.CharField(
        max_length=16,
        choices=JobKind.choices,
        default=JobKind.VALIDATE,
        help_text="Validate only, or validate and merge; set by the console.",
    )
    state = models.CharField(max_length=24, choices=JobState.choices, default=JobState.PENDING, editable=False)
    cancel_requested = models.BooleanField(
        default=False, editable=False, help_text="Set by Cancel; the worker checks it between batches."
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        editable=False,
        help_text="Who started the job; empty when started from the shell.",
    )
    created = models.DateTimeField(auto_now_add=True, help_text="When the job row was saved.")
    started = models.DateTimeField(null=True, blank=True, editable=False, help_text="When a worker claimed it.")
    finished = models.DateTimeField(null=True, blank=True, editable=False, help_text="When it reached a final state.")
    heartbeat = models.DateTimeField(
        null=True,
        blank=True,
        editable=False,
        help_text="Written by the worker while it runs the job; a stale heartbeat means the worker died.",
    )
    worker = models.CharField(
        max_length=255, blank=True, editable=False, help_text="Host and process id of the worker running the job."
    )
    reason = models.TextField(
        blank=True, editable=False, help_text="Why the job failed, was cancelled or errored, in plain words."
    )
    traceback = models.TextField(
        blank=True, editable=False, help_text="Traceback of an unexpected exception (state Errored)."
    )
    progress = models.JSONField(
        default=dict,
        editable=False,
        help_text="Per table: rows to copy and rows copied, written by the worker between batches.",
    )
    report = models.JSONField(
        default=dict, editable=False, help_text="The merge report written by the worker when the merge completes."
    )
    preview = models.JSONField(
        default=dict,
        editable=False,
        help_text="What the merge would do (Preview): the merge report computed without writing, and an "
        "estimated duration.",
    )

    objects = MergeJobQuerySet.as_manager()

    class Meta:
        ordering = ["-pk"]
        verbose_name = "merge job"
        constraints = [
            models.CheckConstraint(
                condition=~Q(source_1=F("source_2")),
                name="%(app_label)s_%(class)s_sources_differ",
                violation_error_message=SAME_SOURCES_MESSAGE,
            ),
            models.CheckConstraint(
                condition=Q(state__in=JobState.values),
                name="%(app_label)s_%(class)s_state_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"Merge job {self.pk}"

    def get_absolute_url(self) -> str:
        return reverse("dbmerge:mergejob_detail", args=[self.pk])

    def clean(self) -> None:
        if self.source_1_id and self.source_1_id == self.source_2_id:
            raise ValidationError({"source_2": SAME_SOURCES_MESSAGE})

    @property
    def is_active(self) -> bool:
        return self.state in ACTIVE

    @property
    def is_running(self) -> bool:
        return self.state in RUNNING

    @property
    def duration(self) -> timedelta | None:
        if not self.started:
            return None
        return (self.finished or timezone.now()) - self.started

    @property
    def overall_progress(self) -> tuple[int, int]:
        """(rows copied, rows to copy) over every table."""
        done = sum(int(entry.get("done", 0)) for entry in self.progress.values())
        total = sum(int(entry.get("total", 0)) for entry in self.progress.values())
        return done, total

    @property
    def overall_percent(self) -> int:
        done, total = self.overall_progress
        return 100 if total == 0 and self.state == JobState.COMPLETED else int(100 * done / total) if total else 0

    @property
    def destination_source_role(self) -> str:
        """ "Source database 1" or "2" when the destination is that source (as configured), else ""."""
        if self.target_id == self.source_1_id:
            return "Source database 1"
        if self.target_id == self.source_2_id:
            return "Source database 2"
        return ""

    @property
    def written_summary(self) -> str:
        """Which database the merge writes, and which it only reads, for the job's page."""
        if self.destination_source_role == "Source database 1":
            return f"{self.target} (also Source database 1) is written; {self.source_2} is only read."
        if self.destination_source_role == "Source database 2":
            return f"{self.target} (also Source database 2) is written; {self.source_1} is only read."
        return f"{self.target} is written; {self.source_1} and {self.source_2} are only read."

    @property
    def selection(self) -> dict:
        """What a validation vouches for: Merge is allowed only for the same selection."""
        return {name: getattr(self, self._meta.get_field(name).attname) for name in SELECTION_FIELDS}


class MergeCheck(models.Model):
    """One row of Validation Details: a named check, on which database, passed or not, and why.

    Written by the worker during validation.
    """

    job = models.ForeignKey(MergeJob, on_delete=models.CASCADE, related_name="checks")
    position = models.PositiveSmallIntegerField(help_text="Order in which the check ran.")
    name = models.CharField(max_length=32, choices=CheckName.choices)
    subject = models.CharField(
        max_length=255, blank=True, help_text="What was checked: a database, a node, or empty for the whole job."
    )
    passed = models.BooleanField()
    warning = models.BooleanField(
        default=False, help_text="A passed check that the administrator should read before merging."
    )
    message = models.TextField(help_text="What was found, and for a failure what to do about it.")
    duration = models.FloatField(default=0.0, help_text="Seconds the check took.")

    class Meta:
        ordering = ["job", "position"]
        verbose_name = "merge validation check"
        constraints = [
            models.UniqueConstraint(fields=["job", "position"], name="%(app_label)s_%(class)s_unique_position"),
        ]

    def __str__(self) -> str:
        return f"{self.get_name_display()} {self.subject}: {self.result.lower()}"

    @property
    def result(self) -> str:
        """Passed, Warning or Failed, as the Validation Details show it."""
        return "Failed" if not self.passed else "Warning" if self.warning else "Passed"


class MergeLogEntry(models.Model):
    """A line of the job's log, stored by the logging handler of the worker running the job."""

    job = models.ForeignKey(MergeJob, on_delete=models.CASCADE, related_name="log_entries")
    created = models.DateTimeField(default=timezone.now, help_text="When the line was logged.")
    level = models.CharField(max_length=10, help_text="Logging level name (INFO, WARNING, ERROR).")
    message = models.TextField(help_text="The log message.")

    class Meta:
        ordering = ["job", "pk"]
        verbose_name = "merge log entry"
        verbose_name_plural = "merge log entries"

    def __str__(self) -> str:
        return f"{self.created:%H:%M:%S} {self.level} {self.message[:60]}"
