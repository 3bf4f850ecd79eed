"""Oracle through python-oracledb in thin mode (no Oracle client libraries)."""

from __future__ import annotations

import oracledb

from messaging.dbcheck.base import DatabaseError
from messaging.tc.schema import TABLES, ActualColumn, Dialect

dialect = Dialect.ORACLE

# ORA- codes an administrator meets, and what to do about each.
MESSAGES = {
    "ORA-01017": "The database server refused the user name or password of {user}; check both fields.",
    "ORA-28000": "The account {user} is locked; ask the database administrator to unlock it.",
    "ORA-28001": "The password of {user} has expired; set a new one on the server and here.",
    "ORA-12514": "The listener at {where} does not know the service {name}; check the Database Name field.",
    "ORA-12505": "The listener at {where} does not know the database {name}; check the Database Name field.",
    "DPY-6005": "Cannot connect to {where}; check the host, the port and that the Oracle listener runs.",
    "DPY-4011": "The connection to {where} was closed during the login; check SSL settings and the port.",
    "ORA-01045": "The user {user} lacks CREATE SESSION and cannot log in; grant it.",
}


def explain(exc: Exception, database, timeout: int) -> str:
    text = str(exc)
    where = f"{database.hostname}:{database.port}"
    for code, message in MESSAGES.items():
        if code in text:
            return message.format(user=database.username, where=where, name=database.database_name)
    if "timed out" in text or "DPY-4024" in text:
        return f"The server at {where} did not complete the login within {timeout} s."
    return f"Login to {where} failed: {text.splitlines()[0] if text else exc.__class__.__name__}"


def connect(database, address: str, timeout: int):
    params = oracledb.ConnectParams(
        host=address,
        port=database.port,
        service_name=database.database_name,
        protocol="tcps" if database.enable_ssl else "tcp",
        tcp_connect_timeout=timeout,
        ssl_server_dn_match=database.enable_ssl,
        ssl_server_cert_dn=None,
    )
    try:
        return oracledb.connect(user=database.username, password=database.get_password(), params=params)
    except oracledb.Error as exc:
        raise DatabaseError(explain(exc, database, timeout)) from exc


TABLE_NAMES = [table.name.upper() for table in TABLES]
# Only the TC tables' rows are kept; the list of names is bound, never spliced in.
COLUMNS_SQL = (
    "SELECT table_name, column_name, data_type, char_length, nullable FROM user_tab_columns "
    "WHERE table_name IN (SELECT column_value FROM TABLE(sys.odcivarchar2list(:1, :2, :3, :4, :5, :6)))"
)


def columns(connection) -> dict[str, dict[str, ActualColumn]]:
    cursor = connection.cursor()
    cursor.execute(COLUMNS_SQL, TABLE_NAMES)
    actual: dict[str, dict[str, ActualColumn]] = {}
    for table_name, column_name, data_type, length, nullable in cursor.fetchall():
        actual.setdefault(table_name.lower(), {})[column_name.lower()] = ActualColumn(
            data_type, length or None, nullable == "Y"
        )
    return actual


REQUIRED = ("CREATE TABLE", "CREATE PUBLIC DATABASE LINK")


def missing_privileges(connection) -> list[str]:
    cursor = connection.cursor()
    cursor.execute("SELECT privilege FROM session_privs")
    held = {row[0] for row in cursor.fetchall()}
    user = connection.username
    return [
        f"The user {user} lacks the {privilege} privilege, which the schema install and the merge need; grant it."
        for privilege in REQUIRED
        if privilege not in held
    ]
