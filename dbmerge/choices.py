"""Choices of merge jobs: states (with their named groups), methods, check names."""

from __future__ import annotations

from django.db import models


class JobState(models.TextChoices):
    PENDING = "pending", "Pending"
    VALIDATING = "validating", "Validating"
    VALIDATION_FAILED = "validation_failed", "Validation Failed"
    VALIDATED = "validated", "Validated"
    PREVIEWING = "previewing", "Previewing"
    MERGING = "merging", "Merging"
    COMPLETED = "completed", "Completed"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"
    ERRORED = "errored", "Errored"


# A worker holds the job (its heartbeat must stay fresh).
RUNNING = {JobState.VALIDATING, JobState.PREVIEWING, JobState.MERGING}
# Queued for a worker, or held by one: the page keeps polling.
ACTIVE = {JobState.PENDING, *RUNNING}
# Nothing more will happen to the job.
TERMINAL = {JobState.VALIDATION_FAILED, JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED, JobState.ERRORED}
# Only while a job is running can it be cancelled.
CANCELLABLE = ACTIVE


class JobKind(models.TextChoices):
    """What the administrator asked for: Validate Selected Tables, Preview or Merge Selected Tables."""

    VALIDATE = "validate", "Validate Selected Tables"
    PREVIEW = "preview", "Preview"
    MERGE = "merge", "Merge Selected Tables"


class MergeDatabaseType(models.TextChoices):
    """The database types the merge offers (SQL Server is not one of them)."""

    ORACLE = "oracle", "Oracle"
    POSTGRES = "postgres", "Postgres"


class MergeMethod(models.TextChoices):
    COPY = "copy", "COPY (binary, through the worker)"
    DBLINK = "dblink", "dblink (destination pulls from the sources)"


class FeatureTable(models.TextChoices):
    TEXT_CONFERENCE = "tc", "Text Conference (TC)"
    MESSAGE_ARCHIVER = "ma", "Message Archiver (MA)"
    MANAGED_FILE_TRANSFER = "mft", "Managed File Transfer (MFT)"


AVAILABLE_FEATURE_TABLES = {FeatureTable.TEXT_CONFERENCE}


class CheckName(models.TextChoices):
    DATABASE_TYPE = "database_type", "Database type supported"
    DIFFERENT_SOURCES = "different_sources", "Sources are two different databases"
    TC_STOPPED = "tc_stopped", "Text Conference Manager stopped"
    DESTINATION_NOT_IN_USE = "destination_not_in_use", "Destination not in use by a running TC service"
    REACHABLE = "reachable", "Reachable and logged in"
    SCHEMA = "schema", "Valid TC schema"
    DESTINATION_CONTENT = "destination_content", "Destination content"
    DESTINATION_IS_SOURCE = "destination_is_source", "Destination is a source"
    FREE_SPACE = "free_space", "Room for the data"
    PRIVILEGES = "privileges", "Privileges for the transfer"
    NOT_MERGED_BEFORE = "not_merged_before", "Not merged before"
