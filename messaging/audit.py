"""Register the messaging configuration with the audit trail (django-auditlog).

Check results and check state are written by the worker and left out; the password is
recorded only as changed: ``mask_secret`` replaces the whole ciphertext, because auditlog's
default mask hides only its first half.
"""

from auditlog.registry import auditlog

from messaging.models import ChatAlias, ChatSettings, ExternalDatabase, GroupChatAdministrator, PersistentChatAssignment

SECRET_MASK = "******"  # noqa: S105 (the mask shown instead of a secret)


def mask_secret(value: str) -> str:
    """What the audit trail stores for a secret: a fixed mask when set, nothing when unset.

    auditlog passes ``str(None)`` for the "before" value of a new row.
    """
    return "" if value in ("", "None") else SECRET_MASK


auditlog.register(ChatSettings, exclude_fields=["updated_at"])
auditlog.register(
    ExternalDatabase,
    exclude_fields=["check_state", "check_requested_at", "check_started_at", "last_checked_at", "status_note"],
    mask_fields=["password_encrypted"],
    mask_callable="messaging.audit.mask_secret",
)
auditlog.register(PersistentChatAssignment)
auditlog.register(ChatAlias)
auditlog.register(GroupChatAdministrator)
