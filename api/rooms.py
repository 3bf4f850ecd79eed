"""Messaging > Persistent Chat Rooms: the room report, read from an external database."""

from __future__ import annotations

from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_serializer
from rest_framework import serializers, viewsets
from rest_framework.response import Response

from api.errors import Conflict
from api.permissions import ConsolePermissionsMixin
from messaging.chat import report
from messaging.chat.room_delete import RoomDeleteRefused, delete_room
from messaging.chat.views import DELETE_PERMISSION, VIEW_PERMISSION, _databases
from messaging.tc.rooms import RoomType

ROOM_TYPES = [str(t) for t in RoomType]


class RoomSerializer(serializers.Serializer):
    room_jid = serializers.CharField()
    room_type = serializers.CharField()
    subject = serializers.CharField(allow_blank=True, allow_null=True)
    creator = serializers.CharField(allow_blank=True, allow_null=True)
    hosting_node = serializers.CharField(allow_blank=True, help_text="The node whose TC serves the room now.")
    occupants = serializers.IntegerField(allow_null=True, help_text="Occupants now, as the hosting TC publishes.")
    members = serializers.IntegerField()
    message_count = serializers.IntegerField()
    last_message = serializers.DateTimeField(allow_null=True)


@extend_schema_serializer(many=False)
class RoomPageSerializer(serializers.Serializer):
    database = serializers.IntegerField(allow_null=True, help_text="The external database read.")
    page = serializers.IntegerField()
    next_page = serializers.IntegerField(allow_null=True)
    results = RoomSerializer(many=True)


class RoomMemberSerializer(serializers.Serializer):
    jid = serializers.CharField()
    affiliation = serializers.CharField()
    role = serializers.CharField(allow_blank=True, allow_null=True)


class RoomMessageSerializer(serializers.Serializer):
    msg_id = serializers.IntegerField()
    stamp = serializers.DateTimeField(allow_null=True)
    sender = serializers.CharField(allow_blank=True)
    nick = serializers.CharField(allow_blank=True)
    body = serializers.CharField(allow_blank=True)


class RoomDetailSerializer(serializers.Serializer):
    room_jid = serializers.CharField()
    room_type = serializers.CharField()
    subject = serializers.CharField(allow_blank=True, allow_null=True)
    creator = serializers.CharField(allow_blank=True, allow_null=True)
    message_count = serializers.IntegerField()
    hosting_node = serializers.CharField(allow_blank=True)
    occupants = serializers.IntegerField(allow_null=True)
    members = RoomMemberSerializer(many=True)
    messages = RoomMessageSerializer(many=True)


class RoomQuerySerializer(serializers.Serializer):
    database = serializers.IntegerField(
        required=False, help_text="An assigned PostgreSQL database; the first by default."
    )
    q = serializers.CharField(required=False, allow_blank=True, max_length=200, help_text="Part of the room JID.")
    type = serializers.ChoiceField(choices=ROOM_TYPES, required=False)
    page = serializers.IntegerField(required=False, min_value=1, max_value=1_000_000)


class RoomReportViewSet(ConsolePermissionsMixin, viewsets.ViewSet):
    """The persistent chat room report of the databases assigned to chat nodes (PostgreSQL)."""

    read_permission = VIEW_PERMISSION
    action_permissions = {"destroy": DELETE_PERMISSION}
    lookup_value_regex = "[^/]+"

    @extend_schema(parameters=[RoomQuerySerializer], responses={200: RoomPageSerializer})
    def list(self, request):
        """Rooms of one external database, a page of 50 at a time, ordered by JID."""
        query = RoomQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        wanted = query.validated_data
        databases = list(_databases())
        if "database" in wanted:
            database = next((db for db in databases if db.pk == wanted["database"]), None)
            if database is None:
                raise serializers.ValidationError(
                    {"database": ["Choose an external database assigned to a chat node (PostgreSQL)."]}
                )
        else:
            database = databases[0] if databases else None
        page = wanted.get("page", 1)
        rows, more = [], False
        if database is not None:
            try:
                rows, more = report.room_page(database, wanted.get("q", "").strip(), wanted.get("type", ""), page)
            except report.ReportError as exc:
                raise Conflict(str(exc)) from None
        return Response(
            {
                "database": database.pk if database else None,
                "page": page,
                "next_page": page + 1 if more else None,
                "results": [row.__dict__ for row in rows],
            }
        )

    @extend_schema(
        parameters=[
            OpenApiParameter("database", OpenApiTypes.INT, OpenApiParameter.QUERY, required=True),
            OpenApiParameter("id", OpenApiTypes.STR, OpenApiParameter.PATH, description="The room JID."),
        ],
        responses={200: RoomDetailSerializer},
    )
    def retrieve(self, request, pk=None):
        """One room: its fields, members and most recent messages."""
        database = self._database(request)
        try:
            room = report.room_detail(database, pk)
        except report.ReportError as exc:
            raise Conflict(str(exc)) from None
        if room is None:
            raise Http404("No such room.")
        room["messages"] = [message_dict(message) for message in room["messages"]]
        return Response(room)

    @extend_schema(
        parameters=[
            OpenApiParameter("database", OpenApiTypes.INT, OpenApiParameter.QUERY, required=True),
            OpenApiParameter("id", OpenApiTypes.STR, OpenApiParameter.PATH, description="The room JID."),
        ],
        responses={204: None},
    )
    def destroy(self, request, pk=None):
        """Delete the room, its members and messages (audited); 409 while users are in it or its node
        is failed over."""
        database = self._database(request)
        try:
            delete_room(database, pk, actor=request.user)
        except (RoomDeleteRefused, report.ReportError) as exc:
            raise Conflict(str(exc)) from None
        return Response(status=204)

    def _database(self, request):
        query = RoomQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        if "database" not in query.validated_data:
            raise serializers.ValidationError({"database": ["This field is required."]})
        database = _databases().filter(pk=query.validated_data["database"]).first()
        if database is None:
            raise Http404("No such external database.")
        return database


def message_dict(message) -> dict:
    return {
        "msg_id": message.msg_id,
        "stamp": message.stamp,
        "sender": message.sender,
        "nick": message.nick,
        "body": message.body,
    }
