"""Merge preview: what a merge of the selection would do, computed without writing anything.

The engine runs the very merge it would run, against temporary copies of the destination's
tables in a read-only transaction that is rolled back (``postgres.PreviewDestination``), so
every figure (rows per table, archive ids moved and where to, rooms combined, duplicates
dropped, the destination's current rows) is the one the merge will report on the same data.
To it the preview adds an estimated duration, from the throughput this installation measured
in its own completed merges.

``preview_databases`` is the service function (no HTTP, no job): the job runner calls it, and
so can an API or a shell. ``dbmerge.tasks.request_preview`` creates and queues a Preview job.
"""

from __future__ import annotations

from dataclasses import dataclass

from dbmerge.choices import JobKind, JobState, MergeDatabaseType
from dbmerge.engines import MergeError, MergeHooks
from dbmerge.models import MergeJob
from messaging.models import ExternalDatabase

# Throughput is measured over this many of the latest completed merges.
THROUGHPUT_SAMPLE = 10
NO_ESTIMATE = "No merge that wrote rows has completed on this installation yet, so its duration cannot be estimated."
PREVIEW_POSTGRES_ONLY = "Preview is available for Postgres databases; an Oracle merge can be validated and run."


@dataclass(frozen=True)
class Throughput:
    """Rows written per second by this installation's latest completed merges."""

    rows: int
    seconds: float
    merges: int

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0


def measured_throughput() -> Throughput | None:
    """From the reports of the latest completed merges (None before the first)."""
    reports = (
        MergeJob.objects.filter(state=JobState.COMPLETED, kind=JobKind.MERGE)
        .exclude(report={})
        .order_by("-finished")
        .values_list("report", flat=True)[:THROUGHPUT_SAMPLE]
    )
    measured = [r for r in reports if r.get("seconds") and r.get("rows_written")]
    if not measured:
        return None
    return Throughput(
        rows=sum(int(r["rows_written"]) for r in measured),
        seconds=sum(float(r["seconds"]) for r in measured),
        merges=len(measured),
    )


def estimate(rows_written: int) -> dict:
    """The estimated duration of a merge writing ``rows_written`` rows, with its basis."""
    throughput = measured_throughput()
    if throughput is None or not throughput.rows_per_second:
        return {"seconds": None, "basis": NO_ESTIMATE}
    return {
        "seconds": round(rows_written / throughput.rows_per_second, 1),
        "basis": f"{throughput.rows_per_second:,.0f} rows/s measured over the last {throughput.merges} "
        f"completed merge{'s' if throughput.merges != 1 else ''} of this installation.",
    }


def preview_databases(
    db_type: str,
    source_1: ExternalDatabase,
    source_2: ExternalDatabase,
    target: ExternalDatabase,
    hooks: MergeHooks | None = None,
) -> dict:
    """The preview of merging ``source_1`` and ``source_2`` into ``target``: the merge report
    the merge would write (``preview`` true) plus ``estimate``. Reads the three databases,
    writes nothing; raises MergeError (or MergeCancelled through ``hooks``) as the merge does.
    """
    if db_type != MergeDatabaseType.POSTGRES:
        raise MergeError(PREVIEW_POSTGRES_ONLY)
    from dbmerge.engines import postgres
    from dbmerge.validation import engine_database

    report = postgres.merge(
        engine_database(target),
        [engine_database(source_1), engine_database(source_2)],
        "copy",
        hooks,
        preview=True,
    )
    data = report.as_dict()
    data["estimate"] = estimate(report.rows_written)
    return data


def preview_job(job: MergeJob, hooks: MergeHooks | None = None) -> dict:
    return preview_databases(job.db_type, job.source_1, job.source_2, job.target, hooks)
