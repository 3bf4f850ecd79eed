import django_tables2 as tables

from dbmerge.models import MergeJob
from imp_admin.tables import CellTemplateColumn, ConsoleTable, TimestampColumn

TABLE_ATTRS = {"class": "table table-sm table-striped table-hover align-middle"}


class MergeJobTable(ConsoleTable):
    id = tables.Column(linkify=True, verbose_name="ID")
    db_type = tables.Column(verbose_name="Type")
    source_1 = tables.Column(verbose_name="Source database 1")
    source_2 = tables.Column(verbose_name="Source database 2")
    target = tables.Column(verbose_name="Destination database")
    state = CellTemplateColumn(template_name="dbmerge/_state_cell.html", verbose_name="Status")
    created_by = tables.Column(verbose_name="Started by", default="shell")
    created = TimestampColumn(verbose_name="Submitted", format="Y-m-d H:i:s")

    class Meta:
        model = MergeJob
        fields = ("id", "db_type", "source_1", "source_2", "target", "state", "created_by", "created")
        attrs = TABLE_ATTRS
