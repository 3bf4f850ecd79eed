from django.apps import AppConfig


class TopologyConfig(AppConfig):
    name = "topology"
    verbose_name = "Presence topology"

    def ready(self) -> None:
        from . import audit  # noqa: F401  (registers the models with the audit trail)
