"""Console users in the audit trail (django-auditlog): who changed whose account, what, when.

Recorded: a console user's name, e-mail, active, staff and superuser flags, password (only as
changed, ``******``), role (group membership) and own permissions; a role's permissions.
``last_login`` is left out: signing in is not a change of the account.
"""

from auditlog.registry import auditlog
from django.contrib.auth.models import Group, User

auditlog.register(
    User,
    include_fields=[
        "username",
        "first_name",
        "last_name",
        "email",
        "is_active",
        "is_staff",
        "is_superuser",
        "password",
    ],
    mask_fields=["password"],
    mask_callable="messaging.audit.mask_secret",
    m2m_fields={"groups", "user_permissions"},
)
auditlog.register(Group, include_fields=["name"], m2m_fields={"permissions"})
