"""Messaging > Group Chat and Persistent Chat (with the Persistent Chat Database Assignment)."""

from __future__ import annotations

from django.contrib import messages
from django.db import transaction
from django.shortcuts import redirect
from django.urls import reverse
from django.views.generic import TemplateView

from imp_admin.permissions import ConsolePermissionMixin
from messaging import forms
from messaging.chat_settings import restart_notice, save_settings
from messaging.database_assignment import assign
from messaging.models import ChatSettings, PersistentChatAssignment
from messaging.models.chat_settings import SETTING_FIELDS
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
        form, assignment_form = context["settings_form"], context["assignment_form"]
        if form is not None and not form.is_bound:
            # The fields rendered are a function of what they show alone: the template keeps them
            # in the cache under those values, so no change can show a stale page.
            context["settings_form_key"] = repr([self.cluster.pk, *(form.initial.get(f) for f in SETTING_FIELDS)])
            context["assignment_form_key"] = assignment_form.rendering_key()
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
        # A new database for some nodes needs their Text Conference Manager restarted, not the
        # cluster's: a needless restart on an HA pair serving users is not free.
        if settings_form.has_changed():
            messages.warning(request, restart_notice(self.cluster))
        elif changed := assignment_form.changed_nodes():
            messages.warning(request, restart_notice(self.cluster, only=changed))
        return redirect(here)
