from .administrators import GroupChatAdministrator
from .aliases import ChatAlias
from .bookmarks import Bookmark, PrivateXml
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
from .invitations import InvitationKind, KeptInvitation

__all__ = [
    "ACTIVE_CHECK_STATES",
    "STATUS_CHECKS",
    "Bookmark",
    "ChatAlias",
    "ChatSettings",
    "CheckRunState",
    "DatabaseType",
    "ExternalDatabase",
    "ExternalDatabaseCheck",
    "GroupChatAdministrator",
    "InvitationKind",
    "KeptInvitation",
    "ParticipationLevel",
    "PersistentChatAssignment",
    "PrivateXml",
    "StatusCheckName",
]
