from django.apps import AppConfig


class TopologyConfig(AppConfig):
    name = "topology"
    verbose_name = "Presence topology"

    def ready(self) -> None:
        from . import audit  # noqa: F401  (registers the models with the audit trail)
        from .agent.registry import register
        from .catalog import ServiceName

        # The node agents' own service (the chat services are messaging's).
        register(
            ServiceName.SERVER_RECOVERY_MANAGER,
            "topology.ha.service.ServerRecoveryManager",
            lambda cls, agent: cls(agent.node, agent),
        )
