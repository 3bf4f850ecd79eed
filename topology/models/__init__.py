from .topology import (
    MAX_GROUPS_PER_CLUSTER,
    MAX_NODES_PER_CLUSTER,
    Cluster,
    Node,
    RedundancyGroup,
    validate_group_membership,
)
from .users import EndUser

__all__ = [
    "MAX_GROUPS_PER_CLUSTER",
    "MAX_NODES_PER_CLUSTER",
    "Cluster",
    "EndUser",
    "Node",
    "RedundancyGroup",
    "validate_group_membership",
]
