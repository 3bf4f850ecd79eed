import django_filters

from messaging.models import ChatAlias, DatabaseType, ExternalDatabase, GroupChatAdministrator


class ExternalDatabaseFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(method="search", label="Find")
    db_type = django_filters.ChoiceFilter(choices=DatabaseType.choices, label="Database Type")

    class Meta:
        model = ExternalDatabase
        fields = ["q", "db_type"]

    def search(self, queryset, name, value):
        from django.db.models import Q

        return queryset.filter(
            Q(database_name__icontains=value) | Q(hostname__icontains=value) | Q(username__icontains=value)
        )


class ChatAliasFilter(django_filters.FilterSet):
    alias = django_filters.CharFilter(lookup_expr="icontains", label="Group Chat Server Alias")

    class Meta:
        model = ChatAlias
        fields = ["alias", "node"]


class GroupChatAdministratorFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(method="search", label="Find")

    class Meta:
        model = GroupChatAdministrator
        fields = ["q", "cluster"]

    def search(self, queryset, name, value):
        from django.db.models import Q

        return queryset.filter(
            Q(im_address__icontains=value) | Q(nickname__icontains=value) | Q(description__icontains=value)
        )
