from .administrators import GroupChatAdministratorForm
from .aliases import ChatAliasForm
from .chat_settings import ChatSettingsForm, DatabaseAssignmentForm
from .databases import ExternalDatabaseForm

__all__ = [
    "ChatAliasForm",
    "ChatSettingsForm",
    "DatabaseAssignmentForm",
    "ExternalDatabaseForm",
    "GroupChatAdministratorForm",
]
