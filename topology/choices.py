"""Named values of the presence topology, in the product's own words (reference 1.4, 1.5, 3)."""

from django.db import models


class NodeRole(models.TextChoices):
    PUBLISHER = "publisher", "Publisher"
    SUBSCRIBER = "subscriber", "Subscriber"


class UserAssignmentMode(models.TextChoices):
    BALANCED = "balanced", "Balanced"
    ACTIVE_STANDBY = "active_standby", "Active-Standby"
    NONE = "none", "None"


class HAState(models.TextChoices):
    """Node states of a presence redundancy group member (reference 1.4)."""

    INITIALIZING = "initializing", "Initializing"
    IDLE = "idle", "Idle"
    NORMAL = "normal", "Normal"
    RUNNING_IN_BACKUP_MODE = "backup_mode", "Running in Backup Mode"
    TAKING_OVER = "taking_over", "Taking Over"
    FAILING_OVER = "failing_over", "Failing Over"
    FAILED_OVER = "failed_over", "Failed Over"
    FAILED_OVER_CRITICAL_SERVICES_NOT_RUNNING = (
        "failed_over_critical_down",
        "Failed Over with Critical Services Not Running",
    )
    FALLING_BACK = "falling_back", "Falling Back"
    TAKING_BACK = "taking_back", "Taking Back"
    RUNNING_IN_FAILED_MODE = "failed_mode", "Running in Failed Mode"
    UNKNOWN = "unknown", "Unknown"
    BACKUP_ACTIVATED = "backup_activated", "Backup Activated"


# States grouped as the reference groups them.
TRANSITION_STATES = {
    HAState.INITIALIZING,
    HAState.TAKING_OVER,
    HAState.FAILING_OVER,
    HAState.FALLING_BACK,
    HAState.TAKING_BACK,
}
STEADY_STATES = {
    HAState.IDLE,
    HAState.NORMAL,
    HAState.RUNNING_IN_BACKUP_MODE,
    HAState.FAILED_OVER,
    HAState.FAILED_OVER_CRITICAL_SERVICES_NOT_RUNNING,
}
ERROR_STATES = {HAState.RUNNING_IN_FAILED_MODE, HAState.UNKNOWN}
# States of a node that is not part of a failover; every other state is (a node failed over,
# its backup, a transition between them, or their failure).
OUT_OF_FAILOVER_STATES = {HAState.NORMAL, HAState.INITIALIZING, HAState.UNKNOWN}
FAILOVER_STATES = set(HAState) - OUT_OF_FAILOVER_STATES
# States of the Server Recovery Manager's own rules (reference 1.3, 1.6):
# a peer in one of these states may be taken over automatically;
TAKE_OVER_FROM = {HAState.NORMAL, HAState.INITIALIZING, HAState.UNKNOWN}
# the node's critical services are held stopped (manual failover);
HOLD_DOWN_STATES = {HAState.FAILING_OVER, HAState.IDLE}
# a failed-over node may fall back (the Fallback button, automatic fallback);
FALLBACK_FROM = {HAState.IDLE, HAState.FAILED_OVER}
# critical services down on both nodes, each in one of these states, fail the group (1.2, 1.5).
BOTH_FAILED_FROM = {HAState.NORMAL, HAState.INITIALIZING}


class HAReason(models.TextChoices):
    """Reasons shown beside a node state (reference 1.5)."""

    NORMAL = "normal", "Normal"
    ON_ADMIN_REQUEST = "admin_request", "On Admin Request"
    INITIALIZATION = "initialization", "Initialization"
    AUTOMATIC_FALLBACK = "automatic_fallback", "Automatic Fallback"
    CRITICAL_SERVICE_DOWN = "critical_service_down", "Critical Service Down"
    DATABASE_FAILURE = "database_failure", "Database Failure"
    START_OF_CRITICAL_SERVICES_FAILED = "start_failed", "Start of Critical Services Failed"
    PEER_DOWN = "peer_down", "Peer Down"
    PEER_REBOOT = "peer_reboot", "Peer Reboot"
    PEER_DOWN_DURING_INITIALIZATION = "peer_down_init", "Peer Down During Initialization"
    TAKE_OVER_USERS_FAILED = (
        "take_over_failed",
        "Cisco Server Recovery Manager Take Over Users Failed",
    )
    TAKE_BACK_USERS_FAILED = (
        "take_back_failed",
        "Cisco Server Recovery Manager Take Back Users Failed",
    )
    UNKNOWN = "unknown", "Unknown"
    AUTO_RECOVER_DATABASE_FAILURE = "auto_recover_db", "Auto Recover Database Failure"
    AUTO_RECOVER_CRITICAL_SERVICE_DOWN = "auto_recover_crit", "Auto Recover Critical Service Down"
    HA_NOT_ENABLED = "ha_not_enabled", "High Availability Not Enabled"
