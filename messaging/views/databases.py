"""Messaging > External Server Setup > External Databases: Find and List, Add New, Edit,
Delete, and each database's page with its External Database Status."""

from __future__ import annotations

from django.contrib import messages
from django.db.models import Prefetch
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.views.generic import DetailView, View

from imp_admin.generic import ObjectDeleteView, ObjectEditView, ObjectListView
from imp_admin.permissions import ConsolePermissionMixin
from messaging import filters, forms, tables
from messaging.models import STATUS_CHECKS, ExternalDatabase, PersistentChatAssignment, StatusCheckName
from messaging.tasks import check_in_progress, request_check, request_install

WITH_STATUS = (
    Prefetch("checks"),
    Prefetch("assignments", queryset=PersistentChatAssignment.objects.select_related("node")),
)

# htmx stops polling when the answer is 286.
HTMX_STOP_POLLING = 286


def status_context(database: ExternalDatabase) -> dict:
    by_name = {check.name: check for check in database.checks.all()}
    return {
        "object": database,
        "status_rows": [(StatusCheckName(name).label, by_name.get(name)) for name in STATUS_CHECKS],
        "privileges": by_name.get(StatusCheckName.PRIVILEGES),
        "checking": check_in_progress(database),
    }


class ExternalDatabaseListView(ObjectListView):
    model = ExternalDatabase
    table_class = tables.ExternalDatabaseTable
    filterset_class = filters.ExternalDatabaseFilter
    add_url_name = "messaging:externaldatabase_add"

    def get_queryset(self):
        return ExternalDatabase.objects.prefetch_related(*WITH_STATUS)


class ExternalDatabaseEditView(ObjectEditView):
    model = ExternalDatabase
    form_class = forms.ExternalDatabaseForm
    list_url_name = "messaging:externaldatabase_list"
    template_name = "messaging/externaldatabase_edit.html"

    def form_valid(self, form):
        response = super().form_valid(form)
        if form.connection_changed:
            messages.info(self.request, f"The connection settings of {self.object} changed; it is being checked again.")
        return response


class ExternalDatabaseDeleteView(ObjectDeleteView):
    model = ExternalDatabase
    list_url_name = "messaging:externaldatabase_list"

    def form_valid(self, form):
        nodes = [str(a.node) for a in self.object.assignments.select_related("node")]
        if nodes:
            messages.error(
                self.request,
                f"{self.object} cannot be deleted: it is the persistent chat database of {', '.join(nodes)}. "
                "Unassign it on the Group Chat and Persistent Chat page first.",
            )
            return redirect(self.object.get_absolute_url())
        return super().form_valid(form)


class ExternalDatabaseDetailView(ConsolePermissionMixin, DetailView):
    """External Database Settings and External Database Status (reference 5.3)."""

    model = ExternalDatabase
    template_name = "messaging/externaldatabase_detail.html"
    permission_required = "messaging.view_externaldatabase"
    queryset = ExternalDatabase.objects.prefetch_related(*WITH_STATUS)

    def get_context_data(self, **kwargs):
        return super().get_context_data(**{**status_context(self.object), **kwargs})


class ExternalDatabaseStatusView(ConsolePermissionMixin, View):
    """The status panel alone, for htmx polling; answers 286 once no check is running."""

    permission_required = "messaging.view_externaldatabase"

    def get(self, request, pk):
        from django.template.loader import render_to_string

        database = get_object_or_404(ExternalDatabase.objects.prefetch_related("checks"), pk=pk)
        context = status_context(database)
        html = render_to_string("messaging/_database_status.html", context, request=request)
        return HttpResponse(html, status=200 if context["checking"] else HTMX_STOP_POLLING)


class ExternalDatabaseCheckView(ConsolePermissionMixin, View):
    """Check now (POST): queue the status checks on a Celery worker."""

    permission_required = "messaging.view_externaldatabase"
    change_permission = "messaging.check_externaldatabase"
    http_method_names = ["post"]

    def post(self, request, pk):
        database = get_object_or_404(ExternalDatabase, pk=pk)
        if request_check(database):
            messages.info(request, f"Checking {database}; the status below refreshes when the checks finish.")
        else:
            messages.info(request, f"A check of {database} is already running.")
        return redirect(database.get_absolute_url())


class ExternalDatabaseInstallView(ConsolePermissionMixin, View):
    """Install schema (POST): queue it on a Celery worker; the page follows it as it follows
    a check, and shows the outcome above the check results that follow it."""

    permission_required = "messaging.view_externaldatabase"
    change_permission = "messaging.change_externaldatabase"
    http_method_names = ["post"]

    def post(self, request, pk):
        database = get_object_or_404(ExternalDatabase, pk=pk)
        request_install(database)
        messages.info(request, f"Installing the TC schema in {database} on the worker; the status below follows it.")
        return redirect(database.get_absolute_url())
