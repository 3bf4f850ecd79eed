from .chat import ChatAliasForm, ChatSettingsForm, DatabaseAssignmentForm
from .databases import ExternalDatabaseForm

__all__ = ["ChatAliasForm", "ChatSettingsForm", "DatabaseAssignmentForm", "ExternalDatabaseForm"]
