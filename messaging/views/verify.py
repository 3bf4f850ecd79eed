"""Verify High Availability settings (System menu)."""

from __future__ import annotations

from django.contrib import messages
from django.shortcuts import redirect
from django.views.generic import TemplateView

from imp_admin.permissions import ConsolePermissionMixin
from messaging.verify import verify_ha


class VerifyHAView(ConsolePermissionMixin, TemplateView):
    """GET shows the report from the recorded database checks; POST checks the databases again."""

    template_name = "messaging/verify_ha.html"
    permission_required = "topology.view_redundancygroup"
    change_permission = "messaging.check_externaldatabase"

    def get_context_data(self, **kwargs):
        rows = verify_ha(live=False)
        return super().get_context_data(
            title="Verify High Availability Settings",
            rows=rows,
            failures=sum(not row.passed for row in rows),
            can_run=self.request.user.has_perm(self.change_permission),
            **kwargs,
        )

    def post(self, request, *args, **kwargs):
        rows = verify_ha(live=True)
        failed = sum(not row.passed for row in rows)
        if failed:
            messages.error(request, f"Verification finished: {failed} of {len(rows)} checks did not pass.")
        else:
            messages.success(request, f"Verification finished: all {len(rows)} checks passed.")
        return redirect("messaging:verify_ha")
