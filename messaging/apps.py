from django.apps import AppConfig


class MessagingConfig(AppConfig):
    name = "messaging"
    verbose_name = "Messaging"

    def ready(self) -> None:
        from topology.agent.registry import register
        from topology.catalog import ServiceName

        from . import audit  # noqa: F401  (registers the models with the audit trail)

        # The chat services the node agents run (topology.agent.registry).
        register(ServiceName.XCP_ROUTER, "messaging.router.core.XcpRouter", lambda cls, agent: cls(agent.node))
        register(
            ServiceName.TEXT_CONFERENCE_MANAGER,
            "messaging.tc.service.TextConferenceManager",
            lambda cls, agent: cls(agent.node, agent.instances.get(ServiceName.XCP_ROUTER), agent.lease),
            follows_room_hosting=True,
        )
