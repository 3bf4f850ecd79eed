import django_tables2 as tables

from imp_admin.tables import CellTemplateColumn, ConsoleTable
from messaging.models import ChatAlias, ExternalDatabase, GroupChatAdministrator

TABLE_ATTRS = {"class": "table table-sm table-striped table-hover align-middle"}


class ExternalDatabaseTable(ConsoleTable):
    database_name = tables.Column(linkify=True)
    status = CellTemplateColumn(
        template_name="messaging/_database_status_cell.html", orderable=False, verbose_name="Status"
    )
    assigned_to = CellTemplateColumn(
        template_name="messaging/_database_assigned_cell.html", orderable=False, verbose_name="Assigned to"
    )

    class Meta:
        model = ExternalDatabase
        fields = ("database_name", "db_type", "hostname", "port", "username", "status", "assigned_to")
        attrs = TABLE_ATTRS


class ChatAliasTable(ConsoleTable):
    # Delete Selected; left out for users who may not delete (see ChatAliasListView).
    pk = tables.CheckBoxColumn(
        accessor="pk", attrs={"input": {"form": "delete-selected"}, "th__input": {"hidden": True}}
    )
    alias = tables.Column(linkify=True)
    node = tables.Column(linkify=True, verbose_name="Server Name")
    cluster = tables.Column(accessor="node__cluster", verbose_name="Cluster", orderable=False)
    is_primary = tables.BooleanColumn(verbose_name="Primary")

    class Meta:
        model = ChatAlias
        fields = ("pk", "alias", "node", "cluster", "is_primary")
        attrs = TABLE_ATTRS


class GroupChatAdministratorTable(ConsoleTable):
    im_address = tables.Column(linkify=True)
    cluster = tables.Column(linkify=True)

    class Meta:
        model = GroupChatAdministrator
        fields = ("im_address", "nickname", "description", "cluster")
        attrs = TABLE_ATTRS
