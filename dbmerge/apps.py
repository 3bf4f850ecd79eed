from django.apps import AppConfig


class DbmergeConfig(AppConfig):
    name = "dbmerge"
    verbose_name = "External database jobs"

    def ready(self) -> None:
        from . import audit  # noqa: F401  (registers merge jobs with the audit trail)
