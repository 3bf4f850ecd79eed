"""The console's tables (imp_admin.tables) write what django-tables2's Bootstrap 5 template
writes, for less CPU; the audit trail's changes cell writes what its template wrote."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import django_tables2 as tables
import pytest
from auditlog.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.template import Context, Template
from django.template.loader import get_template
from django.test import RequestFactory
from django_tables2 import RequestConfig

from imp_admin.tables import ConsoleTable, TimestampColumn, call_with_arguments
from imp_admin.views import LogEntryTable
from topology.models import EndUser, Node
from topology.tables import EndUserTable, NodeTable

pytestmark = pytest.mark.django_db


def _html(table, template_name: str, request) -> str:
    table.context = Context({"request": request})
    html = get_template(template_name).render({"table": table, "request": request}, request)
    return re.sub(r"\s+", " ", re.sub(r">\s+<", "><", html)).strip()


def _both(make_table, path: str = "/list/"):
    """The table rendered by django-tables2's own template and by the console's."""
    request = RequestFactory().get(path)
    rendered = []
    for template_name in ("django_tables2/bootstrap5.html", "tables/console.html"):
        table = make_table()
        RequestConfig(request, paginate={"per_page": 50}).configure(table)
        rendered.append(_html(table, template_name, request))
    return rendered


class Sample(ConsoleTable):
    """Per-row cell attributes, localised and unlocalised numbers, a date, text to escape."""

    name = tables.Column(attrs={"td": {"data-name": lambda record: record["name"], "class": "n"}})
    count = tables.Column(localize=True)
    raw = tables.Column(localize=False, accessor="count")
    when = TimestampColumn(format="Y-m-d H:i")
    link = tables.Column(linkify=lambda record: f"/things/{record['name']}/")

    def render_link(self, value, record):
        return f"<{value}>"


ROWS = [
    {"name": "a<b", "count": 12345, "when": datetime(2026, 1, 2, 3, 4, tzinfo=UTC), "link": "x"},
    {"name": "c", "count": 0, "when": None, "link": "y"},
]


def test_the_rows_are_the_markup_of_django_tables2s_bootstrap5_template(settings):
    settings.USE_THOUSAND_SEPARATOR = True
    ours, theirs = _both(lambda: Sample(ROWS))[::-1]
    assert ours == theirs
    assert 'data-name="a&lt;b"' in ours and "12,345" in ours and ">12345<" in ours
    assert "2026-01-02 03:04" in ours and "&lt;x&gt;" in ours


def test_an_empty_table_shows_its_empty_text_as_django_tables2_does():
    ours, theirs = _both(lambda: Sample([], empty_text="Nothing yet"))[::-1]
    assert ours == theirs and "Nothing yet" in ours


def test_the_console_tables_render_as_before_sorted_and_paginated(demo_topology):
    nodes = Node.objects.select_related("cluster", "redundancy_group")
    users = EndUser.objects.select_related("assigned_node", "active_node")
    entries = LogEntry.objects.select_related("actor", "content_type")
    assert nodes and users and entries
    for make, path in [
        (lambda: NodeTable(nodes), "/nodes/?sort=-name"),
        (lambda: EndUserTable(users), "/users/?sort=assigned_node"),
        (lambda: LogEntryTable(entries), "/audit/?page=1"),
    ]:
        theirs, ours = _both(make, path)
        assert ours == theirs


def test_a_render_function_gets_only_the_arguments_it_names():
    class Column:
        def render(self, value, record):
            return (value, record)

        def everything(self, **kwargs):
            return sorted(kwargs)

    available = {"value": 1, "record": 2, "table": 3}
    assert call_with_arguments(Column().render, available) == (1, 2)
    assert call_with_arguments(Column().everything, available) == ["record", "table", "value"]
    assert call_with_arguments(Column().render, {"value": 1}) is None  # as django-tables2: not called
    assert call_with_arguments(lambda value: value * 2, available) == 2


# The template the audit trail's changes cell had; the cell is now written in Python.
CHANGES_TEMPLATE = (
    '{% with changes=record.changes_dict %}{% if changes %}<ul class="list-unstyled small mb-0">{% for field, '
    'values in changes.items %}<li><code>{{ field }}</code>: {% if values.type == "m2m" %}{% if '
    'values.operation == "add" %}added{% else %}removed{% endif %} {{ values.objects|join:", " }}{% else %}'
    '{{ values.0|default:"—" }} → {{ values.1|default:"—" }}{% endif %}</li>{% endfor %}</ul>{% endif %}{% if '
    'record.additional_data %}<div class="small">{{ record.additional_data }}</div>{% endif %}{% endwith %}'
)


@pytest.mark.parametrize(
    ("changes", "additional_data"),
    [
        ({"name": ["old <i>", "new & improved"], "port": ["None", "5432"]}, None),
        ({"groups": {"type": "m2m", "operation": "add", "objects": ["Operator", "<Read>"]}}, None),
        ({"groups": {"type": "m2m", "operation": "delete", "objects": ["Operator"]}}, None),
        ({"flag": ["", "True"], "short": ["only"]}, {"messages deleted": 3}),
        ({"odd": {"not": "m2m"}}, None),
        (None, {"reason": "<why>"}),
        (None, None),
    ],
)
def test_the_audit_changes_cell_writes_what_its_template_wrote(changes, additional_data, super_admin):
    entry = LogEntry.objects.create(
        content_type=ContentType.objects.get_for_model(Node),
        object_pk="1",
        object_repr="imp-1a",
        action=LogEntry.Action.UPDATE,
        changes=changes,
        additional_data=additional_data,
        actor=super_admin,
    )
    expected = Template(CHANGES_TEMPLATE).render(Context({"record": entry}))
    assert LogEntryTable([entry]).render_changes(record=entry) == expected
