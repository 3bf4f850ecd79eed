"""External databases (Messaging > External Server Setup > External Databases, reference 5)
and the persistent chat database assignment of each chat node (reference 4.3)."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.urls import reverse

from imp_admin import crypto
from topology import database_rule
from topology.models import Node


class DatabaseType(models.TextChoices):
    POSTGRES = "postgres", "Postgres"
    ORACLE = "oracle", "Oracle"
    MSSQL = "mssql", "Microsoft SQL Server"


DEFAULT_PORTS = {DatabaseType.POSTGRES: 5432, DatabaseType.ORACLE: 1521, DatabaseType.MSSQL: 1433}
ORACLE_SSL_PORT = 2484


class StatusCheckName(models.TextChoices):
    """The External Database Status checks (reference 5.3, plus the merge's privileges)."""

    REACHABILITY = "reachability", "Database reachability"
    CONNECTIVITY = "connectivity", "Database connectivity"
    SCHEMA = "schema", "Database schema verification"
    PRIVILEGES = "privileges", "Database privileges"


# The three checks the product shows as check marks; privileges matter to a merge only.
STATUS_CHECKS = (StatusCheckName.REACHABILITY, StatusCheckName.CONNECTIVITY, StatusCheckName.SCHEMA)


class CheckRunState(models.TextChoices):
    IDLE = "idle", "Idle"
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"


ACTIVE_CHECK_STATES = {CheckRunState.QUEUED, CheckRunState.RUNNING}

# The settings a status check connects with: changing any of them makes the recorded
# results describe another server, so they are cleared and the database checked again.
CONNECTION_FIELDS = (
    "db_type",
    "hostname",
    "port",
    "database_name",
    "username",
    "password_encrypted",
    "enable_ssl",
    "certificate_name",
    "windows_authentication",
    "domain",
)

CONNECTION_CHANGED_NOTE = (
    "The connection settings changed, so the earlier check results were cleared; "
    "the database is being checked again with the new settings."
)


class ExternalDatabase(models.Model):
    """A connection to an external database holding persistent chat (`tc_*`) tables.

    The password is stored encrypted with the secrets key (``imp_admin.crypto``) and is
    never rendered back into a page, a form or a log.
    """

    database_name = models.CharField(
        "Database Name", max_length=128, help_text="Name of the database instance, e.g. tcmadb."
    )
    db_type = models.CharField("Database Type", max_length=16, choices=DatabaseType.choices)
    tablespace = models.CharField(max_length=128, blank=True, help_text="Oracle only: the user's default tablespace.")
    username = models.CharField("User Name", max_length=128)
    password_encrypted = models.TextField(editable=False, help_text="The password, encrypted with IMP_SECRETS_KEY.")
    hostname = models.CharField(
        "Hostname", max_length=253, help_text="Host name, IPv4 or IPv6 address of the database server."
    )
    port = models.PositiveIntegerField("Port Number", validators=[MinValueValidator(1), MaxValueValidator(65535)])
    enable_ssl = models.BooleanField("Enable SSL", default=False, help_text="Oracle and SQL Server only.")
    certificate_name = models.CharField("Certificate Name", max_length=255, blank=True)
    windows_authentication = models.BooleanField("Enable Windows Authentication", default=False)
    domain = models.CharField(max_length=255, blank=True, help_text="SQL Server Windows authentication only.")

    # Written by the status check (a Celery worker); the results are ExternalDatabaseCheck rows.
    check_state = models.CharField(
        max_length=16,
        choices=CheckRunState.choices,
        default=CheckRunState.IDLE,
        editable=False,
        help_text="Whether a status check is queued or running; the console sets Queued, the worker the rest.",
    )
    check_requested_at = models.DateTimeField(
        null=True, blank=True, editable=False, help_text="When a status check was last asked for."
    )
    check_started_at = models.DateTimeField(
        null=True, blank=True, editable=False, help_text="When a worker last started running a status check."
    )
    last_checked_at = models.DateTimeField(
        null=True, blank=True, editable=False, help_text="When the worker last finished the status checks."
    )
    status_note = models.CharField(
        max_length=255,
        blank=True,
        editable=False,
        help_text="A sentence shown above the check results: why none are shown (the connection settings "
        "changed; written by the console when it clears them), or the outcome of Install schema (written by "
        "the worker with the check that follows it). The worker empties it with the next check.",
    )

    class Meta:
        ordering = ["hostname", "database_name"]
        verbose_name = "external database"
        constraints = [
            models.UniqueConstraint(
                fields=["hostname", "port", "database_name"],
                name="%(app_label)s_%(class)s_unique_instance",
                violation_error_message="This database is already configured.",
            ),
        ]
        permissions = [
            ("check_externaldatabase", "Can run external database status checks"),
            ("delete_persistent_room", "Can delete persistent chat rooms (super administrators)"),
        ]

    def __str__(self) -> str:
        return f"{self.database_name}@{self.hostname}:{self.port}"

    def get_absolute_url(self) -> str:
        return reverse("messaging:externaldatabase_detail", args=[self.pk])

    def set_password(self, password: str) -> None:
        self.password_encrypted = crypto.encrypt(password)

    def get_password(self) -> str:
        return crypto.decrypt(self.password_encrypted) if self.password_encrypted else ""

    def postgres_conninfo(self, connect_timeout: int = 5) -> dict:
        """Keyword arguments for ``psycopg.connect`` (PostgreSQL entries only)."""
        return {
            "host": self.hostname,
            "port": self.port,
            "dbname": self.database_name,
            "user": self.username,
            "password": self.get_password(),
            "connect_timeout": connect_timeout,
            "application_name": "imp-admin",
        }


class PersistentChatAssignment(models.Model):
    """Which external database a chat node's Text Conference Manager uses.

    With HA on, both nodes of a redundancy group point at the same logical database and no
    other group uses it; without HA, each node has its own. No row, or an empty database,
    means "unassigned".
    """

    node = models.OneToOneField("topology.Node", on_delete=models.CASCADE, related_name="chat_assignment")
    database = models.ForeignKey(
        ExternalDatabase,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="assignments",
        help_text="The external database for persistent chat on this node; empty = unassigned.",
    )

    class Meta:
        ordering = ["node__name"]
        verbose_name = "persistent chat database assignment"

    def __str__(self) -> str:
        return f"{self.node}: {self.database or 'unassigned'}"

    def clean(self) -> None:
        if not self.node_id:
            return
        errors = validate_assignments({self.node: self.database})
        if errors:
            raise ValidationError({"database": [m for messages in errors.values() for m in messages]})


def validate_assignments(proposed: dict[Node, ExternalDatabase | None]) -> dict[Node, list[str]]:
    """Check a proposed set of node → database assignments against the rest of the config.

    Reads the current assignments, then applies the rule of ``topology.database_rule``;
    returns error messages keyed by node (empty when the proposal keeps the rule).
    """
    current = dict(
        PersistentChatAssignment.objects.filter(database__isnull=False).values_list("node_id", "database_id")
    )
    final = {**current, **{node.pk: (db.pk if db else None) for node, db in proposed.items()}}
    nodes = {n.pk: n for n in Node.objects.select_related("redundancy_group").filter(pk__in=final.keys())}
    names = {db.pk: str(db) for db in ExternalDatabase.objects.filter(pk__in={v for v in final.values() if v})}
    return database_rule.assignment_errors(proposed, final, nodes, names)


class ExternalDatabaseCheck(models.Model):
    """The latest result of one status check of an external database (one row per check).

    Written only by the checker (``messaging.checks``), run by a Celery worker, a
    management command or a test.
    """

    database = models.ForeignKey(ExternalDatabase, on_delete=models.CASCADE, related_name="checks")
    name = models.CharField(max_length=16, choices=StatusCheckName.choices)
    passed = models.BooleanField(editable=False)
    message = models.TextField(editable=False, help_text="What the check found, in words an administrator acts on.")
    checked_at = models.DateTimeField(editable=False, help_text="When the check finished.")
    duration = models.DurationField(editable=False, help_text="How long the check took.")

    class Meta:
        ordering = ["database", "name"]
        verbose_name = "external database check"
        constraints = [
            models.UniqueConstraint(fields=["database", "name"], name="%(app_label)s_%(class)s_unique_check"),
        ]

    def __str__(self) -> str:
        return f"{self.database} {self.get_name_display()}: {'passed' if self.passed else 'failed'}"
