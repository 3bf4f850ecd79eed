"""Django admin of merge jobs: read-only. A job's state is written by its runner alone; the
console's pages start, merge and cancel jobs."""

from __future__ import annotations

from django.contrib import admin

from dbmerge.models import MergeCheck, MergeJob, MergeLogEntry


class ReadOnly:
    """Listed and shown, never added, changed or deleted here."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class ReadOnlyInline(ReadOnly, admin.TabularInline):
    extra = 0
    can_delete = False
    show_change_link = False


class MergeCheckInline(ReadOnlyInline):
    model = MergeCheck
    fields = readonly_fields = ("position", "name", "subject", "passed", "message", "duration")


class MergeLogEntryInline(ReadOnlyInline):
    model = MergeLogEntry
    fields = readonly_fields = ("created", "level", "message")


@admin.register(MergeJob)
class MergeJobAdmin(ReadOnly, admin.ModelAdmin):
    list_display = (
        "id",
        "db_type",
        "kind",
        "state",
        "source_1",
        "source_2",
        "target",
        "method",
        "created_by",
        "created",
        "finished",
    )
    list_filter = ("state", "db_type", "kind")
    search_fields = (
        "id__exact",
        "source_1__database_name",
        "source_2__database_name",
        "target__database_name",
        "target__hostname",
        "worker",
        "reason",
    )
    list_select_related = ("source_1", "source_2", "target", "created_by")
    date_hierarchy = "created"
    inlines = (MergeCheckInline, MergeLogEntryInline)
    fieldsets = (
        (
            "Selection",
            {
                "fields": (
                    "db_type",
                    "source_1",
                    "source_2",
                    "target",
                    "tablespace",
                    "database_name",
                    "feature_tables",
                    "method",
                    "kind",
                )
            },
        ),
        (
            "Run",
            {
                "fields": (
                    "state",
                    "reason",
                    "cancel_requested",
                    "created_by",
                    "created",
                    "started",
                    "finished",
                    "heartbeat",
                    "worker",
                )
            },
        ),
        ("Result", {"fields": ("progress", "report", "traceback")}),
    )
    # Fields the worker writes are not editable, so they must be named to be shown at all.
    readonly_fields = [name for _title, options in fieldsets for name in options["fields"]]


@admin.register(MergeLogEntry)
class MergeLogEntryAdmin(ReadOnly, admin.ModelAdmin):
    list_display = ("job", "created", "level", "message")
    list_filter = ("level",)
    search_fields = ("job__id__exact", "message")
    list_select_related = ("job",)
