"""Messaging > External Server Setup > External Databases, their status checks and schema
install, and System > Verify High Availability Settings.

Passwords are write-only: they go in (and are stored encrypted), never out.
"""

from __future__ import annotations

from django.db.models import Prefetch
from drf_spectacular.utils import extend_schema, extend_schema_field, extend_schema_serializer
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.reverse import reverse

from api.base import ModelViewSet
from api.errors import Conflict
from api.formserializer import FormSerializer
from api.permissions import ConsolePermissionsMixin
from messaging import filters, forms
from messaging.forms.databases import MAX_PASSWORD_LENGTH
from messaging.models import ExternalDatabase, ExternalDatabaseCheck, PersistentChatAssignment
from messaging.tasks import check_in_progress, request_check, request_install
from messaging.verify import request_database_checks, verify_ha

CHECK = "messaging.check_externaldatabase"


class CheckSerializer(serializers.ModelSerializer):
    class Meta:
        model = ExternalDatabaseCheck
        fields = ["name", "passed", "message", "checked_at", "duration"]
        read_only_fields = fields


class DatabaseStatusSerializer(serializers.ModelSerializer):
    checking = serializers.SerializerMethodField(help_text="A status check is queued or running; poll again.")
    checks = CheckSerializer(many=True, read_only=True, help_text="The latest result of each status check.")

    class Meta:
        model = ExternalDatabase
        fields = ["check_state", "checking", "check_requested_at", "last_checked_at", "status_note", "checks"]
        read_only_fields = fields

    def get_checking(self, obj) -> bool:
        return check_in_progress(obj)


class ExternalDatabaseSerializer(FormSerializer):
    url = serializers.SerializerMethodField()
    password = serializers.CharField(
        write_only=True,
        required=False,
        max_length=MAX_PASSWORD_LENGTH,
        style={"input_type": "password"},
        help_text="Write-only, never returned. Required when adding; on a change, leave out to keep the stored one.",
    )
    confirm_password = serializers.CharField(
        write_only=True, required=False, help_text="Write-only; defaults to the password sent."
    )
    port = serializers.IntegerField(
        required=False,
        allow_null=True,
        help_text="Defaults by type: Postgres 5432, Oracle 1521 (2484 with SSL), SQL Server 1433.",
    )
    status = serializers.SerializerMethodField()
    assigned_nodes = serializers.SerializerMethodField(help_text="Chat nodes using the database for persistent chat.")

    class Meta:
        model = ExternalDatabase
        form_class = forms.ExternalDatabaseForm
        fields = [
            "id",
            "url",
            "database_name",
            "db_type",
            "tablespace",
            "username",
            "password",
            "confirm_password",
            "hostname",
            "port",
            "enable_ssl",
            "certificate_name",
            "windows_authentication",
            "domain",
            "assigned_nodes",
            "status",
        ]

    def extra_form_inputs(self) -> tuple[str, ...]:
        return ("password", "confirm_password")

    def to_internal_value(self, data):
        if hasattr(data, "get") and "password" in data and "confirm_password" not in data:
            data = {**data, "confirm_password": data["password"]}
        return super().to_internal_value(data)

    def get_url(self, obj) -> str:
        return reverse("api:externaldatabase-detail", args=[obj.pk], request=self.context.get("request"))

    @extend_schema_field(DatabaseStatusSerializer)
    def get_status(self, obj) -> dict:
        return DatabaseStatusSerializer(obj).data

    def get_assigned_nodes(self, obj) -> list[str]:
        return [assignment.node.name for assignment in obj.assignments.all()]


WITH_STATUS = (
    Prefetch("checks"),
    Prefetch("assignments", queryset=PersistentChatAssignment.objects.select_related("node")),
)


