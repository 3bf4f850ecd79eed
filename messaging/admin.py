"""Django admin for bulk edits; every change goes through the console's own validation."""

from __future__ import annotations

from django import forms
from django.contrib import admin

from messaging.forms import ChatAliasForm, ExternalDatabaseForm, GroupChatAdministratorForm
from messaging.models import (
    ChatAlias,
    ChatSettings,
    ExternalDatabase,
    ExternalDatabaseCheck,
    GroupChatAdministrator,
    PersistentChatAssignment,
)
from messaging.models.databases import validate_assignments


@admin.register(ChatSettings)
class ChatSettingsAdmin(admin.ModelAdmin):
    list_display = ("cluster", "enable_persistent_chat", "auto_manage_aliases", "max_rooms", "history_default")
    list_select_related = ("cluster",)


@admin.register(ExternalDatabase)
class ExternalDatabaseAdmin(admin.ModelAdmin):
    form = ExternalDatabaseForm
    list_display = ("database_name", "db_type", "hostname", "port", "username", "check_state", "last_checked_at")
    list_filter = ("db_type",)
    search_fields = ("database_name", "hostname", "username")
    readonly_fields = ("check_state", "check_requested_at", "check_started_at", "last_checked_at", "status_note")

    def save_model(self, request, obj, form, change):
        from messaging.status import save_database

        save_database(obj)


@admin.register(ExternalDatabaseCheck)
class ExternalDatabaseCheckAdmin(admin.ModelAdmin):
    list_display = ("database", "name", "passed", "message", "checked_at", "duration")
    list_filter = ("name", "passed")
    list_select_related = ("database",)
    readonly_fields = ("database", "name", "passed", "message", "checked_at", "duration")

    def has_add_permission(self, request):
        return False


class AssignmentFormSet(forms.BaseModelFormSet):
    """Bulk edits of the changelist validate the assignments together, not row by row."""

    def clean(self):
        super().clean()
        proposed = {
            form.instance.node: form.cleaned_data.get("database")
            for form in self.forms
            if form.has_changed() and form.cleaned_data
        }
        if proposed:
            errors = validate_assignments(proposed)
            if errors:
                raise forms.ValidationError([m for messages in errors.values() for m in messages])


@admin.register(PersistentChatAssignment)
class PersistentChatAssignmentAdmin(admin.ModelAdmin):
    list_display = ("node", "database")
    list_editable = ("database",)
    list_select_related = ("node", "database")

    def get_changelist_formset(self, request, **kwargs):
        kwargs["formset"] = AssignmentFormSet
        return super().get_changelist_formset(request, **kwargs)


@admin.register(ChatAlias)
class ChatAliasAdmin(admin.ModelAdmin):
    form = ChatAliasForm
    list_display = ("alias", "node", "is_primary")
    list_select_related = ("node",)
    search_fields = ("alias",)


@admin.register(GroupChatAdministrator)
class GroupChatAdministratorAdmin(admin.ModelAdmin):
    form = GroupChatAdministratorForm
    list_display = ("im_address", "nickname", "description", "cluster")
    list_filter = ("cluster",)
    list_select_related = ("cluster",)
    search_fields = ("im_address", "nickname", "description")
