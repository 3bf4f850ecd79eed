"""Messaging > Persistent Chat Rooms: the room report and a room's page (reference 4.3)."""

from __future__ import annotations

from django.http import Http404
from django.views.generic import TemplateView

from imp_admin.permissions import ConsolePermissionMixin
from messaging.chat import report
from messaging.models import DatabaseType, ExternalDatabase
from messaging.tc.rooms import RoomType

VIEW_PERMISSION = "messaging.view_chatsettings"


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
        return super().get_context_data(title=room["room_jid"], room=room, database=database, **kwargs)
