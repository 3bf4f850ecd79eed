"""Messaging > Group Chat System Administrators (reference 4.5): the "Enable Group Chat System
Administrators" switch of each cluster, and Find and List, Add New, Edit and Delete."""

from __future__ import annotations

from django.contrib import messages
from django.db import transaction
from django.shortcuts import redirect
from django.views.generic import View

from imp_admin.generic import ObjectDeleteView, ObjectEditView, ObjectListView
from imp_admin.permissions import ConsolePermissionMixin
from messaging import filters, forms, tables
from messaging.models import ChatSettings, GroupChatAdministrator
from topology.models import Cluster

APPLIES_NOTICE = (
    "The Text Conference Manager of each node reads the list and the switch within a few seconds; no restart is needed."
)


def enable_field(cluster: Cluster) -> str:
    return f"enable_{cluster.pk}"


class GroupChatAdministratorListView(ObjectListView):
    model = GroupChatAdministrator
    table_class = tables.GroupChatAdministratorTable
    filterset_class = filters.GroupChatAdministratorFilter
    add_url_name = "messaging:groupchatadministrator_add"
    template_name = "messaging/groupchatadministrator_list.html"

    def get_queryset(self):
        return GroupChatAdministrator.objects.select_related("cluster")

    def get_context_data(self, **kwargs):
        enabled = set(ChatSettings.objects.filter(enable_system_administrators=True).values_list("cluster", flat=True))
        clusters = Cluster.objects.order_by("name")
        switches = [(cluster, enable_field(cluster), cluster.pk in enabled) for cluster in clusters]
        return super().get_context_data(
            switches=switches,
            can_enable=self.request.user.has_perm(GroupChatAdministratorEnableView.change_permission),
            **kwargs,
        )


class GroupChatAdministratorEnableView(ConsolePermissionMixin, View):
    """Save "Enable Group Chat System Administrators" of every cluster (POST)."""

    permission_required = "messaging.view_chatsettings"
    change_permission = "messaging.change_chatsettings"
    http_method_names = ["post"]

    def post(self, request):
        changed = []
        with transaction.atomic():
            for cluster in Cluster.objects.order_by("name"):
                wanted = request.POST.get(enable_field(cluster)) == "on"
                settings = ChatSettings.for_cluster(cluster)
                if settings.enable_system_administrators != wanted:
                    settings.enable_system_administrators = wanted
                    settings.save(update_fields=["enable_system_administrators", "updated_at"])
                    changed.append(f"{'on' if wanted else 'off'} for {cluster}")
        if changed:
            messages.success(request, f"Enable Group Chat System Administrators is now {'; '.join(changed)}.")
            messages.info(request, APPLIES_NOTICE)
        else:
            messages.info(request, "Nothing changed.")
        return redirect("messaging:groupchatadministrator_list")


class GroupChatAdministratorEditView(ObjectEditView):
    model = GroupChatAdministrator
    form_class = forms.GroupChatAdministratorForm
    list_url_name = "messaging:groupchatadministrator_list"
    delete_url_name = "messaging:groupchatadministrator_delete"

    def form_valid(self, form):
        response = super().form_valid(form)
        if not ChatSettings.peek(self.object.cluster).enable_system_administrators:
            messages.warning(
                self.request,
                f"Group chat system administrators are not enabled on {self.object.cluster}: "
                "turn on Enable Group Chat System Administrators for the list to count.",
            )
        return response


class GroupChatAdministratorDeleteView(ObjectDeleteView):
    model = GroupChatAdministrator
    list_url_name = "messaging:groupchatadministrator_list"
