"""End users and the node each one is assigned to (reference section 3)."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator, RegexValidator
from django.db import models
from django.urls import reverse

from topology.choices import FAILOVER_STATES
from topology.models.topology import Node

jid_validator = RegexValidator(
    r"^[^@\s/\"&'<>:]+@[A-Za-z0-9.-]+$",
    "Enter a JID in the form name@domain, such as andy@example.com.",
)
user_id_validator = RegexValidator(
    r"^[A-Za-z0-9._-]{1,64}$", "Use letters, digits, dot, underscore and dash, at most 64 characters."
)


class EndUser(models.Model):
    """An IM and Presence end user and the node that hosts them.

    ``assigned_node`` is the user's home node, set by the administrator or by the cluster's
    User Assignment Mode. ``active_node`` is written by the Server Recovery Manager: the
    backup node serving the user while the home node is failed over, empty otherwise.
    """

    user_id = models.CharField("User ID", max_length=64, unique=True, validators=[user_id_validator])
    jid = models.CharField("IM address (JID)", max_length=255, unique=True, validators=[jid_validator])
    display_name = models.CharField(max_length=128, blank=True)
    assigned_node = models.ForeignKey(
        "topology.Node",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="assigned_users",
        help_text="The user's home node; users sign in there.",
    )
    active_node = models.ForeignKey(
        "topology.Node",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="backup_users",
        editable=False,
        help_text="Backup node serving the user during a failover; written by the Server "
        "Recovery Manager, empty when the home node serves the user.",
    )

    # Credentials: the password itself is never stored, only its SCRAM keys (ScramCredential).
    password_set_at = models.DateTimeField(
        "Password set",
        null=True,
        blank=True,
        editable=False,
        help_text="When an administrator or the user last set the password; empty while the user has none "
        "and cannot sign in. Written by topology.credentials.set_password.",
    )
    # Sign-in outcomes, written by the node agents' chat ports (left out of the audit trail).
    failed_sign_ins = models.PositiveIntegerField(
        "Failed sign-ins",
        default=0,
        editable=False,
        help_text="Sign-ins refused for a wrong password, counted on every chat port of every node.",
    )
    last_failed_sign_in_at = models.DateTimeField(
        "Last failed sign-in", null=True, blank=True, editable=False, help_text="When the last wrong password came."
    )
    last_failed_sign_in_source = models.CharField(
        "Last failed sign-in from",
        max_length=64,
        blank=True,
        editable=False,
        help_text="Source address of the client that sent the last wrong password.",
    )
    last_sign_in_at = models.DateTimeField(
        "Last sign-in", null=True, blank=True, editable=False, help_text="When the user last signed in on a chat port."
    )

    class Meta:
        ordering = ["user_id"]
        verbose_name = "end user"

    def __str__(self) -> str:
        return self.display_name or self.user_id

    def get_absolute_url(self) -> str:
        return reverse("topology:user_edit", args=[self.pk])

    def clean(self) -> None:
        # Reference 1.3: end users cannot be added to a cluster while any of its nodes is failed over.
        if not self._state.adding or self.assigned_node_id is None:
            return
        cluster_id = Node.objects.filter(pk=self.assigned_node_id).values_list("cluster_id", flat=True).first()
        failed = Node.objects.filter(cluster_id=cluster_id, ha_state__in=FAILOVER_STATES).order_by("name").first()
        if failed is not None:
            raise ValidationError(
                {
                    "assigned_node": f"End users cannot be added to cluster {failed.cluster} while {failed} is "
                    f"{failed.get_ha_state_display()}; fall back first, then add the user."
                }
            )

    @property
    def has_password(self) -> bool:
        return self.password_set_at is not None

    @property
    def serving_node(self):
        """The node serving the user now: the backup during a failover, else the home node."""
        return self.active_node or self.assigned_node


class ScramMechanismName(models.TextChoices):
    """SASL SCRAM mechanisms whose salted keys are stored for every password (RFC 5802, RFC 7677)."""

    SHA_256 = "SCRAM-SHA-256", "SCRAM-SHA-256"
    SHA_1 = "SCRAM-SHA-1", "SCRAM-SHA-1"


MIN_SCRAM_ITERATIONS = 4096


class ScramCredential(models.Model):
    """The SCRAM keys of an end user's password for one mechanism, as XMPP servers keep them.

    From these a server verifies a SCRAM exchange (and a PLAIN password, by deriving the keys
    again), but nobody can read the password back. Written only by
    ``topology.credentials.set_password``.
    """

    user = models.ForeignKey(EndUser, on_delete=models.CASCADE, related_name="scram_credentials")
    mechanism = models.CharField(max_length=16, choices=ScramMechanismName.choices)
    salt = models.BinaryField(help_text="Random salt of the salted password.")
    stored_key = models.BinaryField(help_text="H(HMAC(salted password, 'Client Key')).")
    server_key = models.BinaryField(help_text="HMAC(salted password, 'Server Key').")
    iterations = models.PositiveIntegerField(
        validators=[MinValueValidator(MIN_SCRAM_ITERATIONS)],
        help_text=f"PBKDF2 iteration count, at least {MIN_SCRAM_ITERATIONS}.",
    )

    class Meta:
        verbose_name = "SCRAM credential"
        constraints = [
            models.UniqueConstraint(fields=["user", "mechanism"], name="%(app_label)s_%(class)s_unique_user_mechanism"),
            models.CheckConstraint(
                condition=models.Q(iterations__gte=MIN_SCRAM_ITERATIONS),
                name="%(app_label)s_%(class)s_iterations_at_least_4096",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} {self.mechanism}"
