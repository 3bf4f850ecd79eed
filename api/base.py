"""What every API view shares: permissions per role, filters and ordering, PATCH for changes."""

from __future__ import annotations

from django_filters.rest_framework import DjangoFilterBackend
from rest_framework import filters, mixins, viewsets

from api.permissions import ConsolePermissionsMixin

# Objects are named by their integer id; any other path segment is a 404 before a view runs.
ID = "[0-9]+"


class ReadOnlyViewSet(ConsolePermissionsMixin, viewsets.ReadOnlyModelViewSet):
    """List (paged, filtered with the page's filters, ordered) and retrieve."""

    lookup_value_regex = ID

    filter_backends = [DjangoFilterBackend, filters.OrderingFilter]
    ordering_fields: list[str] = []


class ModelViewSet(
    ConsolePermissionsMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.ReadOnlyModelViewSet,
):
    """Find and List, Add New, Edit (PATCH: the fields sent change) and Delete."""

    lookup_value_regex = ID

    filter_backends = [DjangoFilterBackend, filters.OrderingFilter]
    ordering_fields: list[str] = []
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def perform_create(self, serializer):
        serializer.save()
        self.reload(serializer)

    def perform_update(self, serializer):
        serializer.save()
        self.reload(serializer)

    def reload(self, serializer) -> None:
        """Answer with the object as a GET shows it (with the list's annotations)."""
        serializer.instance = self.get_queryset().get(pk=serializer.instance.pk)
