from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _sync_roles(sender, **kwargs) -> None:
    from .roles import sync_role_permissions

    sync_role_permissions()


class ImpAdminConfig(AppConfig):
    name = "imp_admin"
    verbose_name = "imp-admin console"

    def ready(self) -> None:
        from . import (
            audit,  # noqa: F401  (registers console users with the audit trail)
            sessions,  # noqa: F401  (starts a new session's idle clock at sign-in)
        )

        post_migrate.connect(_sync_roles, dispatch_uid="imp_admin.sync_roles")
