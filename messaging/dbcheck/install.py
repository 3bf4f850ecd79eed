"""Install the TC schema (tc_* tables, keys, indexes, xcp_sequence) into an empty database.

The statements come from ``messaging.tc.schema``, the one definition for every database
type. A database that already holds a valid schema is left alone; one holding a TC table
that does not match is refused, naming the table, and nothing is written.
"""

from __future__ import annotations

from dataclasses import dataclass

from messaging.dbcheck.checks import driver_for, login
from messaging.models import ExternalDatabase
from messaging.tc import schema


@dataclass(frozen=True)
class InstallOutcome:
    installed: bool  # True when tables were created
    ok: bool  # False when the install was refused or failed
    message: str


def install_schema(database: ExternalDatabase) -> InstallOutcome:
    """Install the TC schema into ``database`` unless it already holds one."""
    from messaging.dbcheck.base import DatabaseError
    from messaging.dbcheck.checks import Unreachable

    driver = driver_for(database)
    try:
        connection = login(database)
    except (Unreachable, DatabaseError) as exc:
        return InstallOutcome(False, False, f"Nothing was installed: {exc}")
    try:
        actual = driver.columns(connection)
        present = [table.name for table in schema.TABLES if table.name in actual]
        if present:
            problems = schema.verify(driver.dialect, actual)
            if not problems:
                return InstallOutcome(False, True, f"{database} already holds a valid TC schema; nothing was changed.")
            conflicting = [name for name in present if any(f" {name}." in p or f" {name} " in p for p in problems)]
            names = ", ".join(conflicting or present)
            return InstallOutcome(
                False,
                False,
                f"Nothing was installed: {database} already holds table(s) {names} that do not match the TC "
                f"schema. {' '.join(problems[:3])}",
            )
        try:
            with connection.cursor() as cursor:
                for statement in schema.install_statements(driver.dialect):
                    cursor.execute(statement)
            connection.commit()
        except Exception as exc:
            connection.rollback()
            # A missing privilege is the usual cause: say which, with the GRANT to run, rather
            # than the server's own words ("permission denied for schema public LINE 1: …").
            missing = driver.missing_privileges(connection)
            if missing:
                return InstallOutcome(False, False, f"Nothing was installed in {database}: {' '.join(missing)}")
            first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            return InstallOutcome(False, False, f"Installing the TC schema into {database} failed: {first_line}")
        return InstallOutcome(
            True, True, f"The TC schema (tc_* tables, xcp_sequence and their keys) was installed in {database}."
        )
    finally:
        connection.close()
