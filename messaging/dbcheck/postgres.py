"""PostgreSQL through psycopg 3."""

from __future__ import annotations

import psycopg

from messaging.dbcheck.base import DatabaseError
from messaging.tc.schema import ActualColumn, Dialect, postgres_actual

dialect = Dialect.POSTGRES


def explain(exc: Exception, database, timeout: int) -> str:
    """Turn a psycopg error into a sentence; the driver's own words follow for the details."""
    text = str(exc).strip()
    first = text.splitlines()[-1] if text else exc.__class__.__name__
    where = f"{database.hostname}:{database.port}"
    if "password authentication failed" in text or "password is required" in text or "no password supplied" in text:
        return f"The database server refused the user name or password of {database.username}; check both fields."
    if f'role "{database.username}" does not exist' in text:
        return f"The database server has no user {database.username}; check the User Name field."
    if f'database "{database.database_name}" does not exist' in text:
        return f"The database {database.database_name} does not exist on {where}; check the Database Name field."
    if "timeout expired" in text:
        return (
            f"The server at {where} accepted the connection but did not complete the login within {timeout} s; "
            "it may not be a PostgreSQL server, or it is overloaded."
        )
    if "no pg_hba.conf entry" in text:
        return (
            f"The server at {where} does not allow this console to log in as {database.username} "
            "(no pg_hba.conf entry); add one and reload PostgreSQL."
        )
    if "Connection refused" in text:
        return f"Nothing accepts connections on {where}; check the port and that PostgreSQL is running."
    if "permission denied for database" in text:
        return f"The user {database.username} may not connect to {database.database_name} (no CONNECT privilege)."
    return f"Login to {where} failed: {first}"


def connect(database, address: str, timeout: int):
    try:
        return psycopg.connect(
            host=database.hostname,
            hostaddr=address,
            port=database.port,
            dbname=database.database_name,
            user=database.username,
            password=database.get_password(),
            connect_timeout=max(2, timeout),
            application_name="imp-admin",
        )
    except psycopg.Error as exc:
        raise DatabaseError(explain(exc, database, timeout)) from exc


def columns(connection) -> dict[str, dict[str, ActualColumn]]:
    with connection.cursor() as cursor:
        return postgres_actual(cursor)


PRIVILEGES_SQL = """
    SELECT current_schema(),
           has_schema_privilege(current_schema(), 'CREATE'),
           EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'dblink')
"""
DBLINK_SQL = """
    SELECT has_function_privilege('dblink_connect(text)', 'EXECUTE'),
           has_function_privilege('dblink_connect(text,text)', 'EXECUTE')
"""


def missing_privileges(connection) -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute(PRIVILEGES_SQL)
        schema, can_create, has_dblink = cursor.fetchone()
        user = connection.info.user
        problems = []
        if schema is None:
            problems.append(f"The user {user} has no schema to create tables in (search_path is empty).")
        elif not can_create:
            problems.append(
                f"The user {user} lacks CREATE on schema {schema}; grant it "
                f"(GRANT CREATE ON SCHEMA {schema} TO {user}) so the TC tables can be created."
            )
        if has_dblink:
            cursor.execute(DBLINK_SQL)
            if not all(cursor.fetchone()):
                problems.append(
                    f"The user {user} lacks EXECUTE on dblink_connect(text) and dblink_connect(text,text), "
                    "which the database merge needs."
                )
        return problems
