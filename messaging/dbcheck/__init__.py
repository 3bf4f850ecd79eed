"""External database checks and schema install, for the console, the worker and the merge.

``run_checks(db) -> list[CheckResult]`` runs reachability, connectivity, schema
verification and privileges; ``install_schema(db)`` installs the TC schema.
"""

from messaging.dbcheck.base import CheckResult, DatabaseError
from messaging.dbcheck.checks import Unreachable, check_and_record, login, reach, record, run_checks
from messaging.dbcheck.install import InstallOutcome, install_schema

__all__ = [
    "CheckResult",
    "DatabaseError",
    "InstallOutcome",
    "Unreachable",
    "check_and_record",
    "install_schema",
    "login",
    "reach",
    "record",
    "run_checks",
]
