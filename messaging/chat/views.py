"""Messaging > Persistent Chat Rooms: the room report and a room's page (reference 4.3)."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect
from django.urls import reverse
from django.views.generic import TemplateView, View

from imp_admin.permissions import ConsolePermissionMixin
from messaging.chat import report
from messaging.chat.room_delete import RoomDeleteRefused, delete_room
from messaging.models import DatabaseType, ExternalDatabase
from messaging.tc.rooms import RoomType

VIEW_PERMISSION = "messaging.view_chatsettings"
DELETE_PERMISSION = "messaging.delete_persistent_room"


def _databases():
    """External databases assigned to a chat node (the ones holding rooms), PostgreSQL only."""
    return ExternalDatabase.objects.filter(db_type=DatabaseType.POSTGRES, assignments__isnull=False).distinct()


class RoomReportView(ConsolePermissionMixin, TemplateView):
    """Rooms of one external database, filtered and paged: hosting node, occupants now,
    members, message count and last message date."""

    template_name = "messaging/rooms/room_list.html"
    permission_required = VIEW_PERMISSION

    def get_context_data(self, **kwargs):
        context = super().get_context_data(title="Persistent Chat Rooms", **kwargs)
        databases = list(_databases())
        query = self.request.GET
        selected = next(
            (db for db in databases if str(db.pk) == query.get("database")), databases[0] if databases else None
        )
        search = query.get("q", "").strip()[:200]
        room_type = query.get("type", "")
        try:
            page = max(1, int(query.get("page", "1")))
        except ValueError:
            page = 1
        rows, more, error = [], False, ""
        if selected is not None:
            try:
                rows, more = report.room_page(selected, search, room_type, page)
            except report.ReportError as exc:
                error = str(exc)
        context.update(
            databases=databases,
            selected=selected,
            search=search,
            room_type=room_type,
            room_types=[(str(t), t.name.replace("_", " ").title()) for t in RoomType],
            rows=rows,
            page=page,
            previous_page=page - 1 if page > 1 else None,
            next_page=page + 1 if more else None,
            error=error,
        )
        return context


class RoomDetailView(ConsolePermissionMixin, TemplateView):
    """One room: its fields, members and most recent messages."""

    template_name = "messaging/rooms/room_detail.html"
    permission_required = VIEW_PERMISSION

    def get_context_data(self, **kwargs):
        database = _databases().filter(pk=self.kwargs["database_pk"]).first()
        if database is None:
            raise Http404("No such external database.")
        try:
            room = report.room_detail(database, self.kwargs["room_jid"])
        except report.ReportError as exc:
            return super().get_context_data(title=self.kwargs["room_jid"], error=str(exc), database=database, **kwargs)
        if room is None:
            raise Http404("No such room.")
        return super().get_context_data(
            title=room["room_jid"],
            room=room,
            database=database,
            can_delete=self.request.user.has_perm(DELETE_PERMISSION),
            **kwargs,
        )


class RoomDeleteView(ConsolePermissionMixin, View):
    """Delete (POST, super administrators): the room, its members and messages; audited."""

    permission_required = VIEW_PERMISSION
    change_permission = DELETE_PERMISSION
    http_method_names = ["post"]

    def post(self, request, database_pk: int, room_jid: str):
        database = _databases().filter(pk=database_pk).first()
        if database is None:
            raise Http404("No such external database.")
        try:
            counts = delete_room(database, room_jid, actor=request.user)
        except (RoomDeleteRefused, report.ReportError) as exc:
            messages.error(request, str(exc))
            return redirect("chat:room_detail", database_pk, room_jid)
        messages.success(
            request,
            f"Room {room_jid} deleted from {database}, with its {counts['tc_messages']} message(s) and "
            f"{counts['tc_users']} member(s).",
        )
        return redirect(reverse("chat:room_list") + f"?database={database.pk}")
