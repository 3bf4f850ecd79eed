"""Messaging > Group Chat Server Alias Mapping (reference 4.4): Find and List, Add New, Edit,
Delete and Delete Selected."""

from __future__ import annotations

from django.contrib import messages
from django.db import transaction
from django.shortcuts import redirect, render
from django.views.generic import View

from imp_admin.generic import ObjectDeleteView, ObjectEditView, ObjectListView
from imp_admin.permissions import ConsolePermissionMixin
from messaging import filters, forms, tables
from messaging.chat_settings import restart_notice
from messaging.models import ChatAlias, ChatSettings
from messaging.models.aliases import system_alias
from topology.models import Node


class ChatAliasListView(ObjectListView):
    model = ChatAlias
    table_class = tables.ChatAliasTable
    filterset_class = filters.ChatAliasFilter
    add_url_name = "messaging:chatalias_add"
    template_name = "messaging/chatalias_list.html"

    def get_queryset(self):
        return ChatAlias.objects.select_related("node__cluster")

    def get_table_kwargs(self):
        if self.request.user.has_perm("messaging.delete_chatalias"):
            return {}
        return {"exclude": ("pk",)}

    def get_context_data(self, **kwargs):
        managed = {s.cluster_id for s in ChatSettings.objects.filter(auto_manage_aliases=False)}
        system = [
            (node, system_alias(node))
            for node in Node.objects.select_related("cluster").order_by("cluster__name", "name")
            if node.cluster_id not in managed
        ]
        return super().get_context_data(
            system_aliases=system, can_delete=self.request.user.has_perm("messaging.delete_chatalias"), **kwargs
        )


class ChatAliasEditView(ObjectEditView):
    model = ChatAlias
    form_class = forms.ChatAliasForm
    list_url_name = "messaging:chatalias_list"

    def form_valid(self, form):
        response = super().form_valid(form)
        messages.warning(self.request, restart_notice(self.object.node.cluster, router=True))
        return response


class ChatAliasDeleteView(ObjectDeleteView):
    model = ChatAlias
    list_url_name = "messaging:chatalias_list"


class ChatAliasBulkDeleteView(ConsolePermissionMixin, View):
    """Delete Selected (reference 4.4): the list posts the ticked aliases, this page asks for a
    confirmation, and the confirmed POST deletes them (each one recorded in the audit trail)."""

    permission_required = "messaging.view_chatalias"
    change_permission = "messaging.delete_chatalias"
    http_method_names = ["post"]

    def post(self, request):
        ids = [int(value) for value in request.POST.getlist("pk") if value.isdigit()]
        aliases = list(ChatAlias.objects.filter(pk__in=ids).select_related("node__cluster"))
        if not aliases:
            messages.warning(request, "Select at least one group chat server alias to delete.")
            return redirect("messaging:chatalias_list")
        if request.POST.get("confirm") != "yes":
            return render(
                request,
                "messaging/chatalias_bulk_delete.html",
                {"title": "Delete Selected Group Chat Server Aliases", "aliases": aliases},
            )
        clusters = {alias.node.cluster_id: alias.node.cluster for alias in aliases}
        with transaction.atomic():
            for alias in aliases:
                alias.delete()  # one by one, so the audit trail records each alias
        names = ", ".join(alias.alias for alias in aliases)
        messages.success(
            request, f"Deleted {len(aliases)} group chat server alias{'es' if len(aliases) != 1 else ''}: {names}."
        )
        for cluster in clusters.values():
            messages.warning(request, restart_notice(cluster))
        return redirect("messaging:chatalias_list")
