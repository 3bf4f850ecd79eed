"""Microsoft SQL Server through mssql-python, the driver mssql-django uses."""

from __future__ import annotations

import mssql_python

from messaging.dbcheck.base import DatabaseError
from messaging.tc.schema import TABLES, ActualColumn, Dialect

dialect = Dialect.MSSQL

MESSAGES = {
    "18456": "The database server refused the login of {user}; check the user name, password and domain.",
    "4060": "The database {name} does not exist on {where} or {user} may not open it; check the Database Name.",
    "HYT00": "The server at {where} did not complete the login within {timeout} s.",
    "08001": "Cannot connect to {where}; check the host, the static TCP port and that SQL Server runs.",
}


WINDOWS_LOGIN = (
    "The database server refused the Windows login of {domain}\\{user}. Windows authentication goes through "
    "Kerberos: the host running the checks and merges needs a ticket for {user}@{realm} (kinit), and SQL "
    "Server a login for {domain}\\{user}."
)


def explain(exc: Exception, database, timeout: int) -> str:
    text = str(exc)
    where = f"{database.hostname}:{database.port}"
    if database.windows_authentication and ("18456" in text or "SSPI" in text or "GSSAPI" in text):
        domain = database.domain or "DOMAIN"
        return WINDOWS_LOGIN.format(domain=domain, user=database.username, realm=domain.upper())
    for code, message in MESSAGES.items():
        if code in text:
            return message.format(user=database.username, where=where, name=database.database_name, timeout=timeout)
    return f"Login to {where} failed: {text.splitlines()[0] if text else exc.__class__.__name__}"


def _quote(value: str) -> str:
    # ODBC connection-string values are braced, with a closing brace doubled.
    return "{" + value.replace("}", "}}") + "}"


def connection_string(database, address: str, timeout: int) -> str:
    parts = {
        "Server": f"tcp:{address},{database.port}",
        "Database": database.database_name,
        "Encrypt": "yes" if database.enable_ssl else "no",
        "TrustServerCertificate": "no" if database.enable_ssl else "yes",
        "Connection Timeout": str(timeout),
    }
    if database.enable_ssl:
        parts["HostNameInCertificate"] = database.hostname
    if database.windows_authentication:
        # Off Windows the driver's only integrated login is Kerberos: the worker's ticket for
        # user@DOMAIN (kinit) is what logs in, so no user name or password goes in the string.
        # ("ActiveDirectoryPassword" would be a Microsoft Entra ID login, not a domain one.)
        parts["Trusted_Connection"] = "yes"
    else:
        parts["UID"] = database.username
        parts["PWD"] = database.get_password()
    return ";".join(f"{key}={_quote(value)}" for key, value in parts.items())


def connect(database, address: str, timeout: int):
    try:
        return mssql_python.connect(connection_string(database, address, timeout), autocommit=False)
    except mssql_python.Error as exc:
        raise DatabaseError(explain(exc, database, timeout)) from exc


TABLE_NAMES = [table.name for table in TABLES]
COLUMNS_SQL = (
    "SELECT TABLE_NAME, COLUMN_NAME, DATA_TYPE, CHARACTER_MAXIMUM_LENGTH, IS_NULLABLE "
    "FROM INFORMATION_SCHEMA.COLUMNS WHERE TABLE_SCHEMA = SCHEMA_NAME() AND TABLE_NAME IN ("
    + ", ".join("?" for _ in TABLE_NAMES)
    + ")"
)


def columns(connection) -> dict[str, dict[str, ActualColumn]]:
    cursor = connection.cursor()
    cursor.execute(COLUMNS_SQL, TABLE_NAMES)
    actual: dict[str, dict[str, ActualColumn]] = {}
    for table_name, column_name, data_type, length, nullable in cursor.fetchall():
        # nvarchar(MAX) reports -1: no limit.
        actual.setdefault(table_name.lower(), {})[column_name.lower()] = ActualColumn(
            data_type, None if length in (None, -1) else length, nullable == "YES"
        )
    return actual


def missing_privileges(connection) -> list[str]:
    cursor = connection.cursor()
    cursor.execute(
        "SELECT SUSER_SNAME(), HAS_PERMS_BY_NAME(NULL, 'DATABASE', 'CREATE TABLE'), "
        "HAS_PERMS_BY_NAME(SCHEMA_NAME(), 'SCHEMA', 'ALTER')"
    )
    user, create_table, alter_schema = cursor.fetchone()
    problems = []
    if not create_table:
        problems.append(f"The login {user} lacks CREATE TABLE in this database; grant it (or db_owner).")
    if not alter_schema:
        problems.append(f"The login {user} lacks ALTER on its default schema, needed to create the TC tables.")
    return problems
