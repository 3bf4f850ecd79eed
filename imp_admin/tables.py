"""The console's tables: django-tables2, without its per-cell costs.

A list page renders 50 rows of 5–8 columns, and django-tables2 spends far more on each cell
than the cell is worth: it inspects the signature of the render function of every cell
(``inspect.signature``), recomputes every column's ``th``/``td``/``tf`` attributes for every
cell in its template, compiles a template for every date (``DateTimeColumn``) and renders a
``TemplateColumn``'s template with the whole page context and every context processor again
for every row. On the Audit Trail that was most of the page's CPU time. ``ConsoleTable`` keeps
django-tables2's columns, ordering, pagination and markup, and takes those costs away:

- cells call their render function with the arguments it takes, worked out once per function;
- ``templates/tables/console.html`` (``DJANGO_TABLES2_TEMPLATE``) renders the rows with
  ``{% console_table_rows %}``, which writes the markup django-tables2's Bootstrap 5 template
  writes, with each column's cell attributes computed once per column (per cell only when
  they depend on the record);
- ``TimestampColumn`` formats a date as the ``date`` filter does, without a template;
- ``CellTemplateColumn`` renders its template with the cell's own context only.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import django_tables2 as tables
from django.template import Context
from django.template.loader import get_template
from django.utils import formats
from django.utils.functional import cached_property
from django.utils.timezone import template_localtime
from django_tables2.rows import BoundRow, BoundRows
from django_tables2.utils import signature


@functools.cache
def _method_arguments(function: Callable) -> tuple[tuple[str, ...], str | None]:
    """The arguments of a method's function, without ``self``, and its ``**`` name."""
    arguments, catch_all = signature(function)
    return arguments[1:], catch_all


def call_with_arguments(render: Callable, available: dict):
    """``django_tables2.utils.call_with_appropriate``, knowing each method's signature."""
    function = getattr(render, "__func__", None)
    arguments, catch_all = _method_arguments(function) if function is not None else signature(render)
    if catch_all:
        return render(**available)
    if any(name not in available for name in arguments):
        return None
    return render(**{name: available[name] for name in arguments})


class ConsoleRow(BoundRow):
    def _call_render(self, bound_column, value=None):
        available = self._optional_cell_arguments(bound_column, value)
        content = call_with_arguments(bound_column.render, available)
        return bound_column.link(content, **available) if bound_column.link else content

    def items(self):
        """``BoundRow.items``, with the visible columns listed once for the table, not looked up
        by name for every cell."""
        for column in self.table.visible_columns:
            column.current_value = self._get_and_render_with(
                column, render_func=self._call_render, default=column.default
            )
            column.current_record = self.record
            yield column, column.current_value


class ConsoleRows(BoundRows):
    def __iter__(self):
        for record in self.data:
            yield ConsoleRow(record, table=self.table)

    def __getitem__(self, key):
        if isinstance(key, slice):
            return ConsoleRows(data=self.data[key], table=self.table)
        return ConsoleRow(record=self.data[key], table=self.table)


class ConsoleTable(tables.Table):
    """A django-tables2 table rendered at a fraction of the cost (see the module's docstring)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.rows = ConsoleRows(data=self.data, table=self)

    @cached_property
    def visible_columns(self) -> list:
        """The columns shown, in order (read when the rows are rendered, after any hide())."""
        return list(self.columns)


class TimestampColumn(tables.Column):
    """A date and time in the current time zone, formatted as ``{{ value|date:format }}``."""

    def __init__(self, format: str = "Y-m-d H:i:s", **kwargs):
        super().__init__(**kwargs)
        self.format = format

    def render(self, value):
        return formats.date_format(template_localtime(value), self.format)


class CellTemplateColumn(tables.Column):
    """A cell rendered by a template that sees the row as ``record`` and the cell as ``value``.

    Unlike django-tables2's ``TemplateColumn``, the template does not see the page's context:
    it is rendered once a row, and the page's context processors would run again each time.
    """

    empty_values = ()  # the template decides what an empty cell shows

    def __init__(self, template_name: str, **kwargs):
        super().__init__(**kwargs)
        self.template_name = template_name

    def render(self, record, value):
        template = get_template(self.template_name).template
        return template.render(Context({"record": record, "value": value}))
