"""Server Actions (Failover, Fallback, Recover), the HA timeline and the SRM alarms of the
presence redundancy groups. A Server Action is a request an SRM of the group carries out, so
asking for one answers 202 with the request to follow."""

from __future__ import annotations

import django_filters
from django.db import IntegrityError, transaction
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.decorators import action
from rest_framework.generics import get_object_or_404
from rest_framework.response import Response
from rest_framework.reverse import reverse

from api.base import ModelViewSet, ReadOnlyViewSet
from api.errors import Conflict
from api.formserializer import FormSerializer
from topology.choices import HAState
from topology.ha.actions import action_refusal
from topology.ha.panel import group_ha_context
from topology.models import AlarmRecipient, HAAlarm, HATransition, Node, RedundancyGroup, ServerAction, ServerActionName
from topology.views_alarms import AlarmRecipientFilter, AlarmRecipientForm


class ServerActionSerializer(serializers.ModelSerializer):
    url = serializers.SerializerMethodField(help_text="Follow this to see when the SRM carried it out.")

    class Meta:
        model = ServerAction
        fields = ["id", "url", "group", "node", "action", "requested_at", "status", "result", "handled_at"]
        read_only_fields = fields

    def get_url(self, obj) -> str:
        return reverse("api:serveraction-detail", args=[obj.pk], request=self.context.get("request"))


class ServerActionRequestSerializer(serializers.Serializer):
    node = serializers.IntegerField(help_text="Server 1 or Server 2 of the group.")
    action = serializers.ChoiceField(choices=ServerActionName.choices)


class ServerActionFilter(django_filters.FilterSet):
    class Meta:
        model = ServerAction
        fields = ["group", "node", "action", "status"]


class ServerActionViewSet(ReadOnlyViewSet):
    """Server Actions asked for, and what the Server Recovery Manager did with each."""

    queryset = ServerAction.objects.order_by("-requested_at", "-pk")
    serializer_class = ServerActionSerializer
    filterset_class = ServerActionFilter
    ordering_fields = ["requested_at"]


def request_server_action(request, group: RedundancyGroup) -> Response:
    """POST Failover, Fallback or Recover of one node; the group's SRM carries it out."""
    body = ServerActionRequestSerializer(data=request.data)
    body.is_valid(raise_exception=True)
    node = next((n for n in group.servers() if n is not None and n.pk == body.validated_data["node"]), None)
    if node is None:
        raise serializers.ValidationError({"node": ["Choose a server of this group."]})
    action_name = body.validated_data["action"]
    refusal = action_refusal(action_name, node, group.peer_of(node), group.ha_enabled)
    if refusal is not None:
        raise Conflict(f"{refusal} Nothing was done.")
    try:
        with transaction.atomic():
            created = ServerAction.objects.create(group=group, node=node, action=action_name)
    except IntegrityError:
        raise Conflict("A Server Action is already waiting for this group's Server Recovery Manager.") from None
    data = ServerActionSerializer(created, context={"request": request}).data
    return Response(data, status=status.HTTP_202_ACCEPTED, headers={"Location": data["url"]})


class HATransitionSerializer(serializers.ModelSerializer):
    node_name = serializers.CharField(source="node.name", read_only=True)

    class Meta:
        model = HATransition
        fields = ["id", "group", "node", "node_name", "at", "from_state", "to_state", "reason", "recorded_by"]
        read_only_fields = fields


class HATransitionFilter(django_filters.FilterSet):
    since = django_filters.IsoDateTimeFilter(field_name="at", lookup_expr="gte", label="Since")

    class Meta:
        model = HATransition
        fields = ["group", "node", "since"]


class HATransitionViewSet(ReadOnlyViewSet):
    """The HA timeline: every change of a node's HA state, as its SRM recorded it."""

    queryset = HATransition.objects.select_related("node").order_by("-at", "-pk")
    serializer_class = HATransitionSerializer
    filterset_class = HATransitionFilter
    ordering_fields = ["at"]
    read_permission = "topology.view_redundancygroup"


class HAAlarmSerializer(serializers.ModelSerializer):
    class Meta:
        model = HAAlarm
        fields = ["id", "name", "raised_at", "group", "from_node", "to_node", "reason", "text"]
        read_only_fields = fields


class HAAlarmFilter(django_filters.FilterSet):
    since = django_filters.IsoDateTimeFilter(field_name="raised_at", lookup_expr="gte", label="Since")

    class Meta:
        model = HAAlarm
        fields = ["group", "name", "since"]


