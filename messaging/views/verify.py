"""Verify High Availability settings (System menu)."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect
from django.template.loader import render_to_string
from django.views.generic import TemplateView, View

from imp_admin.permissions import ConsolePermissionMixin
from messaging.verify import request_database_checks, verify_ha
from messaging.views.databases import HTMX_STOP_POLLING


def results_context() -> dict:
    rows = verify_ha(live=False)
    return {
        "rows": rows,
        "failures": sum(row.failed for row in rows),
        "warnings": sum(row.warning for row in rows),
        "checking": sum(row.checking for row in rows),
    }


class VerifyHAView(ConsolePermissionMixin, TemplateView):
    """GET shows the report from the recorded database checks; POST (Verify) queues the checks
    of every assigned database on the worker, and the page fills in their results as they come."""

    template_name = "messaging/verify_ha.html"
    permission_required = "topology.view_redundancygroup"
    change_permission = "messaging.check_externaldatabase"

    def get_context_data(self, **kwargs):
        return super().get_context_data(
            title="Verify High Availability Settings",
            can_run=self.request.user.has_perm(self.change_permission),
            **results_context(),
            **kwargs,
        )

    def post(self, request, *args, **kwargs):
        count = request_database_checks()
        if count:
            messages.info(
                request,
                f"Checking {count} external database{'s' if count != 1 else ''} on the worker; "
                "the database checks below fill in as each check finishes.",
            )
        else:
            messages.info(request, "No external database is assigned to a chat node; there is no database to check.")
        return redirect("messaging:verify_ha")


class VerifyHAResultsView(ConsolePermissionMixin, View):
    """The results table alone, for htmx polling; answers 286 once no database check runs."""

    permission_required = "topology.view_redundancygroup"

    def get(self, request):
        context = results_context()
        html = render_to_string("messaging/_verify_ha_results.html", context, request=request)
        return HttpResponse(html, status=200 if context["checking"] else HTMX_STOP_POLLING)
