"""Register the messaging configuration with the audit trail (django-auditlog).

Check results and check state are written by the worker and left out; the password is
recorded only as "changed" (its ciphertext never enters the trail).
"""

from auditlog.registry import auditlog

from messaging.models import ChatAlias, ChatSettings, ExternalDatabase, GroupChatAdministrator, PersistentChatAssignment

auditlog.register(ChatSettings, exclude_fields=["updated_at"])
auditlog.register(
    ExternalDatabase,
    exclude_fields=["check_state", "check_requested_at", "last_checked_at"],
    mask_fields=["password_encrypted"],
)
auditlog.register(PersistentChatAssignment)
auditlog.register(ChatAlias)
auditlog.register(GroupChatAdministrator)
