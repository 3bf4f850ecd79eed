"""Group Chat and Persistent Chat settings and the Persistent Chat Database Assignment of each chat node."""

from __future__ import annotations

from crispy_forms.helper import FormHelper
from crispy_forms.layout import Fieldset, Layout
from django import forms

from messaging.models import ChatSettings, ExternalDatabase
from messaging.models.chat_settings import SETTING_FIELDS, SETTING_GROUPS
from messaging.models.databases import validate_assignments
from topology.models import Node


class ChatSettingsForm(forms.ModelForm):
    """Every field of reference 4.1 and 4.2, grouped as the product groups them."""

    class Meta:
        model = ChatSettings
        fields = SETTING_FIELDS

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.helper = FormHelper()
        self.helper.form_tag = False
        self.helper.disable_csrf = True
        self.helper.layout = Layout(*(Fieldset(title, *names) for title, names in SETTING_GROUPS))


UNASSIGNED = "unassigned"


class DatabaseAssignmentForm(forms.Form):
    """Persistent Chat Database Assignment: an external database per chat node of a cluster."""

    def __init__(self, *args, nodes: list[Node], current: dict[int, ExternalDatabase | None], **kwargs):
        super().__init__(*args, **kwargs)
        self.nodes = nodes
        databases = ExternalDatabase.objects.all()
        # One query for every node's drop-down (a ModelChoiceField reads its queryset for each).
        choices = [("", UNASSIGNED), *((database.pk, str(database)) for database in databases)]
        for node in nodes:
            group = node.redundancy_group
            field = self.fields[f"node_{node.pk}"] = forms.ModelChoiceField(
                queryset=databases,
                required=False,
                empty_label=UNASSIGNED,
                label=f"{node}",
                help_text=(
                    f"{group} ({'high availability on' if group.ha_enabled else 'no high availability'})"
                    if group
                    else "Not in a redundancy group"
                ),
                initial=current.get(node.pk),
            )
            field.choices = choices

    def rendering_key(self) -> str:
        """Everything the unbound form shows (a cache key for its rendered fields)."""
        fields = [(name, f.label, f.help_text, getattr(f.initial, "pk", f.initial)) for name, f in self.fields.items()]
        return repr([fields, next(iter(self.fields.values())).choices if self.fields else []])

    def changed_nodes(self) -> list[Node]:
        """The nodes whose database the submitted form changes."""
        return [node for node in self.nodes if f"node_{node.pk}" in self.changed_data]

    def proposed(self) -> dict[Node, ExternalDatabase | None]:
        return {node: self.cleaned_data.get(f"node_{node.pk}") for node in self.nodes}

    def clean(self):
        cleaned = super().clean()
        if not self.errors:
            for node, messages in validate_assignments(self.proposed()).items():
                for message in messages:
                    self.add_error(f"node_{node.pk}", message)
        return cleaned
