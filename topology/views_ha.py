"""The Server Action buttons and the HA panel of a presence redundancy group's page."""

from __future__ import annotations

from django.contrib import messages
from django.db import IntegrityError
from django.shortcuts import get_object_or_404, redirect, render
from django.views import View

from imp_admin.permissions import ConsolePermissionMixin
from topology.ha.actions import action_refusal
from topology.ha.panel import group_ha_context
from topology.models import RedundancyGroup, ServerAction, ServerActionName
from topology.views_services import HTMX_STOP_POLLING


class GroupServerActionView(ConsolePermissionMixin, View):
    """POST Failover, Fallback or Recover for one node; the group's SRM carries it out."""

    permission_required = "topology.view_redundancygroup"
    change_permission = "topology.run_server_action"
    http_method_names = ["post"]

    def post(self, request, pk: int):
        group = get_object_or_404(RedundancyGroup.objects.prefetch_related("members"), pk=pk)
        node = next((n for n in group.servers() if n is not None and str(n.pk) == request.POST.get("node")), None)
        action = request.POST.get("action", "")
        if node is None or action not in ServerActionName.values:
            messages.error(request, "Choose a server of this group and a Server Action.")
            return redirect(group)
        label = ServerActionName(action).label
        refusal = action_refusal(action, node, group.peer_of(node), group.ha_enabled)
        if refusal is not None:
            messages.error(request, f"{refusal} Nothing was done.")
            return redirect(group)
        try:
            ServerAction.objects.create(group=group, node=node, action=action)
        except IntegrityError:
            messages.error(request, "A Server Action is already waiting for this group's Server Recovery Manager.")
            return redirect(group)
        messages.info(request, f"{label} of {node} requested; the Server Recovery Manager carries it out.")
        return redirect(group)


class GroupHAPanelView(ConsolePermissionMixin, View):
    """The HA part of the group page, polled by htmx while a transition runs."""

    permission_required = "topology.view_redundancygroup"

    def get(self, request, pk: int):
        group = get_object_or_404(RedundancyGroup, pk=pk)
        context = group_ha_context(group, request.user)
        response = render(request, "topology/ha/_group_ha.html", context)
        if not context["polling"]:
            response.status_code = HTMX_STOP_POLLING
        return response