class ExternalDatabaseViewSet(ModelViewSet):
    """External databases holding the persistent chat (tc_*) tables."""

    queryset = ExternalDatabase.objects.prefetch_related(*WITH_STATUS).order_by("hostname", "database_name")
    serializer_class = ExternalDatabaseSerializer
    filterset_class = filters.ExternalDatabaseFilter
    ordering_fields = ["hostname", "database_name", "db_type"]
    action_permissions = {"check": CHECK, "install_schema": "messaging.change_externaldatabase"}

    def destroy(self, request, *args, **kwargs):
        database = self.get_object()
        nodes = [str(a.node) for a in database.assignments.all()]
        if nodes:
            raise Conflict(
                f"{database} cannot be deleted: it is the persistent chat database of {', '.join(nodes)}. "
                "Unassign it on the Group Chat and Persistent Chat page first."
            )
        return super().destroy(request, *args, **kwargs)

    @extend_schema(responses={200: DatabaseStatusSerializer})
    @action(detail=True, methods=["get"], filterset_class=None)
    def status(self, request, pk=None):
        """External Database Status: the latest result of each check; ``checking`` while one runs."""
        return Response(DatabaseStatusSerializer(self.get_object()).data)

    @extend_schema(request=None, responses={202: DatabaseStatusSerializer})
    @action(detail=True, methods=["post"], filterset_class=None)
    def check(self, request, pk=None):
        """Check now: queue the status checks on a Celery worker; 202, follow ``status``."""
        database = self.get_object()
        request_check(database)
        location = reverse("api:externaldatabase-status", args=[database.pk], request=request)
        data = DatabaseStatusSerializer(ExternalDatabase.objects.get(pk=database.pk)).data
        return Response(data, status=status.HTTP_202_ACCEPTED, headers={"Location": location})

    @extend_schema(request=None, responses={202: DatabaseStatusSerializer})
    @action(detail=True, methods=["post"], url_path="install-schema", filterset_class=None)
    def install_schema(self, request, pk=None):
        """Install schema: create the TC tables in an empty database, on a Celery worker, then check it;
        202, follow ``status`` until ``checking`` is false: ``status_note`` says what the install did."""
        database = self.get_object()
        request_install(database)
        location = reverse("api:externaldatabase-status", args=[database.pk], request=request)
        data = DatabaseStatusSerializer(ExternalDatabase.objects.get(pk=database.pk)).data
        return Response(data, status=status.HTTP_202_ACCEPTED, headers={"Location": location})


class VerifyRowSerializer(serializers.Serializer):
    group = serializers.CharField(help_text="The presence redundancy group.")
    check = serializers.CharField()
    passed = serializers.BooleanField()
    reason = serializers.CharField()
    fix_url = serializers.CharField(help_text="The console page that fixes it.")
    checking = serializers.BooleanField(help_text="A check of the row's database is running on the worker.")


@extend_schema_serializer(many=False)
class VerifyHASerializer(serializers.Serializer):
    failures = serializers.IntegerField()
    checking = serializers.IntegerField(help_text="Rows waiting for a database check; poll again while above 0.")
    rows = VerifyRowSerializer(many=True)


class VerifyHAViewSet(ConsolePermissionsMixin, viewsets.ViewSet):
    """Verify High Availability Settings: one row per check of every redundancy group."""

    read_permission = "topology.view_redundancygroup"
    action_permissions = {"create": CHECK}
    serializer_class = VerifyHASerializer

    def _report(self) -> dict:
        rows = verify_ha(live=False)
        return {
            "failures": sum(not row.passed for row in rows),
            "checking": sum(row.checking for row in rows),
            "rows": [row.__dict__ for row in rows],
        }

    @extend_schema(responses={200: VerifyHASerializer})
    def list(self, request):
        """The report from the recorded database checks."""
        return Response(self._report())

    @extend_schema(request=None, responses={202: VerifyHASerializer})
    def create(self, request):
        """Verify: queue the checks of every assigned database on the worker; 202, poll the report."""
        request_database_checks()
        location = reverse("api:verify-ha-list", request=request)
        return Response(self._report(), status=status.HTTP_202_ACCEPTED, headers={"Location": location})
