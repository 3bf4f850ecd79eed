"""Messaging > External Server Setup > External Database Jobs: merge jobs.

Creating a job is Validate Selected Tables; ``merge`` is Merge Selected Tables for a validated
job. Both run on a Celery worker, so they answer 202 with the job, whose ``state`` and
``progress`` are polled.
"""

from __future__ import annotations

from collections.abc import Mapping

from django.db import transaction
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.reverse import reverse

from api.base import ReadOnlyViewSet
from api.errors import NON_FIELD, Conflict
from api.formserializer import form_data, form_errors
from dbmerge import jobrunner, tasks
from dbmerge.choices import FeatureTable, JobKind, MergeDatabaseType, MergeMethod
from dbmerge.filters import MergeJobFilter
from dbmerge.forms import MergeJobForm
from dbmerge.models import MergeCheck, MergeJob, MergeLogEntry
from dbmerge.preview import PREVIEW_POSTGRES_ONLY
from dbmerge.tasks import request_preview
from dbmerge.views import MERGE_NEEDS_VALIDATION
from messaging.models import ExternalDatabase


class MergeCheckSerializer(serializers.ModelSerializer):
    class Meta:
        model = MergeCheck
        fields = ["position", "name", "subject", "passed", "message", "duration"]
        read_only_fields = fields


class TableProgressSerializer(serializers.Serializer):
    total = serializers.IntegerField(required=False)
    done = serializers.IntegerField(required=False)


class MergeJobSerializer(serializers.ModelSerializer):
    url = serializers.SerializerMethodField()
    percent = serializers.IntegerField(source="overall_percent", read_only=True, help_text="Rows copied, in percent.")
    is_active = serializers.BooleanField(read_only=True, help_text="Pending or running: poll again.")
    progress = serializers.DictField(
        child=TableProgressSerializer(), read_only=True, help_text="Per table: rows to copy and rows copied."
    )
    report = serializers.DictField(read_only=True, help_text="The merge report, once the merge completed.")
    preview = serializers.DictField(
        read_only=True,
        help_text="Preview: what the merge would do, computed without writing, and an estimated duration.",
    )
    checks = MergeCheckSerializer(many=True, read_only=True, help_text="Validation Details.")
    created_by = serializers.CharField(source="created_by.username", read_only=True, allow_null=True)

    class Meta:
        model = MergeJob
        fields = [
            "id",
            "url",
            "db_type",
            "source_1",
            "source_2",
            "target",
            "tablespace",
            "database_name",
            "feature_tables",
            "method",
            "kind",
            "state",
            "reason",
            "cancel_requested",
            "created_by",
            "created",
            "started",
            "finished",
            "percent",
            "is_active",
            "progress",
            "report",
            "preview",
            "checks",
        ]
        read_only_fields = fields

    def get_url(self, obj) -> str:
        return reverse("api:mergejob-detail", args=[obj.pk], request=self.context.get("request"))


class MergeJobCreateSerializer(serializers.Serializer):
    """Add Merge Job; validated by the page's own form (``dbmerge.forms.MergeJobForm``)."""

    db_type = serializers.ChoiceField(choices=MergeDatabaseType.choices)
    source_1 = serializers.PrimaryKeyRelatedField(queryset=ExternalDatabase.objects.all())
    source_2 = serializers.PrimaryKeyRelatedField(queryset=ExternalDatabase.objects.all())
    target = serializers.PrimaryKeyRelatedField(queryset=ExternalDatabase.objects.all(), help_text="The destination.")
    tablespace = serializers.CharField(required=False, allow_blank=True, max_length=128, help_text="Oracle only.")
    database_name = serializers.CharField(
        required=False, allow_blank=True, max_length=128, help_text="The destination's database name."
    )
    feature_tables = serializers.ListField(
        child=serializers.ChoiceField(choices=FeatureTable.choices), required=False, help_text="Only TC can be merged."
    )
    method = serializers.ChoiceField(choices=MergeMethod.choices, required=False)

    def to_internal_value(self, data):
        if not isinstance(data, Mapping):
            raise serializers.ValidationError({NON_FIELD: ["Send a JSON object."]})
        values = {"feature_tables": [FeatureTable.TEXT_CONFERENCE], **data}
        blank = MergeJobForm()
        self.form = MergeJobForm(data=form_data(blank, {name: values[name] for name in blank.fields if name in values}))
        if not self.form.is_valid():
            raise serializers.ValidationError(form_errors(self.form))
        return self.form.cleaned_data


