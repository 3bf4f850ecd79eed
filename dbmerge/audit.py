"""Register merge jobs with the audit trail (django-auditlog).

The console writes a job when it is created and deletes it when a super administrator deletes
a finished job; the worker's writes (state, heartbeat, progress) are queryset updates, which
the audit trail does not record. The entry of a deletion holds the whole job, its merge
report and preview included (``serialize_data``), so the report outlives the job.
"""

from auditlog.registry import auditlog

from dbmerge.models import MergeJob

auditlog.register(
    MergeJob,
    exclude_fields=["heartbeat", "progress", "traceback"],
    serialize_data=True,
    serialize_kwargs={
        "fields": [
            "db_type",
            "source_1",
            "source_2",
            "target",
            "database_name",
            "method",
            "kind",
            "state",
            "created_by",
            "created",
            "started",
            "finished",
            "reason",
            "report",
            "preview",
        ]
    },
)
