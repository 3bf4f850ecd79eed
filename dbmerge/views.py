"""Messaging > External Server Setup > External Database Jobs: list, add, details, actions.

Thin views: the job's life cycle is in ``dbmerge.jobrunner``, the checks in
``dbmerge.validation``, the merge in ``dbmerge.engines``.
"""

from __future__ import annotations

from django.contrib import messages
from django.db import transaction
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.utils.cache import patch_vary_headers
from django.views.generic import DetailView, FormView, View

from dbmerge import jobrunner, tasks
from dbmerge.choices import AVAILABLE_FEATURE_TABLES, JobKind, MergeDatabaseType
from dbmerge.filters import MergeJobFilter
from dbmerge.forms import DATABASE_FIELDS, MergeJobForm
from dbmerge.models import MergeJob
from dbmerge.preview import PREVIEW_POSTGRES_ONLY
from dbmerge.tables import MergeJobTable
from imp_admin.generic import ObjectDeleteView, ObjectListView
from imp_admin.permissions import ConsolePermissionMixin

# htmx stops polling when the answer is 286.
HTMX_STOP_POLLING = 286
MERGE_NEEDS_VALIDATION = (
    "Merge Selected Tables is allowed only after a validation of the same selection passed; "
    "press Validate Selected Tables first."
)


class MergeJobListView(ObjectListView):
    """Find and List External Database Jobs."""

    model = MergeJob
    table_class = MergeJobTable
    filterset_class = MergeJobFilter
    add_url_name = "dbmerge:mergejob_add"

    def get(self, request, *args, **kwargs):
        jobrunner.mark_stale_jobs()
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        return MergeJob.objects.select_related("source_1", "source_2", "target", "created_by")

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["title"] = "Find and List External Database Jobs"
        return context


class MergeJobAddView(ConsolePermissionMixin, FormView):
    """Add Merge Job: Validate Selected Tables, then Merge Selected Tables.

    Any change of the form asks (htmx GET with the form's values) for the form again: the
    drop-downs follow the Database Type, and Merge Selected Tables is enabled when the latest
    job of the selection passed its validation.
    """

    form_class = MergeJobForm
    template_name = "dbmerge/mergejob_add.html"
    partial_template_name = "dbmerge/_mergejob_add_form.html"
    permission_required = "dbmerge.view_mergejob"
    change_permission = "dbmerge.add_mergejob"
    shown_fields = ("db_type", *DATABASE_FIELDS, "tablespace", "database_name", "method")

    def get_template_names(self) -> list[str]:
        return [self.partial_template_name if self.request.htmx else self.template_name]

    def get_initial(self) -> dict:
        initial = super().get_initial()
        if self.request.method == "GET":
            initial.update({name: self.request.GET[name] for name in self.shown_fields if name in self.request.GET})
        return initial

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context.update(
            title="Add External Database Merge Job",
            available_feature_tables=AVAILABLE_FEATURE_TABLES,
            can_add=self.request.user.has_perm("dbmerge.add_mergejob"),
            merge_job=self._awaiting_merge(context["form"]),
        )
        return context

    def _awaiting_merge(self, form: MergeJobForm) -> MergeJob | None:
        """The validated job Merge Selected Tables would merge, for the selection shown."""
        if not form.is_bound:
            if not self.request.GET:
                return None
            form = MergeJobForm(data=self.request.GET)
        return MergeJob.objects.awaiting_merge(form.selection()) if form.is_valid() else None

    def render_to_response(self, context, **kwargs):
        response = super().render_to_response(context, **kwargs)
        patch_vary_headers(response, ["HX-Request"])
        return response

    def form_valid(self, form):
        data = form.cleaned_data
        selection = form.selection()
        if self.request.POST.get("action") == "merge":
            job = MergeJob.objects.awaiting_merge(selection)
            if job is None:
                form.add_error(None, MERGE_NEEDS_VALIDATION)
                return self.form_invalid(form)
            return self._merge(job)
        fields = {
            "database_name": data["database_name"],
            "feature_tables": data["feature_tables"],
            "created_by": self.request.user,
        }
        if self.request.POST.get("action") == "preview":
            if data["db_type"] != MergeDatabaseType.POSTGRES:
                form.add_error(None, PREVIEW_POSTGRES_ONLY)
                return self.form_invalid(form)
            job = tasks.request_preview(selection, **fields)
            messages.info(self.request, f"Merge job {job.pk}: validation and preview started; nothing is written.")
            return redirect(job)
        with transaction.atomic():
            job = MergeJob.objects.create(**selection, **fields, kind=JobKind.VALIDATE)
            tasks.enqueue(job)
        messages.info(self.request, f"Merge job {job.pk}: validation started.")
        return redirect(job)

    def _merge(self, job: MergeJob):
        with transaction.atomic():
            started = tasks.request_merge(job)
        if started:
            messages.info(self.request, f"Merge job {job.pk}: merge started.")
        else:
            messages.error(self.request, MERGE_NEEDS_VALIDATION)
        return redirect(job)


