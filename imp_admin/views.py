"""Console-wide views: the home dashboard, the audit trail, placeholders, health."""

from __future__ import annotations

import html
from pathlib import Path

import django_filters
import django_tables2 as tables
from auditlog.models import LogEntry
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_not_required
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.db.models import Count, Q
from django.http import FileResponse, JsonResponse
from django.shortcuts import redirect
from django.utils.formats import localize
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_safe
from django.views.generic import TemplateView

from imp_admin import lockout
from imp_admin.generic import ObjectListView
from imp_admin.permissions import ConsolePermissionMixin
from imp_admin.tables import ConsoleTable, TimestampColumn
from topology.models import Cluster, EndUser, Node, RedundancyGroup


class HomeView(ConsolePermissionMixin, TemplateView):
    """The dashboard: the size and health of the deployment at a glance."""

    template_name = "home.html"
    permission_required = "topology.view_cluster"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        nodes = list(Node.objects.select_related("cluster", "redundancy_group"))
        groups = RedundancyGroup.objects.aggregate(total=Count("pk"), ha=Count("pk", filter=Q(ha_enabled=True)))
        context.update(
            clusters=Cluster.objects.count(),
            nodes=nodes,
            nodes_reporting=sum(node.agent_reporting for node in nodes),
            groups_total=groups["total"],
            groups_ha=groups["ha"],
            users=EndUser.objects.count(),
            unassigned_users=EndUser.objects.filter(assigned_node__isnull=True).count(),
            recent_changes=LogEntry.objects.select_related("actor", "content_type")[:8],
        )
        return context


class LogEntryFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(method="search", label="Search")
    content_type = django_filters.ModelChoiceFilter(
        label="Object type",
        queryset=ContentType.objects.filter(app_label__in=["topology", "messaging", "dbmerge", "auth", "axes"]),
    )
    action = django_filters.ChoiceFilter(choices=LogEntry.Action.choices)
    since = django_filters.DateTimeFilter(field_name="timestamp", lookup_expr="gte", label="Since")

    class Meta:
        model = LogEntry
        fields = ["q", "content_type", "action", "actor", "since"]

    def search(self, queryset, name, value):
        return queryset.filter(Q(object_repr__icontains=value) | Q(actor__username__icontains=value))


class LogEntryTable(ConsoleTable):
    timestamp = TimestampColumn(format="Y-m-d H:i:s")
    actor = tables.Column(default="system")
    content_type = tables.Column(verbose_name="Object type")
    object_repr = tables.Column(verbose_name="Object")
    action = tables.Column()
    changes = tables.Column(orderable=False, empty_values=())

    class Meta:
        model = LogEntry
        fields = ("timestamp", "actor", "action", "content_type", "object_repr", "changes")
        attrs = {"class": "table table-sm table-striped align-middle"}

    def render_changes(self, record):
        """Each field's value before and after (or the objects a relation gained or lost).

        Written in Python rather than a template, and with ``html.escape`` rather than
        ``format_html`` per value: it is the widest cell of a 50-row page, some 500 values.
        """
        parts, changes = [], record.changes_dict
        if changes:
            items = "".join(f"<li><code>{_text(f)}</code>: {_change(values)}</li>" for f, values in changes.items())
            parts.append(f'<ul class="list-unstyled small mb-0">{items}</ul>')
        if record.additional_data:
            parts.append(f'<div class="small">{_text(record.additional_data)}</div>')
        # Every value above went through _text, which escapes it.
        return mark_safe("".join(parts))  # noqa: S308


def _text(value) -> str:
    """``{{ value }}`` in a template: localised, then escaped."""
    return html.escape(value if isinstance(value, str) else str(localize(value)))


def _change(values) -> str:
    if isinstance(values, dict) and values.get("type") == "m2m":
        verb = "added" if values.get("operation") == "add" else "removed"
        return f"{verb} {', '.join(_text(o) for o in values.get('objects', []))}"
    before, after = [*values, None, None][:2] if isinstance(values, list | tuple) else (None, None)
    return f"{_text(before or '—')} → {_text(after or '—')}"


class AuditTrailView(ObjectListView):
    """Who changed what, when, with the values before and after."""

    model = LogEntry
    template_name = "audit/logentry_list.html"
    table_class = LogEntryTable
    filterset_class = LogEntryFilter
    paginate_by = 50

    def get_queryset(self):
        return LogEntry.objects.select_related("actor", "content_type").order_by("-timestamp")

    def get_context_data(self, **kwargs):
        return {**super().get_context_data(**kwargs), "title": "Audit Trail", "add_url": None}


class LockoutListView(ConsolePermissionMixin, TemplateView):
    """Locked Out: user names and addresses refused sign-in now; a super administrator unlocks."""

    template_name = "lockout_list.html"
    permission_required = "axes.view_accessattempt"
    change_permission = "axes.delete_accessattempt"

    def get_context_data(self, **kwargs):
        return super().get_context_data(
            title="Locked Out",
            lockouts=lockout.current_lockouts(),
            failure_limit=settings.AXES_FAILURE_LIMIT,
            can_unlock=self.request.user.has_perm(self.change_permission),
            **kwargs,
        )

    def post(self, request, *args, **kwargs):
        username = request.POST.get("username", "").strip()
        ip_address = request.POST.get("ip_address", "").strip()
        if username:
            lockout.unlock(actor=request.user, username=username)
            messages.success(request, f"User name {username} can sign in again.")
        elif ip_address:
            lockout.unlock(actor=request.user, ip_address=ip_address)
            messages.success(request, f"Address {ip_address} can sign in again.")
        return redirect("lockout_list")


FAVICON = Path(__file__).resolve().parent / "static" / "console" / "favicon.ico"


@login_not_required
@require_safe
def favicon(request):
    """``/favicon.ico``: the icon browsers ask for on pages that link none of their own (the
    Django admin, the browsable API); the console's base layout links the same static file."""
    response = FileResponse(FAVICON.open("rb"), content_type="image/x-icon")
    response["Cache-Control"] = "public, max-age=86400"
    return response


@login_not_required
def healthz(request):
    """Liveness for load balancers: the config DB answers."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok"})
