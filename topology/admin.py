"""Django admin for bulk edits; every change goes through the console's own validation."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db import transaction
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.utils.cache import add_never_cache_headers

from topology.catalog import STARTING_ACTIONS, ControlAction
from topology.forms import RedundancyGroupForm
from topology.forms_srm import NodeServiceParametersForm, ServiceParametersForm
from topology.models import (
    Cluster,
    EndUser,
    HAAlarm,
    HATransition,
    Node,
    NodeServiceParameters,
    RedundancyGroup,
    ServerAction,
    Service,
    ServiceParameters,
)
from topology.models.topology import database_assignment_warning


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
        "heartbeat_expires_at",
        "agent_started_at",
        "rooms_hosted_by",
        "rooms_moving",
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
        warning = database_assignment_warning(group)
        if warning:
            messages.warning(request, warning)
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

    def delete_view(self, request, object_id, extra_context=None):
        group = self.get_object(request, object_id)
        refusal = group.delete_refusal() if group is not None else None
        if refusal:
            messages.error(request, refusal)
            return redirect("admin:topology_redundancygroup_change", object_id)
        return super().delete_view(request, object_id, extra_context)

    def delete_queryset(self, request, queryset):
        """One by one, so each group moves its servers out first (a bulk delete would not)."""
        for group in queryset:
            try:
                group.delete()
            except ValidationError as exc:
                messages.error(request, " ".join(exc.messages))

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


@admin.action(description="Generate one-time passwords for the selected users", permissions=["change"])
def generate_one_time_passwords(modeladmin, request, queryset):
    """Give each selected user a new random chat password and show the list once.

    Only the SCRAM keys are stored, so the page is the only place the passwords ever appear:
    it is the POST's response, marked not to be cached, and cannot be opened again.
    """
    from topology.credentials import generate_password, set_password

    issued = []
    with transaction.atomic():
        for user in queryset.order_by("user_id"):
            password = generate_password()
            set_password(user, password)
            issued.append((user, password))
    response = TemplateResponse(
        request,
        "admin/topology/enduser/one_time_passwords.html",
        {
            **modeladmin.admin_site.each_context(request),
            "title": "One-time passwords",
            "opts": modeladmin.model._meta,
            "issued": issued,
        },
    )
    add_never_cache_headers(response)
    return response


@admin.register(EndUser)
class EndUserAdmin(admin.ModelAdmin):
    list_display = ("user_id", "jid", "display_name", "assigned_node", "active_node", "password_set_at")
    list_filter = ("assigned_node__cluster", "assigned_node")
    search_fields = ("user_id", "jid", "display_name")
    list_select_related = ("assigned_node", "active_node")
    readonly_fields = (
        "password_set_at",
        "failed_sign_ins",
        "last_failed_sign_in_at",
        "last_failed_sign_in_source",
        "last_sign_in_at",
    )
    action_form = AssignToNodeForm
    actions = [assign_to_node, generate_one_time_passwords]


# --- Services, SRM parameters and what the SRM records ----------------------------------


def _request(modeladmin, request, queryset, action: ControlAction) -> None:
    """Record a Control Center request per service, exactly as the Control Center page does."""
    done, skipped = [], []
    for service in queryset.select_related("node"):
        if action in STARTING_ACTIONS and not service.activated:
            skipped.append(str(service))
            continue
        stopped_with_it = service.request(action)
        done.append(str(service) + "".join(f" (and {other.get_name_display()})" for other in stopped_with_it))
    if done:
        messages.success(request, f"{action.label} requested: {'; '.join(done)}. The node agents carry it out.")
    if skipped:
        messages.error(request, f"Not activated, so not started: {'; '.join(skipped)}. Activate them first.")


@admin.action(description="Start the selected services", permissions=["control"])
def start_services(modeladmin, request, queryset):
    _request(modeladmin, request, queryset, ControlAction.START)


@admin.action(description="Stop the selected services", permissions=["control"])
def stop_services(modeladmin, request, queryset):
    _request(modeladmin, request, queryset, ControlAction.STOP)


@admin.action(description="Restart the selected services", permissions=["control"])
def restart_services(modeladmin, request, queryset):
    _request(modeladmin, request, queryset, ControlAction.RESTART)


@admin.register(Service)
class ServiceAdmin(admin.ModelAdmin):
    """Services of every node. The desired state changes only through the Start/Stop/Restart
    actions (numbered requests the node agent carries out once); the status is the agent's."""

    list_display = (
        "node",
        "name",
        "activated",
        "desired_state",
        "status",
        "status_reason",
        "started_at",
        "request_action",
        "requested_at",
        "request_carried_out",
    )
    list_filter = ("name", "status", "desired_state", "activated", "node__cluster")
    search_fields = ("node__name", "status_reason")
    list_select_related = ("node",)
    actions = [start_services, stop_services, restart_services]
    readonly_fields = (
        "node",
        "name",
        "activated",
        "desired_state",
        "request_number",
        "request_action",
        "requested_at",
        "status",
        "status_reason",
        "status_changed_at",
        "started_at",
        "handled_request_number",
    )

    def has_add_permission(self, request):
        return False  # every node gets its catalog of services when it is created

    def has_control_permission(self, request):
        return request.user.has_perm("topology.control_services")

    @admin.display(boolean=True, description="Carried out")
    def request_carried_out(self, service):
        return service.handled_request_number >= service.request_number