class MergeJobDetailView(ConsolePermissionMixin, DetailView):
    """The job's details: state, Validation Details, progress, report, log, next steps."""

    model = MergeJob
    template_name = "dbmerge/mergejob_detail.html"
    permission_required = "dbmerge.view_mergejob"
    queryset = MergeJob.objects.select_related("source_1", "source_2", "target", "created_by")

    def get(self, request, *args, **kwargs):
        jobrunner.mark_stale_jobs()
        return super().get(request, *args, **kwargs)

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        job = self.object
        context.update(
            title=f"External Database Merge Job {job.pk}",
            can_change=self.request.user.has_perm("dbmerge.change_mergejob"),
            checks=list(job.checks.all()),
            log_entries=list(job.log_entries.all()),
            tables=sorted(job.progress.items()),
        )
        return context


class MergeJobStatusView(MergeJobDetailView):
    """The live part of the details page alone, for htmx polling; 286 once the job is done."""

    template_name = "dbmerge/_mergejob_status.html"

    def render_to_response(self, context, **kwargs):
        response = super().render_to_response(context, **kwargs)
        if not self.object.is_active:
            response.status_code = HTMX_STOP_POLLING
        return response


class MergeJobActionView(ConsolePermissionMixin, View):
    permission_required = "dbmerge.view_mergejob"
    change_permission = "dbmerge.change_mergejob"
    http_method_names = ["post"]


class MergeJobMergeView(MergeJobActionView):
    """Merge Selected Tables for a validated job."""

    def post(self, request, pk: int) -> HttpResponse:
        job = get_object_or_404(MergeJob, pk=pk)
        with transaction.atomic():
            started = tasks.request_merge(job)
        if started:
            messages.info(request, f"Merge job {job.pk}: merge started.")
        else:
            messages.error(request, MERGE_NEEDS_VALIDATION)
        return redirect(job)


class MergeJobCancelView(MergeJobActionView):
    """Cancel a pending or running job."""

    def post(self, request, pk: int) -> HttpResponse:
        job = get_object_or_404(MergeJob, pk=pk)
        if jobrunner.request_cancel(job):
            messages.info(request, f"Merge job {job.pk}: cancellation requested.")
        else:
            messages.error(
                request, f"Merge job {job.pk} is {job.get_state_display()}; only a running job can be cancelled."
            )
        return redirect(reverse("dbmerge:mergejob_detail", args=[job.pk]))


class MergeJobDeleteView(ObjectDeleteView):
    """Delete a finished job (super administrators: delete_mergejob); its report stays in the
    audit trail, and the databases it named can then be deleted."""

    model = MergeJob
    list_url_name = "dbmerge:mergejob_list"

    def form_valid(self, form):
        name = str(self.object)
        if not jobrunner.delete_finished(self.object):
            messages.error(
                self.request,
                f"{name} is {self.object.get_state_display()}; only a job that is not pending or running can be "
                "deleted. Cancel it first.",
            )
            return redirect(self.object)
        messages.success(self.request, f"{name} deleted; its report is kept in the audit trail.")
        return redirect(self.get_success_url())
