"""What every database driver offers the checker and the schema installer."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

from messaging.tc.schema import ActualColumn, Dialect


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one status check: its name (a ``StatusCheckName``), whether it passed, a
    sentence for the administrator, and how long it took."""

    name: str
    passed: bool
    message: str
    duration: timedelta

    @property
    def label(self) -> str:
        from messaging.models import StatusCheckName

        return StatusCheckName(self.name).label


class DatabaseError(Exception):
    """A driver error already turned into a sentence an administrator understands."""


class Driver(Protocol):
    """One database type: log in, read the TC columns, list missing privileges."""

    dialect: Dialect

    def connect(self, database: Any, address: str, timeout: int) -> Any:
        """Open a connection (autocommit off) or raise DatabaseError with a readable message."""

    def columns(self, connection: Any) -> dict[str, dict[str, ActualColumn]]:
        """The columns of the TC tables present, keyed by lower-case table and column name."""

    def missing_privileges(self, connection: Any) -> list[str]:
        """Privileges the schema install and the merge need that the user lacks, as sentences."""
