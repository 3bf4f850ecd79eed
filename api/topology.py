"""System > Presence Topology, Clusters, Nodes, Presence Redundancy Groups and Users."""

from __future__ import annotations

from django.db.models import Count, Prefetch
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from api.base import ModelViewSet
from api.errors import Conflict
from api.formserializer import FormSerializer
from api.ha import GroupHAMixin
from topology import filters, forms
from topology.models import Cluster, EndUser, Node, RedundancyGroup
from topology.models.topology import database_assignment_warning
from topology.user_assignment import assign_users

MEMBERS = Prefetch("members", queryset=Node.objects.order_by("group_position"))


class ClusterSerializer(FormSerializer):
    node_count = serializers.IntegerField(read_only=True, help_text="Nodes in the cluster.")
    group_count = serializers.IntegerField(read_only=True, help_text="Presence redundancy groups in the cluster.")

    class Meta:
        model = Cluster
        form_class = forms.ClusterForm
        fields = [
            "id",
            "name",
            "cluster_id",
            "domain",
            "description",
            "user_assignment_mode",
            "node_count",
            "group_count",
        ]


class ClusterViewSet(ModelViewSet):
    """Clusters (System > Cluster Topology)."""

    queryset = Cluster.objects.annotate(
        node_count=Count("nodes", distinct=True), group_count=Count("redundancy_groups", distinct=True)
    ).order_by("name")
    serializer_class = ClusterSerializer
    filterset_class = filters.ClusterFilter
    ordering_fields = ["name", "cluster_id", "domain"]


class NodeSerializer(FormSerializer):
    state = serializers.CharField(
        source="state_display", read_only=True, help_text="HA state as shown: Unknown when the agent is not reporting."
    )
    reason = serializers.CharField(source="reason_display", read_only=True, help_text="Reason for the state, as shown.")
    agent_reporting = serializers.BooleanField(read_only=True, help_text="Whether the node agent sends heartbeats.")
    user_count = serializers.IntegerField(read_only=True, help_text="End users homed on the node.")

    class Meta:
        model = Node
        form_class = forms.NodeForm
        fields = [
            "id",
            "name",
            "ip_address",
            "role",
            "cluster",
            "agent_host",
            "agent_port",
            "redundancy_group",
            "group_position",
            "ha_state",
            "ha_reason",
            "state",
            "reason",
            "ha_state_changed_at",
            "last_heartbeat",
            "agent_reporting",
            "rooms_hosted_by",
            "user_count",
        ]
        read_only_fields = [
            "redundancy_group",
            "group_position",
            "ha_state",
            "ha_reason",
            "ha_state_changed_at",
            "last_heartbeat",
            "rooms_hosted_by",
        ]


class NodeViewSet(ModelViewSet):
    """IM and Presence nodes with their HA state as their Server Recovery Manager reports it."""

    queryset = Node.objects.annotate(user_count=Count("assigned_users")).order_by("cluster__name", "name")
    serializer_class = NodeSerializer
    filterset_class = filters.NodeFilter
    ordering_fields = ["name", "cluster__name", "role", "ha_state"]


class GroupServerSerializer(serializers.ModelSerializer):
    state = serializers.CharField(source="state_display", read_only=True)
    reason = serializers.CharField(source="reason_display", read_only=True)
    agent_reporting = serializers.BooleanField(read_only=True)

    class Meta:
        model = Node
        fields = ["id", "name", "group_position", "ha_state", "ha_reason", "state", "reason", "agent_reporting"]


class RedundancyGroupSerializer(FormSerializer):
    server1 = serializers.PrimaryKeyRelatedField(
        queryset=Node.objects.all(), help_text="Presence Server 1 (a node of the group's cluster)."
    )
    server2 = serializers.PrimaryKeyRelatedField(
        queryset=Node.objects.all(),
        allow_null=True,
        required=False,
        help_text="Presence Server 2; optional, but high availability needs it.",
    )
    servers = GroupServerSerializer(
        source="members", many=True, read_only=True, help_text="Both nodes and their state."
    )
    warnings = serializers.SerializerMethodField(help_text="What the change leaves to do (the page's warning banner).")

    class Meta:
        model = RedundancyGroup
        form_class = forms.RedundancyGroupForm
        fields = ["id", "name", "description", "cluster", "server1", "server2", "ha_enabled", "servers", "warnings"]
        read_only_fields = ["cluster"]

    def get_warnings(self, group) -> list[str]:
        return getattr(group, "api_warnings", [])


class RedundancyGroupViewSet(GroupHAMixin, ModelViewSet):
    """Presence redundancy groups, including Enable High Availability."""

    queryset = (
        RedundancyGroup.objects.select_related("cluster").prefetch_related(MEMBERS).order_by("cluster__name", "name")
    )
    serializer_class = RedundancyGroupSerializer
    filterset_class = filters.RedundancyGroupFilter
    ordering_fields = ["name", "cluster__name", "ha_enabled"]
    action_permissions = {"server_action": "topology.run_server_action"}

    def perform_destroy(self, instance):
        refusal = instance.delete_refusal()
        if refusal:
            raise Conflict(refusal)
        instance.delete()

    def reload(self, serializer) -> None:
        super().reload(serializer)
        warning = database_assignment_warning(serializer.instance)
        serializer.instance.api_warnings = [warning] if warning else []


class EndUserSerializer(FormSerializer):
    class Meta:
        model = EndUser
        form_class = forms.EndUserForm
        fields = ["id", "user_id", "jid", "display_name", "assigned_node", "active_node"]
        read_only_fields = ["active_node"]


class AssignUsersSerializer(serializers.Serializer):
    cluster = serializers.PrimaryKeyRelatedField(
        queryset=Cluster.objects.all(), help_text="The cluster whose users to assign by its User Assignment Mode."
    )


class NodeCountSerializer(serializers.Serializer):
    node = serializers.IntegerField()
    name = serializers.CharField()
    users = serializers.IntegerField()


class AssignmentResultSerializer(serializers.Serializer):
    detail = serializers.CharField()
    mode = serializers.CharField()
    nodes = NodeCountSerializer(many=True)


class EndUserViewSet(ModelViewSet):
    """End users and their home node (System > Users)."""

    queryset = EndUser.objects.order_by("user_id")
    serializer_class = EndUserSerializer
    filterset_class = filters.EndUserFilter
    ordering_fields = ["user_id", "jid", "display_name"]
    action_permissions = {"assign": "topology.change_enduser"}

    @extend_schema(request=AssignUsersSerializer, responses={200: AssignmentResultSerializer})
    @action(detail=False, methods=["post"], filterset_class=None, pagination_class=None)
    def assign(self, request):
        """Assign by User Assignment Mode: apply the cluster's mode (Balanced, Active-Standby, None)."""
        serializer = AssignUsersSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        cluster = serializer.validated_data["cluster"]
        counts = assign_users(cluster)
        mode = cluster.get_user_assignment_mode_display()
        nodes = sorted(counts.items(), key=lambda item: item[0].name)
        if counts:
            summary = ", ".join(f"{node}: {count}" for node, count in nodes)
            detail = f"Users of {cluster} assigned ({mode}): {summary}."
        else:
            detail = f"No users assigned: the mode of {cluster} is {mode}, or it has no node in a redundancy group."
        return Response(
            {
                "detail": detail,
                "mode": cluster.user_assignment_mode,
                "nodes": [{"node": node.pk, "name": node.name, "users": count} for node, count in nodes],
            },
            status=status.HTTP_200_OK,
        )
