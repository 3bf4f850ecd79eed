import django_tables2 as tables

from imp_admin.tables import CellTemplateColumn, ConsoleTable
from topology.models import Cluster, EndUser, Node, RedundancyGroup

TABLE_ATTRS = {"class": "table table-sm table-striped table-hover align-middle"}


class ClusterTable(ConsoleTable):
    name = tables.Column(linkify=True)
    node_count = tables.Column(verbose_name="Nodes", orderable=False)
    group_count = tables.Column(verbose_name="Redundancy groups", orderable=False)

    class Meta:
        model = Cluster
        fields = ("name", "cluster_id", "domain", "user_assignment_mode", "node_count", "group_count")
        attrs = TABLE_ATTRS


class NodeTable(ConsoleTable):
    name = tables.Column(linkify=True)
    cluster = tables.Column(linkify=True)
    redundancy_group = tables.Column(linkify=True, verbose_name="Redundancy group")
    state = CellTemplateColumn(
        template_name="topology/_node_state_cell.html", orderable=False, verbose_name="HA state / reason"
    )
    user_count = tables.Column(verbose_name="Users", orderable=False)

    class Meta:
        model = Node
        fields = ("name", "ip_address", "role", "cluster", "redundancy_group", "state", "user_count")
        attrs = TABLE_ATTRS


class RedundancyGroupTable(ConsoleTable):
    name = tables.Column(linkify=True)
    cluster = tables.Column(linkify=True)
    servers = CellTemplateColumn(
        template_name="topology/_group_servers_cell.html", orderable=False, verbose_name="Presence servers"
    )
    ha_enabled = tables.BooleanColumn(verbose_name="High Availability")

    class Meta:
        model = RedundancyGroup
        fields = ("name", "description", "cluster", "servers", "ha_enabled")
        attrs = TABLE_ATTRS


class EndUserTable(ConsoleTable):
    user_id = tables.Column(linkify=True)
    assigned_node = tables.Column(linkify=True, verbose_name="Home node")
    active_node = tables.Column(linkify=True, verbose_name="Served by backup", default="—")

    class Meta:
        model = EndUser
        fields = ("user_id", "jid", "display_name", "assigned_node", "active_node")
        attrs = TABLE_ATTRS
