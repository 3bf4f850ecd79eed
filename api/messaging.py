"""Messaging > Group Chat and Persistent Chat (settings and the persistent chat database
assignment), Group Chat Server Alias Mapping and Group Chat System Administrators."""

from __future__ import annotations

from django.db import transaction
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from api.base import ID, ModelViewSet
from api.formserializer import FormSerializer
from api.permissions import ConsolePermissionsMixin
from messaging import filters, forms
from messaging.chat_settings import restart_notice, save_settings
from messaging.database_assignment import assign, validate_assignments
from messaging.models import ChatAlias, ChatSettings, ExternalDatabase, GroupChatAdministrator, PersistentChatAssignment
from messaging.models.chat_settings import SETTING_FIELDS
from topology.models import Cluster, Node

CHANGE_CHAT_SETTINGS = "messaging.change_chatsettings"


class ChatSettingsSerializer(FormSerializer):
    cluster = serializers.IntegerField(source="cluster_id", read_only=True)
    enable_system_administrators = serializers.BooleanField(
        required=False,
        help_text="Enable Group Chat System Administrators (Group Chat System Administrators page).",
    )
    warnings = serializers.SerializerMethodField(help_text="Which services to restart for the change to apply.")

    class Meta:
        model = ChatSettings
        form_class = forms.ChatSettingsForm
        fields = ["cluster", *SETTING_FIELDS, "enable_system_administrators", "updated_at", "warnings"]
        read_only_fields = ["updated_at"]

    def get_warnings(self, obj) -> list[str]:
        return getattr(obj, "api_warnings", [])

    def to_internal_value(self, data):
        values = super().to_internal_value(data)
        switch = data.get("enable_system_administrators")
        if switch is not None:
            if not isinstance(switch, bool):
                raise serializers.ValidationError({"enable_system_administrators": ["Must be true or false."]})
            values["enable_system_administrators"] = switch
        return values

    def update(self, instance, validated_data):
        settings = self.form.save(commit=False)
        if "enable_system_administrators" in validated_data:
            settings.enable_system_administrators = validated_data["enable_system_administrators"]
        return save_settings(settings)


class ChatSettingsViewSet(ConsolePermissionsMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Group Chat and Persistent Chat Settings, one set per cluster (by cluster id)."""

    lookup_value_regex = ID
    queryset = Cluster.objects.order_by("name")
    serializer_class = ChatSettingsSerializer
    read_permission = "messaging.view_chatsettings"
    action_permissions = {"partial_update": CHANGE_CHAT_SETTINGS, "set_to_defaults": CHANGE_CHAT_SETTINGS}
    http_method_names = ["get", "post", "patch", "head", "options"]

    def get_object(self):
        return ChatSettings.peek(super().get_object())

    def partial_update(self, request, pk=None):
        serializer = self.get_serializer(self.get_object(), data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        with transaction.atomic():
            settings = serializer.save()
        settings.api_warnings = [restart_notice(settings.cluster)]
        return Response(self.get_serializer(settings).data)

    @extend_schema(request=None, responses={200: ChatSettingsSerializer})
    @action(detail=True, methods=["post"], url_path="set-to-defaults")
    def set_to_defaults(self, request, pk=None):
        """Set to Default: every setting back to its documented default (the administrators switch stays)."""
        settings = ChatSettings.for_cluster(self.get_object().cluster)
        settings.reset_to_defaults()
        save_settings(settings)
        settings.api_warnings = [restart_notice(settings.cluster)]
        return Response(self.get_serializer(settings).data)


class AssignmentSerializer(serializers.ModelSerializer):
    node_name = serializers.CharField(source="node.name", read_only=True)
    redundancy_group = serializers.IntegerField(source="node.redundancy_group_id", read_only=True, allow_null=True)

    class Meta:
        model = PersistentChatAssignment
        fields = ["node", "node_name", "redundancy_group", "database"]


class AssignmentEntrySerializer(serializers.Serializer):
    node = serializers.PrimaryKeyRelatedField(queryset=Node.objects.all())
    database = serializers.PrimaryKeyRelatedField(
        queryset=ExternalDatabase.objects.all(), allow_null=True, help_text="Empty for unassigned."
    )


class AssignmentRequestSerializer(serializers.Serializer):
    assignments = AssignmentEntrySerializer(many=True, allow_empty=False)

    def validate_assignments(self, entries):
        nodes = [entry["node"].pk for entry in entries]
        if len(set(nodes)) != len(nodes):
            raise serializers.ValidationError("Name each node once.")
        return entries


class ChatDatabaseAssignmentViewSet(ConsolePermissionsMixin, viewsets.GenericViewSet):
    """Persistent Chat Database Assignment: the external database of each chat node."""

    queryset = PersistentChatAssignment.objects.select_related("node").order_by("node__name")
    serializer_class = AssignmentSerializer
    read_permission = "messaging.view_persistentchatassignment"
    action_permissions = {"create": CHANGE_CHAT_SETTINGS}
    pagination_class = None

    def list(self, request):
        """Every chat node's assignment (a node absent is unassigned)."""
        return Response(self.get_serializer(self.get_queryset(), many=True).data)

    @extend_schema(request=AssignmentRequestSerializer, responses={200: AssignmentSerializer(many=True)})
    def create(self, request):
        """Assign databases to nodes, all at once: with high availability both nodes of a group use one
        database and no other group uses it; without, each node has its own. Nothing is saved on any error."""
        body = AssignmentRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        entries = body.validated_data["assignments"]
        proposed = {entry["node"]: entry["database"] for entry in entries}
        errors = validate_assignments(proposed)
        if errors:
            index = {entry["node"].pk: position for position, entry in enumerate(entries)}
            raise serializers.ValidationError(
                {f"assignments.{index[node.pk]}.database": messages for node, messages in errors.items()}
            )
        assign(proposed)
        saved = self.get_queryset().filter(node__in=proposed)
        return Response(self.get_serializer(saved, many=True).data)


class ChatAliasSerializer(FormSerializer):
    class Meta:
        model = ChatAlias
        form_class = forms.ChatAliasForm
        fields = ["id", "alias", "node", "is_primary"]


class ChatAliasViewSet(ModelViewSet):
    """Group Chat Server Alias Mapping."""

    queryset = ChatAlias.objects.order_by("node__name", "-is_primary", "alias")
    serializer_class = ChatAliasSerializer
    filterset_class = filters.ChatAliasFilter
    ordering_fields = ["alias", "node__name"]


class GroupChatAdministratorSerializer(FormSerializer):
    class Meta:
        model = GroupChatAdministrator
        form_class = forms.GroupChatAdministratorForm
        fields = ["id", "cluster", "im_address", "nickname", "description"]


class GroupChatAdministratorViewSet(ModelViewSet):
    """Group Chat System Administrators of each cluster."""

    queryset = GroupChatAdministrator.objects.order_by("cluster__name", "im_address")
    serializer_class = GroupChatAdministratorSerializer
    filterset_class = filters.GroupChatAdministratorFilter
    ordering_fields = ["im_address", "nickname", "cluster__name"]