class HAAlarmViewSet(ReadOnlyViewSet):
    """SRM alarms (UC_SRM-2-SRMFailover, UC_SRM-2-SRMFailed)."""

    queryset = HAAlarm.objects.select_related("from_node", "to_node").order_by("-raised_at", "-pk")
    serializer_class = HAAlarmSerializer
    filterset_class = HAAlarmFilter
    ordering_fields = ["raised_at"]
    read_permission = "topology.view_redundancygroup"


class HAServerRowSerializer(serializers.Serializer):
    position = serializers.IntegerField()
    node = serializers.IntegerField(allow_null=True)
    name = serializers.CharField(allow_null=True)
    ha_state = serializers.ChoiceField(choices=HAState.choices, allow_null=True)
    state = serializers.CharField(allow_null=True)
    reason = serializers.CharField(allow_null=True)
    agent_reporting = serializers.BooleanField()
    actions = serializers.ListField(
        child=serializers.ChoiceField(choices=ServerActionName.choices),
        help_text="The Server Action buttons offered now.",
    )
    unavailable = serializers.ListField(
        child=serializers.CharField(), help_text="Why an offered Server Action cannot be carried out now."
    )
    start_services_first = serializers.BooleanField(
        help_text="Fallback comes once the failed node's critical services run again."
    )


class GroupHASerializer(serializers.Serializer):
    group = serializers.IntegerField()
    ha_enabled = serializers.BooleanField()
    servers = HAServerRowSerializer(many=True)
    pending = ServerActionSerializer(allow_null=True)
    last_action = ServerActionSerializer(allow_null=True)
    timeline = HATransitionSerializer(many=True)
    in_transition = serializers.BooleanField(help_text="Poll again soon: a request or a transition is under way.")


def group_ha(request, group: RedundancyGroup) -> Response:
    """The HA part of the group's page: both nodes, the buttons offered, the timeline."""
    context = group_ha_context(group, request.user)
    rows = []
    for row in context["rows"]:
        node: Node | None = row["node"]
        rows.append(
            {
                "position": row["position"],
                "node": node.pk if node else None,
                "name": node.name if node else None,
                "ha_state": node.ha_state if node else None,
                "state": node.state_display if node else None,
                "reason": node.reason_display if node else None,
                "agent_reporting": bool(node and node.agent_reporting),
                "actions": [str(a) for a in row["actions"]],
                "unavailable": list(row["unavailable"]),
                "start_services_first": bool(row["start_services_first"]),
            }
        )
    serializer_context = {"request": request}
    return Response(
        {
            "group": context["group"].pk,
            "ha_enabled": context["group"].ha_enabled,
            "servers": rows,
            "pending": ServerActionSerializer(context["pending"], context=serializer_context).data
            if context["pending"]
            else None,
            "last_action": ServerActionSerializer(context["last_action"], context=serializer_context).data
            if context["last_action"]
            else None,
            "timeline": HATransitionSerializer(context["timeline"], many=True).data,
            "in_transition": context["poll_every"] == "1s",
        }
    )


class GroupHAMixin:
    """The redundancy group's ``/ha/`` and ``/server-actions/``."""

    @extend_schema(responses={200: GroupHASerializer})
    @action(detail=True, methods=["get"], url_path="ha", filterset_class=None)
    def ha(self, request, pk=None):
        """Both nodes' HA state and reason, the Server Action buttons each offers, the HA timeline."""
        return group_ha(request, get_object_or_404(RedundancyGroup, pk=pk))

    @extend_schema(request=ServerActionRequestSerializer, responses={202: ServerActionSerializer})
    @action(detail=True, methods=["post"], url_path="server-actions", filterset_class=None)
    def server_action(self, request, pk=None):
        """Failover, Fallback or Recover a node; 202 with the request, which the SRM carries out."""
        group = get_object_or_404(RedundancyGroup.objects.prefetch_related("members"), pk=pk)
        return request_server_action(request, group)


class AlarmRecipientSerializer(FormSerializer):
    class Meta:
        model = AlarmRecipient
        form_class = AlarmRecipientForm
        fields = ["id", "email", "description", "enabled"]


class AlarmRecipientViewSet(ModelViewSet):
    """System > Alarm Recipients: who receives the SRM alarms by e-mail."""

    queryset = AlarmRecipient.objects.order_by("email")
    serializer_class = AlarmRecipientSerializer
    filterset_class = AlarmRecipientFilter
    ordering_fields = ["email", "enabled"]