class MergeLogEntrySerializer(serializers.ModelSerializer):
    class Meta:
        model = MergeLogEntry
        fields = ["created", "level", "message"]
        read_only_fields = fields


class MergeJobViewSet(mixins.CreateModelMixin, mixins.DestroyModelMixin, ReadOnlyViewSet):
    """External database merge jobs: validation, merge, progress, report and log."""

    queryset = MergeJob.objects.select_related("created_by").prefetch_related("checks").order_by("-pk")
    serializer_class = MergeJobSerializer
    filterset_class = MergeJobFilter
    ordering_fields = ["id", "created", "state"]
    action_permissions = {
        "merge": "dbmerge.change_mergejob",
        "cancel": "dbmerge.change_mergejob",
        "preview": "dbmerge.add_mergejob",
    }

    def list(self, request, *args, **kwargs):
        jobrunner.mark_stale_jobs()
        return super().list(request, *args, **kwargs)

    def retrieve(self, request, *args, **kwargs):
        jobrunner.mark_stale_jobs()
        return super().retrieve(request, *args, **kwargs)

    def _accepted(self, job: MergeJob) -> Response:
        data = MergeJobSerializer(self.get_queryset().get(pk=job.pk), context={"request": self.request}).data
        return Response(data, status=status.HTTP_202_ACCEPTED, headers={"Location": data["url"]})

    @extend_schema(request=MergeJobCreateSerializer, responses={202: MergeJobSerializer})
    def create(self, request, *args, **kwargs):
        """Validate Selected Tables: a new job, validated on a worker; 202, poll the job."""
        body = MergeJobCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        form = body.form
        with transaction.atomic():
            job = MergeJob.objects.create(
                **form.selection(),
                database_name=form.cleaned_data["database_name"],
                feature_tables=form.cleaned_data["feature_tables"],
                kind=JobKind.VALIDATE,
                created_by=request.user,
            )
            tasks.enqueue(job)
        return self._accepted(job)

    @extend_schema(request=MergeJobCreateSerializer, responses={202: MergeJobSerializer})
    @action(detail=False, methods=["post"], filterset_class=None, pagination_class=None)
    def preview(self, request):
        """Preview (Postgres): a new job, validated, then the merge computed without writing; 202, poll
        the job's ``preview``. A previewed job is left Validated, ready to merge."""
        body = MergeJobCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        form = body.form
        if form.cleaned_data["db_type"] != MergeDatabaseType.POSTGRES:
            raise serializers.ValidationError({NON_FIELD: [PREVIEW_POSTGRES_ONLY]})
        job = request_preview(
            form.selection(),
            database_name=form.cleaned_data["database_name"],
            feature_tables=form.cleaned_data["feature_tables"],
            created_by=request.user,
        )
        return self._accepted(job)

    def destroy(self, request, *args, **kwargs):
        """Delete a finished job (its report stays in the audit trail); 409 while it is pending or running."""
        job = self.get_object()
        if not jobrunner.delete_finished(job):
            raise Conflict(
                f"{job} is {job.get_state_display()}; only a job that is not pending or running can be deleted. "
                "Cancel it first."
            )
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=None, responses={202: MergeJobSerializer})
    @action(detail=True, methods=["post"], filterset_class=None)
    def merge(self, request, pk=None):
        """Merge Selected Tables, for a job whose validation passed; 202, poll the job."""
        job = self.get_object()
        with transaction.atomic():
            started = tasks.request_merge(job)
        if not started:
            raise Conflict(MERGE_NEEDS_VALIDATION)
        return self._accepted(job)

    @extend_schema(request=None, responses={202: MergeJobSerializer})
    @action(detail=True, methods=["post"], filterset_class=None)
    def cancel(self, request, pk=None):
        """Cancel a pending or running job; a running one stops when its worker next checks."""
        job = self.get_object()
        if not jobrunner.request_cancel(job):
            raise Conflict(f"Merge job {job.pk} is {job.get_state_display()}; only a running job can be cancelled.")
        return self._accepted(job)

    @extend_schema(responses={200: MergeLogEntrySerializer(many=True)})
    @action(detail=True, methods=["get"], filterset_class=None, pagination_class=None)
    def log(self, request, pk=None):
        """The job's log, oldest first."""
        job = self.get_object()
        return Response(MergeLogEntrySerializer(job.log_entries.all(), many=True).data)
