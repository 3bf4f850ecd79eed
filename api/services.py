"""Serviceability > Control Center and Service Activation, and System > Service Parameters.

A control action writes desired state (``Service.request``) that the node agent carries out,
so it answers 202 with the service to follow: its ``status`` is what the agent reports.
"""

from __future__ import annotations

import django_filters
from django.db import transaction
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.generics import get_object_or_404
from rest_framework.response import Response
from rest_framework.reverse import reverse

from api.base import ID, ReadOnlyViewSet
from api.errors import Conflict
from api.formserializer import FormSerializer
from api.permissions import ConsolePermissionsMixin
from topology.catalog import CATALOG, ControlAction, ServiceKind, ServiceName
from topology.forms_srm import NodeServiceParametersForm, ServiceParametersForm
from topology.models import Cluster, Node, NodeServiceParameters, Service, ServiceParameters

CONTROL = "topology.control_services"


class ServiceSerializer(serializers.ModelSerializer):
    url = serializers.SerializerMethodField()
    node_name = serializers.CharField(source="node.name", read_only=True)
    kind = serializers.ChoiceField(choices=ServiceKind.choices, read_only=True, help_text="Feature or network service.")
    request_action = serializers.ChoiceField(
        choices=ControlAction.choices, allow_blank=True, read_only=True, help_text="The latest action asked for."
    )
    request_pending = serializers.BooleanField(
        read_only=True, help_text="The node agent has not carried out the latest request yet; poll again."
    )
    request_timed_out = serializers.BooleanField(read_only=True)
    legend = serializers.CharField(read_only=True, help_text="Why a stopped service is stopped, as the page says.")

    class Meta:
        model = Service
        fields = [
            "id",
            "url",
            "node",
            "node_name",
            "name",
            "kind",
            "activated",
            "desired_state",
            "request_number",
            "request_action",
            "requested_at",
            "status",
            "status_reason",
            "started_at",
            "request_pending",
            "request_timed_out",
            "legend",
        ]
        read_only_fields = fields

    def get_url(self, obj) -> str:
        return reverse("api:service-detail", args=[obj.pk], request=self.context.get("request"))


class ControlResultSerializer(ServiceSerializer):
    stopped_with_it = serializers.ListField(
        child=serializers.CharField(), read_only=True, help_text="Services that depend on it and stop with it."
    )

    class Meta(ServiceSerializer.Meta):
        fields = [*ServiceSerializer.Meta.fields, "stopped_with_it"]


class ServiceFilter(django_filters.FilterSet):
    kind = django_filters.ChoiceFilter(choices=ServiceKind.choices, method="filter_kind", label="Kind")

    class Meta:
        model = Service
        fields = ["node", "name", "status", "kind"]

    def filter_kind(self, queryset, name, value):
        return queryset.filter(name__in=[entry.name for entry in CATALOG.values() if entry.kind == value])


class ServiceViewSet(ReadOnlyViewSet):
    """Services of every node as the Control Center shows them, and their control actions."""

    queryset = Service.objects.select_related("node").order_by("node__name", "name")
    serializer_class = ServiceSerializer
    filterset_class = ServiceFilter
    ordering_fields = ["node__name", "name", "status"]
    action_permissions = {name: CONTROL for name in ("start", "stop", "restart", "activate", "deactivate")}

    def _control(self, request, pk, control: ControlAction) -> Response:
        service = get_object_or_404(Service.objects.select_related("node"), pk=pk)
        label = service.get_name_display()
        if control in (ControlAction.ACTIVATE, ControlAction.DEACTIVATE):
            if not service.entry.activatable:
                raise Conflict(f"{label} is a network service; only feature services are activated or deactivated.")
        elif not service.activated:
            raise Conflict(
                f"{label} is not activated on {service.node}; activate it on the Service Activation page first."
            )
        stopped_with_it = service.request(control)
        data = ControlResultSerializer(service, context={"request": request}).data
        data["stopped_with_it"] = [str(ServiceName(dependent.name).label) for dependent in stopped_with_it]
        return Response(data, status=status.HTTP_202_ACCEPTED, headers={"Location": data["url"]})

    @extend_schema(request=None, responses={202: ControlResultSerializer})
    @action(detail=True, methods=["post"], filterset_class=None)
    def start(self, request, pk=None):
        """Start (Control Center). 202: the node agent starts it; follow ``status``."""
        return self._control(request, pk, ControlAction.START)

    @extend_schema(request=None, responses={202: ControlResultSerializer})
    @action(detail=True, methods=["post"], filterset_class=None)
    def stop(self, request, pk=None):
        """Stop (Control Center); the services that depend on it stop with it and stay stopped."""
        return self._control(request, pk, ControlAction.STOP)

    @extend_schema(request=None, responses={202: ControlResultSerializer})
    @action(detail=True, methods=["post"], filterset_class=None)
    def restart(self, request, pk=None):
        """Restart (Control Center); the running services that depend on it restart with it."""
        return self._control(request, pk, ControlAction.RESTART)

    @extend_schema(request=None, responses={202: ControlResultSerializer})
    @action(detail=True, methods=["post"], filterset_class=None)
    def activate(self, request, pk=None):
        """Activate a feature service (Service Activation); activating starts it."""
        return self._control(request, pk, ControlAction.ACTIVATE)

    @extend_schema(request=None, responses={202: ControlResultSerializer})
    @action(detail=True, methods=["post"], filterset_class=None)
    def deactivate(self, request, pk=None):
        """Deactivate a feature service (Service Activation); it stops."""
        return self._control(request, pk, ControlAction.DEACTIVATE)


class ServiceParametersSerializer(FormSerializer):
    cluster = serializers.IntegerField(source="cluster_id", read_only=True)

    class Meta:
        model = ServiceParameters
        form_class = ServiceParametersForm
        fields = ["cluster", *ServiceParametersForm.Meta.fields]


class ServiceParametersViewSet(ConsolePermissionsMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Cisco Server Recovery Manager clusterwide parameters, one set per cluster (by cluster id)."""

    lookup_value_regex = ID
    queryset = Cluster.objects.order_by("name")
    serializer_class = ServiceParametersSerializer
    read_permission = "topology.view_serviceparameters"
    action_permissions = {"partial_update": "topology.change_serviceparameters"}
    http_method_names = ["get", "patch", "head", "options"]
    lookup_url_kwarg = "pk"

    def get_object(self):
        cluster = super().get_object()
        return ServiceParameters.for_cluster(cluster.pk)

    def partial_update(self, request, pk=None):
        serializer = self.get_serializer(self.get_object(), data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        serializer.save()
        return Response(serializer.data)


class NodeServiceParametersSerializer(FormSerializer):
    node = serializers.IntegerField(source="node_id", read_only=True)

    class Meta:
        model = NodeServiceParameters
        form_class = NodeServiceParametersForm
        fields = ["node", *NodeServiceParametersForm.Meta.fields]


class NodeServiceParametersViewSet(ConsolePermissionsMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Per-node SRM parameters (client re-login limits), kept equal on both nodes of a group."""

    lookup_value_regex = ID
    queryset = Node.objects.select_related("redundancy_group").order_by("name")
    serializer_class = NodeServiceParametersSerializer
    read_permission = "topology.view_serviceparameters"
    action_permissions = {"partial_update": "topology.change_serviceparameters"}
    http_method_names = ["get", "patch", "head", "options"]

    def get_object(self):
        node = super().get_object()
        return NodeServiceParameters.for_node(node.pk)

    def partial_update(self, request, pk=None):
        serializer = self.get_serializer(self.get_object(), data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        with transaction.atomic():
            serializer.save()
        return Response(serializer.data)
