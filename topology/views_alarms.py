"""System > Alarm Recipients: who receives the Server Recovery Manager's alarms by e-mail."""

from __future__ import annotations

import django_filters
import django_tables2 as tables
from django import forms

from imp_admin.generic import ObjectDeleteView, ObjectEditView, ObjectListView
from imp_admin.tables import ConsoleTable
from topology.filters import SearchFilterSet
from topology.models import AlarmRecipient
from topology.tables import TABLE_ATTRS


class AlarmRecipientFilter(SearchFilterSet):
    search_fields = ("email", "description")
    enabled = django_filters.BooleanFilter()

    class Meta:
        model = AlarmRecipient
        fields = ["q", "enabled"]


class AlarmRecipientTable(ConsoleTable):
    email = tables.Column(linkify=True)
    enabled = tables.BooleanColumn()

    class Meta:
        model = AlarmRecipient
        fields = ("email", "description", "enabled")
        attrs = TABLE_ATTRS


class AlarmRecipientForm(forms.ModelForm):
    class Meta:
        model = AlarmRecipient
        fields = ["email", "description", "enabled"]


class AlarmRecipientListView(ObjectListView):
    model = AlarmRecipient
    table_class = AlarmRecipientTable
    filterset_class = AlarmRecipientFilter
    add_url_name = "topology:alarmrecipient_add"
    template_name = "topology/alarmrecipient_list.html"


class AlarmRecipientEditView(ObjectEditView):
    model = AlarmRecipient
    form_class = AlarmRecipientForm
    list_url_name = "topology:alarmrecipient_list"
    delete_url_name = "topology:alarmrecipient_delete"


class AlarmRecipientDeleteView(ObjectDeleteView):
    model = AlarmRecipient
    list_url_name = "topology:alarmrecipient_list"
