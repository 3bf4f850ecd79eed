import django_filters
from django.db.models import Q

from topology.choices import HAState, NodeRole
from topology.models import Cluster, EndUser, Node, RedundancyGroup


class SearchFilterSet(django_filters.FilterSet):
    q = django_filters.CharFilter(method="search", label="Find")
    search_fields: tuple[str, ...] = ()

    def search(self, queryset, name, value):
        query = Q()
        for field in self.search_fields:
            query |= Q(**{f"{field}__icontains": value})
        return queryset.filter(query)


class ClusterFilter(SearchFilterSet):
    search_fields = ("name", "cluster_id", "domain")

    class Meta:
        model = Cluster
        fields = ["q"]


class NodeFilter(SearchFilterSet):
    search_fields = ("name", "ip_address")
    role = django_filters.ChoiceFilter(choices=NodeRole.choices)
    ha_state = django_filters.ChoiceFilter(choices=HAState.choices, label="HA state")

    class Meta:
        model = Node
        fields = ["q", "cluster", "role", "redundancy_group", "ha_state"]


class RedundancyGroupFilter(SearchFilterSet):
    search_fields = ("name", "description")

    class Meta:
        model = RedundancyGroup
        fields = ["q", "cluster", "ha_enabled"]


class EndUserFilter(SearchFilterSet):
    search_fields = ("user_id", "jid", "display_name")
    assignment = django_filters.ChoiceFilter(
        label="Assignment",
        choices=[("unassigned", "Unassigned only"), ("assigned", "Assigned only")],
        empty_label="Any",
        method="filter_assignment",
    )

    class Meta:
        model = EndUser
        fields = ["q", "assigned_node", "assignment"]

    def filter_assignment(self, queryset, name, value):
        return queryset.filter(assigned_node__isnull=value == "unassigned")
