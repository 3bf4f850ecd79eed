"""``{% console_table_rows table %}``: the rows of a django-tables2 table (see imp_admin.tables)."""

from __future__ import annotations

from django import template
from django.template.base import render_value_in_context
from django.templatetags.l10n import localize, unlocalize
from django.utils.html import conditional_escape, format_html
from django.utils.safestring import SafeString, mark_safe

register = template.Library()


def _static(attrs: dict) -> bool:
    """Whether HTML attributes hold no callable, so they are the same for every row."""
    return not any(callable(value) or (isinstance(value, dict) and not _static(value)) for value in attrs.values())


def _cell_attributes_are_static(table, bound_column) -> bool:
    attrs = {**table.attrs, **bound_column.column.attrs}
    return _static(attrs.get("td", attrs.get("cell", {})))


@register.simple_tag(takes_context=True)
def console_table_rows(context, table) -> SafeString:
    """What the ``tbody`` block of ``django_tables2/bootstrap5.html`` writes, for a fraction of the CPU.

    A column's ``td`` attributes are computed once, unless they depend on the row (a callable);
    each cell is rendered as ``{{ cell }}`` (or ``|localize`` / ``|unlocalize``) would render it.
    """
    columns = list(table.columns)
    static_td = {
        column.name: column.attrs["td"].as_html() for column in columns if _cell_attributes_are_static(table, column)
    }
    parts = []
    for row in table.paginated_rows:
        # Without row_attrs a row's attributes are its even/odd class alone.
        attrs = f'class="{row.get_even_odd_css_class()}"' if not table.row_attrs else row.attrs.as_html()
        parts.append(f"<tr {attrs}>")
        for column, cell in row.items():
            td = static_td.get(column.name)
            if td is None:
                td = column.attrs["td"].as_html()
            if column.localize is not None:
                cell = localize(cell) if column.localize else unlocalize(cell)
            # {{ cell }} of a string is the string escaped (unless safe); anything else goes the
            # template's way (local time, localisation).
            text = conditional_escape(cell) if isinstance(cell, str) and context.autoescape else None
            parts.append(f"<td {td}>{text if text is not None else render_value_in_context(cell, context)}</td>")
        parts.append("</tr>")
    if not parts and table.empty_text:
        parts.append(format_html('<tr><td colspan="{}">{}</td></tr>', len(columns), table.empty_text))
    # Every part is escaped: format_html, as_html and render_value_in_context escape what they add.
    return mark_safe("\n".join(parts))  # noqa: S308
