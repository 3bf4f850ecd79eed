"""Register the topology models with the audit trail (django-auditlog).

Observed state (heartbeats, HA state written by the agents) is left out: the audit trail
records what people change, and the HA timeline records what the SRM does.
"""

from auditlog.registry import auditlog

from topology.models import Cluster, EndUser, Node, RedundancyGroup

auditlog.register(Cluster)
auditlog.register(
    Node,
    exclude_fields=["ha_state", "ha_reason", "ha_state_changed_at", "last_heartbeat", "agent_started_at"],
)
auditlog.register(RedundancyGroup)
auditlog.register(EndUser, exclude_fields=["active_node"])
