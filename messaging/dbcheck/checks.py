"""The External Database Status checks (reference 5.3): reachability, connectivity, schema
verification, and the privileges the schema install and the merge need.

Plain functions of an ``ExternalDatabase``: a Celery task, a view, a management command,
the merge validation and the tests call them alike. Each check returns a ``CheckResult``
and never raises for a problem of the database; a later check is skipped (and fails,
saying why) when an earlier one it depends on failed.
"""

from __future__ import annotations

import errno
import ipaddress
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from messaging.dbcheck import mssql, oracle, postgres
from messaging.dbcheck.base import CheckResult, DatabaseError, Driver
from messaging.models import CheckRunState, DatabaseType, ExternalDatabase, ExternalDatabaseCheck, StatusCheckName
from messaging.tc import schema

DRIVERS: dict[str, Driver] = {
    DatabaseType.POSTGRES: postgres,
    DatabaseType.ORACLE: oracle,
    DatabaseType.MSSQL: mssql,
}


class Unreachable(Exception):
    """The host cannot be resolved or does not accept a TCP connection; the message says why."""


def check_timeout() -> int:
    return int(settings.EXTERNAL_DB_CHECK_TIMEOUT)


def driver_for(database: ExternalDatabase) -> Driver:
    return DRIVERS[database.db_type]


def _lookup(host: str, port: int, timeout: float) -> list[tuple]:
    """``getaddrinfo`` bounded by ``timeout``: the lookup runs in a daemon thread, because a
    resolver that gets no answer retries for longer than a check may take."""
    outcome: dict = {}

    def lookup() -> None:
        try:
            outcome["addresses"] = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=lookup, name=f"resolve {host}", daemon=True)
    thread.start()
    thread.join(max(timeout, 0))
    if thread.is_alive():
        raise TimeoutError
    if "error" in outcome:
        raise outcome["error"]
    return outcome["addresses"]


def resolve(hostname: str, port: int, timeout: float | None = None) -> list[tuple]:
    """Addresses of ``hostname`` (getaddrinfo within ``timeout``), or Unreachable with a readable reason.

    Names under the reserved ``.invalid`` top-level domain never exist (RFC 6761 §6.4), so
    they are answered without asking DNS.
    """
    host = hostname.strip("[]")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if host.lower().rstrip(".").endswith(".invalid") or host.lower() == "invalid":
            raise Unreachable(f"The host name {hostname} cannot be resolved; check the Hostname field.") from None
    else:
        return socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_NUMERICHOST)
    timeout = check_timeout() if timeout is None else timeout
    try:
        return _lookup(host, port, timeout)
    except TimeoutError:
        raise Unreachable(
            f"The host name {hostname} could not be resolved within {timeout:g} s; "
            "check the Hostname field and that the DNS servers answer."
        ) from None
    except socket.gaierror as exc:
        raise Unreachable(
            f"The host name {hostname} cannot be resolved ({exc.strerror}); check the Hostname field."
        ) from exc
    except (OSError, UnicodeError) as exc:
        raise Unreachable(f"The host name {hostname} cannot be resolved ({exc}); check the Hostname field.") from exc


def connect_any(addresses: list[tuple], deadline: float) -> str:
    """Open and close a TCP connection to the first of ``addresses`` (getaddrinfo entries) that
    accepts one before ``deadline`` (``time.monotonic``); return its address or raise the last error.

    The addresses share the deadline, so a name with several silent addresses still answers in time.
    """
    last: OSError = TimeoutError()
    for family, kind, proto, _, sockaddr in addresses:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError
        sock = socket.socket(family, kind, proto)
        sock.settimeout(remaining)
        try:
            sock.connect(sockaddr)
            return sockaddr[0]
        except OSError as exc:
            last = exc
        finally:
            sock.close()
    raise last


def reach(database: ExternalDatabase, timeout: float) -> str:
    """Open and close a TCP connection to the database's host and port; return the address used.

    ``timeout`` bounds the whole attempt: the name lookup and every address tried share it.
    """
    deadline = time.monotonic() + timeout
    where = f"{database.hostname} port {database.port}"
    try:
        return connect_any(resolve(database.hostname, database.port, timeout), deadline)
    except OSError as exc:
        last = exc
    if isinstance(last, TimeoutError | socket.timeout):
        raise Unreachable(
            f"No answer from {where} within {timeout:g} s; a firewall may be dropping packets, or the host is down."
        )
    if isinstance(last, ConnectionRefusedError) or getattr(last, "errno", None) == errno.ECONNREFUSED:
        raise Unreachable(f"Nothing accepts connections on {where}; check the port and that the database server runs.")
    reason = getattr(last, "strerror", None) or str(last)
    raise Unreachable(f"Cannot reach {where}: {reason}.")


