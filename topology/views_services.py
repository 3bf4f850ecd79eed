"""Serviceability > Tools > Control Center and Service Activation; System > Service Parameters.

The views only write desired state (``Service.request``) and render the observed state the
node agents report; the agents do the work.
"""

from __future__ import annotations

from django.contrib import messages
from django.db import transaction
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.generic import TemplateView

from imp_admin.permissions import ConsolePermissionMixin
from topology.catalog import CATALOG, ControlAction, ServiceKind, ServiceName, dependents_of
from topology.forms_srm import NodeServiceParametersForm, ServiceParametersForm
from topology.models import Node, NodeServiceParameters, Service, ServiceParameters, ensure_services

HTMX_STOP_POLLING = 286  # htmx stops polling on this status


def _server(request) -> Node | None:
    """The server chosen with Go (``?server=<pk>``), or the first node."""
    nodes = Node.objects.all()
    chosen = request.GET.get("server") or request.POST.get("server")
    if chosen and chosen.isdigit():
        return nodes.filter(pk=chosen).first()
    return nodes.first()


class ServerChoiceMixin:
    """The "Select Server … Go" block shared by the Control Center pages."""

    def server_context(self, server: Node | None) -> dict:
        return {"servers": Node.objects.select_related("cluster"), "server": server}


class ControlCenterView(ConsolePermissionMixin, ServerChoiceMixin, TemplateView):
    """Control Center – Feature Services or Network Services (reference 8)."""

    kind: ServiceKind = ServiceKind.FEATURE
    permission_required = "topology.view_service"
    change_permission = "topology.control_services"
    template_name = "topology/controlcenter/services.html"
    table_template = "topology/controlcenter/_services_table.html"

    def services(self, server: Node | None) -> list[Service]:
        if server is None:
            return []
        ensure_services(server)
        names = [name for name, entry in CATALOG.items() if entry.kind == self.kind]
        return list(Service.objects.filter(node=server, name__in=names).select_related("node"))

    def url_name(self) -> str:
        return (
            "topology:controlcenter_feature" if self.kind == ServiceKind.FEATURE else "topology:controlcenter_network"
        )

    def get(self, request, *args, **kwargs):
        server = _server(request)
        services = self.services(server)
        context = {
            **self.server_context(server),
            "services": services,
            "kind": self.kind,
            "title": f"Control Center – {self.kind.label}",
            "polling": any(service.request_pending and not service.request_timed_out for service in services),
            "page_url": reverse(self.url_name()),
            "can_control": request.user.has_perm(self.change_permission),
        }
        if request.htmx:
            response = render(request, self.table_template, context)
            if not context["polling"]:
                response.status_code = HTMX_STOP_POLLING
            return response
        return render(request, self.template_name, context)

    def post(self, request, *args, **kwargs):
        server = _server(request)
        back = f"{reverse(self.url_name())}?server={server.pk if server else ''}"
        action = request.POST.get("action", "")
        service_id = request.POST.get("service", "")
        if action not in (ControlAction.START, ControlAction.STOP, ControlAction.RESTART):
            messages.error(request, "Choose Start, Stop or Restart.")
            return redirect(back)
        service = Service.objects.filter(pk=service_id if service_id.isdigit() else None, node=server).first()
        if service is None or service.kind != self.kind:
            messages.error(request, "Select a service first.")
            return redirect(back)
        if not service.activated:
            messages.error(
                request,
                f"{service.get_name_display()} is not activated on {server}; activate it on the Service "
                "Activation page first.",
            )
            return redirect(back)
        stopped_with_it = service.request(ControlAction(action))
        text = (
            f"{ControlAction(action).label} of {service.get_name_display()} on {server} requested; "
            "the status below follows what the node agent reports."
        )
        if stopped_with_it:
            names = ", ".join(dependent.get_name_display() for dependent in stopped_with_it)
            text += f" {names} stops with it and stays stopped until you start it (Control Center – Feature Services)."
        elif action == ControlAction.RESTART and dependents_of(service.name):
            text += " The services that depend on it and run restart with it."
        messages.info(request, text)
        return redirect(back)


