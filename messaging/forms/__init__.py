from .chat import ChatAliasForm, ChatSettingsForm, DatabaseAssignmentForm, GroupChatAdministratorForm
from .databases import ExternalDatabaseForm

__all__ = [
    "ChatAliasForm",
    "ChatSettingsForm",
    "DatabaseAssignmentForm",
    "ExternalDatabaseForm",
    "GroupChatAdministratorForm",
]
