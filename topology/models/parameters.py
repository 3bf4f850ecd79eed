"""Service parameters of the Cisco Server Recovery Manager (reference section 2).

The clusterwide parameters live on one row per cluster, the per-node ones (client re-login
limits) on one row per node. A cluster without a row uses the product's defaults. Timers are
in seconds and accept fractions down to 0.2 s, so tests and demos shorten them through
these same parameters.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q

from topology.catalog import CRITICAL_SERVICE_CHOICES, default_critical_services

MIN_TIMER_SECONDS = 0.2  # low enough for tests and demos; the product's smallest sensible value is 1
MAX_TIMER_SECONDS = 3600  # [INFERRED] range, reference section 2
MAX_FALLBACK_DELAY_SECONDS = 7 * 24 * 3600
MIN_SELF_FENCE_MARGIN, MAX_SELF_FENCE_MARGIN = 5, 50
# The timing rule, as Patroni's loop_wait + 2 × retry_timeout ≤ ttl: a node renews its lease
# with every heartbeat and stops serving once its last renewal is older than the heartbeat
# timeout less the margin, so two heartbeats in a row may fail without it fencing itself.
TIMING_RULE = "2 × heartbeat interval + self-fence margin ≤ heartbeat timeout"
TIMER_HELP = f" Seconds, {MIN_TIMER_SECONDS}–{MAX_TIMER_SECONDS}; fractions allowed (tests and demos use short timers)."


def _timer(verbose_name: str, default: float, help_text: str, maximum: float = MAX_TIMER_SECONDS):
    return models.FloatField(
        verbose_name,
        default=default,
        validators=[MinValueValidator(MIN_TIMER_SECONDS), MaxValueValidator(maximum)],
        help_text=help_text,
    )


def validate_critical_services(value) -> None:
    allowed = {choice for choice, _ in CRITICAL_SERVICE_CHOICES}
    if not isinstance(value, list) or not value or any(item not in allowed for item in value):
        raise ValidationError(
            "Choose at least one critical service among: %(allowed)s.",
            params={"allowed": ", ".join(label for _, label in CRITICAL_SERVICE_CHOICES)},
        )


class ServiceParameters(models.Model):
    """Clusterwide parameters of the Cisco Server Recovery Manager of one cluster."""

    cluster = models.OneToOneField("topology.Cluster", on_delete=models.CASCADE, related_name="srm_parameters")
    heartbeat_interval = _timer(
        "Keep Alive (HeartBeat) Interval",
        15,
        "How often each node agent writes its heartbeat. Default 15." + TIMER_HELP,
    )
    heartbeat_timeout = _timer(
        "Keep Alive (Heartbeat) Timeout",
        60,
        "How old the peer's heartbeat may be before the SRM fails it over (Peer Down). Default 60." + TIMER_HELP,
    )
    initialization_heartbeat_timeout = _timer(
        "Initialization Keep Alive (Heartbeat) Timeout",
        120,
        "Heartbeat loss allowed while the peer initializes. Default 120." + TIMER_HELP,
    )
    critical_service_delay = _timer(
        "Critical Service Delay",
        90,
        "How long a critical service of the peer may be down before the SRM fails the peer over. Default 90."
        + TIMER_HELP,
    )
    enable_automatic_fallback = models.BooleanField(
        "Enable Automatic Fallback",
        default=False,
        help_text="If on, users move back to their home node once it has been healthy (Failed Over) for the "
        "automatic fallback delay.",
    )
    automatic_fallback_delay = _timer(
        "Automatic Fallback Delay",
        1800,
        "How long the failed-over node must be healthy before automatic fallback. Default 1800 (30 minutes). "
        f"Seconds, {MIN_TIMER_SECONDS}–{MAX_FALLBACK_DELAY_SECONDS}.",
        maximum=MAX_FALLBACK_DELAY_SECONDS,
    )
    self_fence_margin = models.PositiveSmallIntegerField(
        "Self-Fence Margin (%)",
        default=25,
        validators=[MinValueValidator(MIN_SELF_FENCE_MARGIN), MaxValueValidator(MAX_SELF_FENCE_MARGIN)],
        help_text="How much of the heartbeat timeout a node keeps in hand: a node whose heartbeat could not be "
        "renewed for the heartbeat timeout less this margin stops serving its rooms, before its peer may take "
        f"them over. Percent of the heartbeat timeout, {MIN_SELF_FENCE_MARGIN}–{MAX_SELF_FENCE_MARGIN}. "
        f"Default 25. Timing rule: {TIMING_RULE}.",
    )
    critical_services = models.JSONField(
        default=default_critical_services,
        validators=[validate_critical_services],
        help_text="Services whose failure on a node makes its peer take over after the critical service delay. "
        "Default: Cisco XCP Text Conference Manager and Cisco XCP Router.",
    )

    class Meta:
        verbose_name = "service parameters"
        verbose_name_plural = "service parameters"
        constraints = [
            models.CheckConstraint(
                condition=Q(heartbeat_timeout__gt=F("heartbeat_interval")),
                name="%(app_label)s_%(class)s_timeout_longer_than_interval",
                violation_error_message="The heartbeat timeout must be longer than the heartbeat interval.",
            ),
            models.CheckConstraint(
                condition=Q(
                    heartbeat_interval__lte=F("heartbeat_timeout") * (100 - F("self_fence_margin")) / 200.0,
                ),
                name="%(app_label)s_%(class)s_timing_rule",
                violation_error_message=f"The timing rule {TIMING_RULE} does not hold.",
            ),
            models.CheckConstraint(
                condition=Q(initialization_heartbeat_timeout__gte=F("heartbeat_timeout")),
                name="%(app_label)s_%(class)s_init_timeout_not_shorter",
                violation_error_message="The initialization heartbeat timeout cannot be shorter than the "
                "heartbeat timeout.",
            ),
        ]

    def __str__(self) -> str:
        return f"Cisco Server Recovery Manager parameters of {self.cluster}"

    @property
    def self_fence_seconds(self) -> float:
        """The margin in seconds: the heartbeat timeout times the self-fence margin."""
        return self.heartbeat_timeout * self.self_fence_margin / 100

    @property
    def lease_seconds(self) -> float:
        """How long a heartbeat renews the node's lease: heartbeat timeout less the margin."""
        return self.heartbeat_timeout - self.self_fence_seconds

    def timing_rule_error(self) -> str | None:
        """Why the timing rule does not hold, with the figures; None when it does."""
        interval, timeout = self.heartbeat_interval, self.heartbeat_timeout
        if None in (interval, timeout, self.self_fence_margin):
            return None
        if 2 * interval + self.self_fence_seconds <= timeout + 1e-9:
            return None
        return (
            f"The timing rule {TIMING_RULE} does not hold: 2 × {interval:g} s + {self.self_fence_margin} % of "
            f"{timeout:g} s ({self.self_fence_seconds:g} s) = {2 * interval + self.self_fence_seconds:g} s, more than "
            f"{timeout:g} s. Shorten the heartbeat interval, lengthen the timeout or lower the margin."
        )

    @classmethod
    def for_cluster(cls, cluster_id: int | None) -> ServiceParameters:
        """The cluster's parameters, or an unsaved row of defaults when it has none."""
        found = cls.objects.filter(cluster_id=cluster_id).first() if cluster_id else None
        return found or cls(cluster_id=cluster_id)