@contextmanager
def _timed(results: list[CheckResult], name: StatusCheckName) -> Iterator[dict]:
    outcome: dict = {}
    started = time.monotonic()
    yield outcome
    results.append(
        CheckResult(
            name=name,
            passed=outcome["passed"],
            message=outcome["message"],
            duration=timedelta(seconds=time.monotonic() - started),
        )
    )


def login(database: ExternalDatabase, timeout: int | None = None):
    """Reach and log in; return an open connection or raise Unreachable / DatabaseError."""
    timeout = timeout or check_timeout()
    address = reach(database, timeout)
    return driver_for(database).connect(database, address, timeout)


def run_checks(database: ExternalDatabase, privileges: bool = True) -> list[CheckResult]:
    """Run reachability, connectivity, schema verification (and privileges) in order."""
    timeout = check_timeout()
    driver = driver_for(database)
    results: list[CheckResult] = []
    address = connection = None

    with _timed(results, StatusCheckName.REACHABILITY) as out:
        try:
            address = reach(database, timeout)
            out.update(passed=True, message=f"{database.hostname} port {database.port} accepts connections.")
        except Unreachable as exc:
            out.update(passed=False, message=str(exc))

    with _timed(results, StatusCheckName.CONNECTIVITY) as out:
        if address is None:
            out.update(passed=False, message="Not tried: the database server cannot be reached.")
        else:
            try:
                connection = driver.connect(database, address, timeout)
                out.update(
                    passed=True,
                    message=f"Logged in to {database.database_name} as {database.username}.",
                )
            except DatabaseError as exc:
                out.update(passed=False, message=str(exc))

    try:
        with _timed(results, StatusCheckName.SCHEMA) as out:
            if connection is None:
                out.update(passed=False, message="Not tried: no login to the database.")
            else:
                try:
                    problems = schema.verify(driver.dialect, driver.columns(connection))
                except Exception as exc:  # a driver error while reading the catalog
                    problems = [f"The table definitions could not be read: {exc}"]
                if problems:
                    out.update(passed=False, message=_schema_message(problems))
                else:
                    out.update(passed=True, message="Every tc_* table and xcp_sequence has the expected columns.")
        if privileges:
            with _timed(results, StatusCheckName.PRIVILEGES) as out:
                if connection is None:
                    out.update(passed=False, message="Not tried: no login to the database.")
                else:
                    try:
                        missing = driver.missing_privileges(connection)
                    except Exception as exc:
                        missing = [f"The privileges could not be read: {exc}"]
                    out.update(
                        passed=not missing,
                        message=" ".join(missing) or "The user holds the privileges the install and the merge need.",
                    )
    finally:
        if connection is not None:
            connection.close()
    return results


def _schema_message(problems: list[str]) -> str:
    if all(p.endswith("is missing.") and p.startswith("Table") for p in problems) and len(problems) == len(
        schema.TABLES
    ):
        return "The TC schema is not installed: no tc_* table exists. Install it from this page."
    shown = " ".join(problems[:5])
    more = f" ({len(problems) - 5} more problems.)" if len(problems) > 5 else ""
    return f"The TC schema is not valid. {shown}{more}"


def record(database: ExternalDatabase, results: list[CheckResult], requested_at=None, note: str = "") -> bool:
    """Store each result on its ExternalDatabaseCheck row and mark the database checked.

    ``note`` becomes the status note shown above the results (an Install schema outcome).

    With ``requested_at`` (the request the worker claimed), results are dropped, and False
    returned, when a newer request superseded it (the connection settings changed meanwhile):
    they describe the old settings, and the newer request's check records its own.
    """
    now = timezone.now()
    with transaction.atomic():
        finished = ExternalDatabase.objects.filter(pk=database.pk)
        if requested_at is not None:
            finished = finished.filter(check_requested_at=requested_at)
        if not finished.update(check_state=CheckRunState.IDLE, last_checked_at=now, status_note=note[:255]):
            return False
        for result in results:
            ExternalDatabaseCheck.objects.update_or_create(
                database=database,
                name=result.name,
                defaults={
                    "passed": result.passed,
                    "message": result.message,
                    "duration": result.duration,
                    "checked_at": now,
                },
            )
    return True


def check_and_record(database: ExternalDatabase, requested_at=None, note: str = "") -> list[CheckResult]:
    """Run every check on ``database`` and store the results.

    The worker passes the ``requested_at`` of the request it claimed (it already marked the
    row running); a command or a test calling this directly passes nothing.
    """
    running = ExternalDatabase.objects.filter(pk=database.pk)
    if requested_at is None:
        running.update(check_state=CheckRunState.RUNNING, check_started_at=timezone.now())
    else:
        running = running.filter(check_requested_at=requested_at)
    try:
        results = run_checks(database)
    except Exception:
        running.update(check_state=CheckRunState.IDLE)
        raise
    record(database, results, requested_at, note)
    return results
