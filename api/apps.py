from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "api"
    verbose_name = "REST API"

    def ready(self) -> None:
        from auditlog.registry import auditlog

        from . import schema  # noqa: F401  (registers the authentication schemes with the schema)
        from .models import ApiToken

        auditlog.register(ApiToken, include_fields=["user", "name", "key_prefix", "expires_at"])