@admin.register(ServiceParameters)
class ServiceParametersAdmin(admin.ModelAdmin):
    """Clusterwide Cisco Server Recovery Manager parameters, validated as on the console page."""

    form = ServiceParametersForm
    fields = ("cluster", *ServiceParametersForm.Meta.fields)
    list_display = (
        "cluster",
        "heartbeat_interval",
        "heartbeat_timeout",
        "initialization_heartbeat_timeout",
        "critical_service_delay",
        "enable_automatic_fallback",
        "automatic_fallback_delay",
    )
    list_filter = ("enable_automatic_fallback",)
    search_fields = ("cluster__name", "cluster__cluster_id")
    list_select_related = ("cluster",)


@admin.register(NodeServiceParameters)
class NodeServiceParametersAdmin(admin.ModelAdmin):
    """Per-node client re-login limits; saved on both nodes of a redundancy group, as on the console page."""

    form = NodeServiceParametersForm
    fields = ("node", "client_relogin_lower_limit", "client_relogin_upper_limit")
    list_display = ("node", "client_relogin_lower_limit", "client_relogin_upper_limit")
    search_fields = ("node__name",)
    list_filter = ("node__cluster",)
    list_select_related = ("node",)

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change, **kwargs)
        form.prefix = None  # the console page's "node-" prefix is for its two forms on one page
        return form

    def save_model(self, request, obj, form, change):
        with transaction.atomic():
            super().save_model(request, obj, form, change)
            group = obj.node.redundancy_group
            peer = group.peer_of(obj.node) if group is not None else None
            if peer is not None:
                peer_params = NodeServiceParameters.for_node(peer.pk)
                peer_params.client_relogin_lower_limit = obj.client_relogin_lower_limit
                peer_params.client_relogin_upper_limit = obj.client_relogin_upper_limit
                peer_params.save()
                messages.info(request, f"The same limits were saved for {peer}, the other node of {group}.")


class RecordedBySRMAdmin(admin.ModelAdmin):
    """What the Server Recovery Managers record: read-only history."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(HATransition)
class HATransitionAdmin(RecordedBySRMAdmin):
    list_display = ("at", "group", "node", "from_state", "to_state", "reason", "recorded_by")
    list_filter = ("to_state", "reason", "group")
    search_fields = ("node__name", "group__name")
    list_select_related = ("group", "node", "recorded_by")
    date_hierarchy = "at"


@admin.register(HAAlarm)
class HAAlarmAdmin(RecordedBySRMAdmin):
    list_display = ("raised_at", "name", "group", "from_node", "to_node", "reason")
    list_filter = ("name", "reason", "group")
    search_fields = ("from_node__name", "to_node__name", "group__name")
    list_select_related = ("group", "from_node", "to_node")
    date_hierarchy = "raised_at"


@admin.register(ServerAction)
class ServerActionAdmin(admin.ModelAdmin):
    """Failover, Fallback and Recover requests and their outcome. They are pressed on the group
    page, which checks the node's state and both agents first; here they are only listed."""

    list_display = ("requested_at", "group", "node", "action", "status", "result", "handled_at")
    list_filter = ("action", "status", "group")
    search_fields = ("node__name", "group__name", "result")
    list_select_related = ("group", "node")
    date_hierarchy = "requested_at"
    readonly_fields = ("group", "node", "action", "requested_at", "status", "result", "handled_at")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