class FeatureServicesView(ControlCenterView):
    kind = ServiceKind.FEATURE


class NetworkServicesView(ControlCenterView):
    kind = ServiceKind.NETWORK


class ServiceActivationView(ConsolePermissionMixin, ServerChoiceMixin, TemplateView):
    """Service Activation: a feature service must be activated before it can be started."""

    permission_required = "topology.view_service"
    change_permission = "topology.control_services"
    template_name = "topology/controlcenter/activation.html"

    def services(self, server: Node | None) -> list[Service]:
        if server is None:
            return []
        ensure_services(server)
        names = [name for name, entry in CATALOG.items() if entry.activatable]
        return list(Service.objects.filter(node=server, name__in=names))

    def get_context_data(self, **kwargs):
        server = _server(self.request)
        return super().get_context_data(
            **self.server_context(server),
            services=self.services(server),
            title="Service Activation",
            can_control=self.request.user.has_perm(self.change_permission),
            **kwargs,
        )

    def post(self, request, *args, **kwargs):
        server = _server(request)
        wanted = set(request.POST.getlist("activated"))
        changed = []
        for service in self.services(server):
            activate = str(service.pk) in wanted
            if activate != service.activated:
                service.request(ControlAction.ACTIVATE if activate else ControlAction.DEACTIVATE)
                changed.append(f"{service.get_name_display()} {'activated' if activate else 'deactivated'}")
        if changed:
            messages.success(request, f"On {server}: " + "; ".join(changed) + ".")
        else:
            messages.info(request, "Nothing to change.")
        return redirect(f"{reverse('topology:serviceactivation')}?server={server.pk if server else ''}")


class ServiceParametersView(ConsolePermissionMixin, ServerChoiceMixin, TemplateView):
    """System > Service Parameters for the Cisco Server Recovery Manager (reference 2)."""

    permission_required = "topology.view_serviceparameters"
    change_permission = "topology.change_serviceparameters"
    template_name = "topology/controlcenter/service_parameters.html"

    def forms(self, server: Node, data=None):
        cluster_params = ServiceParameters.for_cluster(server.cluster_id)
        node_params = NodeServiceParameters.for_node(server.pk)
        return (
            ServiceParametersForm(data, instance=cluster_params),
            NodeServiceParametersForm(data, instance=node_params),
        )

    def render_page(self, server: Node | None, forms=None):
        clusterwide, per_node = forms or (self.forms(server) if server else (None, None))
        return render(
            self.request,
            self.template_name,
            {
                **self.server_context(server),
                "title": "Service Parameter Configuration",
                "service_label": f"{ServiceName.SERVER_RECOVERY_MANAGER.label} (Active)",
                "clusterwide": clusterwide,
                "per_node": per_node,
                "can_save": self.request.user.has_perm(self.change_permission),
            },
        )

    def get(self, request, *args, **kwargs):
        return self.render_page(_server(request))

    def post(self, request, *args, **kwargs):
        server = _server(request)
        if server is None:
            return HttpResponse("Choose a server.", status=400)
        forms = self.forms(server, request.POST)
        if not all(form.is_valid() for form in forms):
            messages.error(request, "The parameters were not saved; correct the values marked below.")
            return self.render_page(server, forms)
        clusterwide, per_node = forms
        with transaction.atomic():
            clusterwide.save()
            per_node.save()  # and the peer's re-login limits, which must be equal on both nodes of a group
            peer = server.redundancy_group.peer_of(server) if server.redundancy_group_id else None
        messages.success(
            request,
            f"Cisco Server Recovery Manager parameters saved for cluster {server.cluster}"
            + (f" and nodes {server} and {peer}." if peer else f" and node {server}."),
        )
        return redirect(f"{reverse('topology:serviceparameters_edit')}?server={server.pk}")
