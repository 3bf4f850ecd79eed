"""Register the topology models with the audit trail (django-auditlog).

Observed state (heartbeats, HA state, service status written by the agents) is left out:
the audit trail records what people change, and the HA timeline records what the SRM does.
Control Center actions and Server Actions are rows of desired state, so the trail shows who
asked for what.
"""

from auditlog.registry import auditlog

from topology.models import (
    AlarmRecipient,
    Cluster,
    EndUser,
    Node,
    NodeCertificate,
    NodeServiceParameters,
    RedundancyGroup,
    ServerAction,
    Service,
    ServiceParameters,
)

auditlog.register(Cluster)
auditlog.register(
    Node,
    exclude_fields=[
        "ha_state",
        "ha_reason",
        "ha_state_changed_at",
        "last_heartbeat",
        "agent_started_at",
        "heartbeat_expires_at",
        "rooms_hosted_by",
        "rooms_moving",
    ],
)
auditlog.register(RedundancyGroup)
# The key is left out: its ciphertext changes with every upload and says nothing to a reader.
auditlog.register(NodeCertificate, exclude_fields=["key_encrypted", "updated_at"])
# The password appears only as the time it was set (``password_set_at``); its SCRAM keys
# (ScramCredential) are not registered, and sign-in outcomes are written by the node agents.
auditlog.register(
    EndUser,
    exclude_fields=[
        "active_node",
        "failed_sign_ins",
        "last_failed_sign_in_at",
        "last_failed_sign_in_source",
        "last_sign_in_at",
    ],
)
auditlog.register(Service, include_fields=["activated", "desired_state", "request_number", "request_action"])
auditlog.register(ServerAction, include_fields=["group", "node", "action"])
auditlog.register(ServiceParameters)
auditlog.register(NodeServiceParameters)
auditlog.register(AlarmRecipient)
