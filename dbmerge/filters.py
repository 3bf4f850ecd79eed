import django_filters
from django.db.models import Q

from dbmerge.choices import JobState, MergeDatabaseType
from dbmerge.models import MergeJob


class MergeJobFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(method="search", label="Find")
    db_type = django_filters.ChoiceFilter(choices=MergeDatabaseType.choices, label="Type")
    state = django_filters.ChoiceFilter(choices=JobState.choices, label="Status")

    class Meta:
        model = MergeJob
        fields = ["q", "db_type", "state"]

    def search(self, queryset, name, value):
        query = Q(source_1__database_name__icontains=value) | Q(source_2__database_name__icontains=value)
        query |= Q(target__database_name__icontains=value) | Q(target__hostname__icontains=value)
        if value.isdigit():
            query |= Q(pk=int(value))
        return queryset.filter(query)