class NodeServiceParameters(models.Model):
    """Per-node parameters of the Cisco Server Recovery Manager (client re-login limits)."""

    node = models.OneToOneField("topology.Node", on_delete=models.CASCADE, related_name="srm_parameters")
    client_relogin_lower_limit = models.PositiveIntegerField(
        "Client Re-Login Lower Limit",
        default=120,
        validators=[MinValueValidator(1), MaxValueValidator(MAX_TIMER_SECONDS)],
        help_text="Seconds a client waits at least before signing in again on the backup node; should match "
        "the critical service delay. Default 120. Equal on both nodes of a redundancy group.",
    )
    client_relogin_upper_limit = models.PositiveIntegerField(
        "Client Re-Login Upper Limit",
        default=537,
        validators=[MinValueValidator(1), MaxValueValidator(4 * MAX_TIMER_SECONDS)],
        help_text="Seconds a client waits at most before signing in again. Default 537. Equal on both nodes "
        "of a redundancy group.",
    )

    class Meta:
        verbose_name = "node service parameters"
        verbose_name_plural = "node service parameters"
        constraints = [
            models.CheckConstraint(
                condition=Q(client_relogin_upper_limit__gte=F("client_relogin_lower_limit")),
                name="%(app_label)s_%(class)s_relogin_upper_not_below_lower",
                violation_error_message="The client re-login upper limit cannot be below the lower limit.",
            ),
        ]

    def __str__(self) -> str:
        return f"Cisco Server Recovery Manager parameters of {self.node}"

    @classmethod
    def for_node(cls, node_id: int) -> NodeServiceParameters:
        return cls.objects.filter(node_id=node_id).first() or cls(node_id=node_id)
