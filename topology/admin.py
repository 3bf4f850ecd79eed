"""Django admin for bulk edits; every change goes through the console's own validation."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError

from topology.forms import RedundancyGroupForm
from topology.models import Cluster, EndUser, Node, RedundancyGroup


@admin.register(Cluster)
class ClusterAdmin(admin.ModelAdmin):
    list_display = ("name", "cluster_id", "domain", "user_assignment_mode")
    list_filter = ("user_assignment_mode",)
    search_fields = ("name", "cluster_id", "domain")


@admin.register(Node)
class NodeAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "cluster",
        "role",
        "ip_address",
        "redundancy_group",
        "group_position",
        "ha_state",
        "ha_reason",
        "last_heartbeat",
    )
    list_filter = ("cluster", "role", "ha_state")
    search_fields = ("name", "ip_address")
    list_select_related = ("cluster", "redundancy_group")
    readonly_fields = (
        "redundancy_group",
        "group_position",
        "ha_state",
        "ha_reason",
        "ha_state_changed_at",
        "last_heartbeat",
        "agent_started_at",
    )


def _set_ha(modeladmin, request, queryset, enabled: bool) -> None:
    changed = 0
    for group in queryset.prefetch_related("members"):
        group.ha_enabled = enabled
        try:
            group.full_clean()
        except ValidationError as exc:
            messages.error(request, f"Group {group}: {' '.join(exc.messages)}")
            continue
        group.save(update_fields=["ha_enabled"])
        changed += 1
    if changed:
        messages.success(request, f"High availability {'enabled' if enabled else 'disabled'} on {changed} group(s).")


@admin.action(description="Enable High Availability on the selected groups", permissions=["change"])
def enable_ha(modeladmin, request, queryset):
    _set_ha(modeladmin, request, queryset, True)


@admin.action(description="Disable High Availability on the selected groups", permissions=["change"])
def disable_ha(modeladmin, request, queryset):
    _set_ha(modeladmin, request, queryset, False)


@admin.register(RedundancyGroup)
class RedundancyGroupAdmin(admin.ModelAdmin):
    form = RedundancyGroupForm
    fields = ("name", "description", "server1", "server2", "ha_enabled")
    list_display = ("name", "cluster", "server_names", "ha_enabled")
    list_filter = ("cluster", "ha_enabled")
    search_fields = ("name", "description")
    list_select_related = ("cluster",)
    actions = [enable_ha, disable_ha]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("members")

    @admin.display(description="Presence servers")
    def server_names(self, group):
        return ", ".join(str(node) for node in group.servers() if node) or "—"


class AssignToNodeForm(admin.helpers.ActionForm):
    node = forms.ModelChoiceField(queryset=Node.objects.all(), required=False, label="Node")


@admin.action(description="Assign the selected users to the chosen node", permissions=["change"])
def assign_to_node(modeladmin, request, queryset):
    node_id = request.POST.get("node")
    node = Node.objects.filter(pk=node_id).first() if node_id else None
    if node is None:
        messages.error(request, "Choose the node to assign the users to.")
        return
    count = 0
    for user in queryset:
        user.assigned_node = node
        user.full_clean()
        user.save(update_fields=["assigned_node"])
        count += 1
    messages.success(request, f"{count} user(s) assigned to {node}.")


@admin.register(EndUser)
class EndUserAdmin(admin.ModelAdmin):
    list_display = ("user_id", "jid", "display_name", "assigned_node", "active_node")
    list_filter = ("assigned_node__cluster", "assigned_node")
    search_fields = ("user_id", "jid", "display_name")
    list_select_related = ("assigned_node", "active_node")
    action_form = AssignToNodeForm
    actions = [assign_to_node]
