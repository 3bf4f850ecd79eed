from .databases import DatabaseType, ExternalDatabase, PersistentChatAssignment

__all__ = ["DatabaseType", "ExternalDatabase", "PersistentChatAssignment"]
