from .administrators import GroupChatAdministrator
from .aliases import ChatAlias
from .chat_settings import ChatSettings, ParticipationLevel
from .databases import (
    ACTIVE_CHECK_STATES,
    STATUS_CHECKS,
    CheckRunState,
    DatabaseType,
    ExternalDatabase,
    ExternalDatabaseCheck,
    PersistentChatAssignment,
    StatusCheckName,
)

__all__ = [
    "ACTIVE_CHECK_STATES",
    "STATUS_CHECKS",
    "ChatAlias",
    "ChatSettings",
    "CheckRunState",
    "DatabaseType",
    "ExternalDatabase",
    "ExternalDatabaseCheck",
    "GroupChatAdministrator",
    "ParticipationLevel",
    "PersistentChatAssignment",
    "StatusCheckName",
]
