from .administrators import (
    GroupChatAdministratorDeleteView,
    GroupChatAdministratorEditView,
    GroupChatAdministratorEnableView,
    GroupChatAdministratorListView,
)
from .aliases import ChatAliasBulkDeleteView, ChatAliasDeleteView, ChatAliasEditView, ChatAliasListView
from .chat_settings import ChatSettingsView
from .databases import (
    ExternalDatabaseCheckView,
    ExternalDatabaseDeleteView,
    ExternalDatabaseDetailView,
    ExternalDatabaseEditView,
    ExternalDatabaseInstallView,
    ExternalDatabaseListView,
    ExternalDatabaseStatusView,
)
from .verify import VerifyHAResultsView, VerifyHAView
from .webchat import WebChatView

__all__ = [
    "ChatAliasBulkDeleteView",
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
    "VerifyHAResultsView",
    "VerifyHAView",
    "WebChatView",
]
