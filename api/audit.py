"""The audit trail (read): who changed what, when, with the values before and after."""

from __future__ import annotations

from auditlog.models import LogEntry
from rest_framework import serializers

from api.base import ReadOnlyViewSet
from imp_admin.views import LogEntryFilter


class LogEntrySerializer(serializers.ModelSerializer):
    actor = serializers.CharField(source="actor.username", read_only=True, allow_null=True, help_text="Empty: system.")
    object_type = serializers.CharField(source="content_type.model", read_only=True)
    action = serializers.ChoiceField(choices=LogEntry.Action.choices, read_only=True)
    changes = serializers.JSONField(source="changes_dict", read_only=True, help_text="Field → [before, after].")

    class Meta:
        model = LogEntry
        fields = [
            "id",
            "timestamp",
            "actor",
            "action",
            "object_type",
            "object_pk",
            "object_repr",
            "changes",
            "remote_addr",
        ]
        read_only_fields = fields


class AuditTrailViewSet(ReadOnlyViewSet):
    """Every change made in the console, the Django admin or the API."""

    queryset = LogEntry.objects.select_related("actor", "content_type").order_by("-timestamp", "-pk")
    serializer_class = LogEntrySerializer
    filterset_class = LogEntryFilter
    ordering_fields = ["timestamp"]
