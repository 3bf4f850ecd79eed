from .administrators import (
    GroupChatAdministratorDeleteView,
    GroupChatAdministratorEditView,
    GroupChatAdministratorEnableView,
    GroupChatAdministratorListView,
)
from .chat import ChatAliasDeleteView, ChatAliasEditView, ChatAliasListView, ChatSettingsView
from .databases import (
    ExternalDatabaseCheckView,
    ExternalDatabaseDeleteView,
    ExternalDatabaseDetailView,
    ExternalDatabaseEditView,
    ExternalDatabaseInstallView,
    ExternalDatabaseListView,
    ExternalDatabaseStatusView,
)
from .verify import VerifyHAView

__all__ = [
    "ChatAliasDeleteView",
    "ChatAliasEditView",
    "ChatAliasListView",
    "ChatSettingsView",
    "ExternalDatabaseCheckView",
    "ExternalDatabaseDeleteView",
    "ExternalDatabaseDetailView",
    "ExternalDatabaseEditView",
    "ExternalDatabaseInstallView",
    "ExternalDatabaseListView",
    "ExternalDatabaseStatusView",
    "GroupChatAdministratorDeleteView",
    "GroupChatAdministratorEditView",
    "GroupChatAdministratorEnableView",
    "GroupChatAdministratorListView",
    "VerifyHAView",
]
