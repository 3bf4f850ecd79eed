"""Group Chat Server Alias Mapping (reference 4.4): Add New / Edit."""

from __future__ import annotations

from django import forms

from messaging.models import ChatAlias
from topology.models import Node


class ChatAliasForm(forms.ModelForm):
    """Group Chat Server Alias Mapping: Add New / Edit."""

    class Meta:
        model = ChatAlias
        fields = ["alias", "node", "is_primary"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["node"].queryset = Node.objects.select_related("cluster")
