"""Messaging > Group Chat and Persistent Chat (with the Persistent Chat Database Assignment)
and Messaging > Group Chat Server Alias Mapping."""

from __future__ import annotations

from django.contrib import messages
from django.db import transaction
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.generic import TemplateView, View

from imp_admin.generic import ObjectDeleteView, ObjectEditView, ObjectListView
from imp_admin.permissions import ConsolePermissionMixin
from messaging import filters, forms, tables
from messaging.assignment import assign
from messaging.chatsettings import restart_notice, save_settings
from messaging.models import ChatAlias, ChatSettings, PersistentChatAssignment
from topology.models import Cluster, Node


class ChatSettingsView(ConsolePermissionMixin, TemplateView):
    """One settings page per cluster (``?cluster=<pk>``), with the database assignment."""

    template_name = "messaging/chatsettings_edit.html"
    permission_required = ("messaging.view_chatsettings", "messaging.view_persistentchatassignment")
    change_permission = "messaging.change_chatsettings"

    def dispatch(self, request, *args, **kwargs):
        self.clusters = list(Cluster.objects.order_by("name"))
        wanted = request.GET.get("cluster") or request.POST.get("cluster")
        self.cluster = next((c for c in self.clusters if str(c.pk) == str(wanted)), None) or (
            self.clusters[0] if self.clusters else None
        )
        return super().dispatch(request, *args, **kwargs)

    def forms(self, data=None):
        if self.cluster is None:
            return None, None
        settings = ChatSettings.peek(self.cluster)
        nodes = list(Node.objects.filter(cluster=self.cluster).select_related("redundancy_group").order_by("name"))
        current = {
            a.node_id: a.database
            for a in PersistentChatAssignment.objects.filter(node__in=nodes).select_related("database")
        }
        settings_form = forms.ChatSettingsForm(data, instance=settings, prefix="settings")
        assignment_form = forms.DatabaseAssignmentForm(data, nodes=nodes, current=current, prefix="assign")
        return settings_form, assignment_form

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        if "settings_form" not in kwargs:
            context["settings_form"], context["assignment_form"] = self.forms()
        context.update(
            title="Group Chat and Persistent Chat Settings",
            clusters=self.clusters,
            cluster=self.cluster,
            can_save=self.request.user.has_perm(self.change_permission),
        )
        return context

    def post(self, request, *args, **kwargs):
        if self.cluster is None:
            return redirect("messaging:chatsettings_edit")
        here = reverse("messaging:chatsettings_edit") + f"?cluster={self.cluster.pk}"
        if request.POST.get("action") == "defaults":
            settings = ChatSettings.for_cluster(self.cluster)
            settings.reset_to_defaults()
            save_settings(settings)
            messages.success(request, f"Group chat and persistent chat settings of {self.cluster} set to defaults.")
            messages.warning(request, restart_notice(self.cluster))
            return redirect(here)
        settings_form, assignment_form = self.forms(request.POST)
        if not (settings_form.is_valid() and assignment_form.is_valid()):
            messages.error(request, "Nothing was saved; correct the fields marked below.")
            return self.render_to_response(
                self.get_context_data(settings_form=settings_form, assignment_form=assignment_form)
            )
        with transaction.atomic():
            save_settings(settings_form.save(commit=False))
            assign(assignment_form.proposed())
        messages.success(request, f"Group chat and persistent chat settings of {self.cluster} saved.")
        messages.warning(request, restart_notice(self.cluster))
        return redirect(here)


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
        from messaging.aliases import system_alias

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
