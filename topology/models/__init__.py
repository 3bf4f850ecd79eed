from .certificates import CertificateSource, NodeCertificate
from .ha import (
    FINISHED_ACTION_STATUSES,
    AlarmName,
    AlarmRecipient,
    HAAlarm,
    HATransition,
    ServerAction,
    ServerActionName,
    ServerActionStatus,
)
from .parameters import NodeServiceParameters, ServiceParameters
from .services import CONTROL_TIMEOUT, Service, ensure_services
from .topology import (
    MAX_GROUPS_PER_CLUSTER,
    MAX_NODES_PER_CLUSTER,
    Cluster,
    Node,
    RedundancyGroup,
    validate_group_membership,
)
from .users import MIN_SCRAM_ITERATIONS, EndUser, ScramCredential, ScramMechanismName

__all__ = [
    "CONTROL_TIMEOUT",
    "FINISHED_ACTION_STATUSES",
    "MAX_GROUPS_PER_CLUSTER",
    "MAX_NODES_PER_CLUSTER",
    "MIN_SCRAM_ITERATIONS",
    "AlarmName",
    "AlarmRecipient",
    "CertificateSource",
    "Cluster",
    "EndUser",
    "HAAlarm",
    "HATransition",
    "Node",
    "NodeCertificate",
    "NodeServiceParameters",
    "RedundancyGroup",
    "ScramCredential",
    "ScramMechanismName",
    "ServerAction",
    "ServerActionName",
    "ServerActionStatus",
    "Service",
    "ServiceParameters",
    "ensure_services",
    "validate_group_membership",
]
