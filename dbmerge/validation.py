"""Validate Selected Tables: the checks a merge must pass, each a named result with its reason.

Reachability, login and schema verification come from the External Database checks
(``messaging.dbcheck``); the merge's own checks (TC stopped, destination in use, room for the
data, privileges of the transfer, the merge record) are here.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from dbmerge.choices import CheckName, MergeDatabaseType
from dbmerge.engines import MergeCancelled, MergeError, MergeHooks
from dbmerge.engines import postgres as pg_engine
from dbmerge.models import MergeJob
from messaging.dbcheck.checks import run_checks
from messaging.models import DatabaseType, ExternalDatabase, PersistentChatAssignment, StatusCheckName
from topology.observed import TEXT_CONFERENCE_MANAGER, service_running

MSSQL_REFUSED = "MS SQL is not supported for merging."


@dataclass
class CheckOutcome:
    name: CheckName
    subject: str
    passed: bool
    message: str
    duration: float = 0.0
    warning: bool = False


def engine_database(database: ExternalDatabase) -> pg_engine.PostgresDatabase:
    return pg_engine.PostgresDatabase(str(database), database.postgres_conninfo())


def _mb(size: int) -> str:
    return f"{size / 1_000_000:.1f} MB"


class Validator:
    """Runs every check for a job; ``outcomes`` in the order they ran."""

    def __init__(self, job: MergeJob, on_check=lambda outcome: None, hooks: MergeHooks | None = None) -> None:
        self.job = job
        self.on_check = on_check
        self.hooks = hooks or MergeHooks()
        self.outcomes: list[CheckOutcome] = []
        self.roles = {
            "Source database 1": job.source_1,
            "Source database 2": job.source_2,
            "Destination database": job.target,
        }

    def add(
        self, name: CheckName, subject: str, passed: bool, message: str, started: float, warning: bool = False
    ) -> None:
        outcome = CheckOutcome(name, subject, passed, message, time.monotonic() - started, warning)
        self.outcomes.append(outcome)
        self.on_check(outcome)
        self.hooks.raise_if_cancelled()

    @property
    def passed(self) -> bool:
        return all(outcome.passed for outcome in self.outcomes)

    def run(self) -> list[CheckOutcome]:
        if not self._database_type():
            return self.outcomes
        self._tc_stopped()
        self._destination_not_in_use()
        facts = self._databases()
        self._different_sources(facts)
        self._destination(facts)
        return self.outcomes

    def _database_type(self) -> bool:
        started = time.monotonic()
        types = {db.db_type for db in self.roles.values()}
        if DatabaseType.MSSQL in types or self.job.db_type not in MergeDatabaseType.values:
            self.add(CheckName.DATABASE_TYPE, "", False, MSSQL_REFUSED, started)
            return False
        wrong = [
            f"{role} ({db}) is {db.get_db_type_display()}"
            for role, db in self.roles.items()
            if db.db_type != self.job.db_type
        ]
        if wrong:
            self.add(
                CheckName.DATABASE_TYPE,
                "",
                False,
                f"All three databases must be {self.job.get_db_type_display()}: " + "; ".join(wrong) + ".",
                started,
            )
            return False
        self.add(
            CheckName.DATABASE_TYPE, "", True, f"{self.job.get_db_type_display()} databases can be merged.", started
        )
        return True

    def _assignments(self):
        return (
            PersistentChatAssignment.objects.filter(database__in=list(self.roles.values()))
            .select_related("node", "database")
            .order_by("node__name")
        )

    def _tc_stopped(self) -> None:
        assignments = list(self._assignments())
        if not assignments:
            started = time.monotonic()
            self.add(CheckName.TC_STOPPED, "", True, "No node uses any of the three databases.", started)
        for assignment in assignments:
            started = time.monotonic()
            node = assignment.node
            running = service_running(node, TEXT_CONFERENCE_MANAGER)
            if running is None:
                self.add(
                    CheckName.TC_STOPPED,
                    node.name,
                    False,
                    f"Node agent not reporting: the state of Text Conference Manager on {node} (which uses "
                    f"{assignment.database}) is unknown, so it cannot be known to be stopped. Start the node agent "
                    "or remove the assignment.",
                    started,
                )
            elif running:
                self.add(
                    CheckName.TC_STOPPED,
                    node.name,
                    False,
                    f"Cisco XCP Text Conference Manager is running on {node}, which uses {assignment.database}; "
                    "stop it in Control Center – Feature Services.",
                    started,
                )
            else:
                self.add(
                    CheckName.TC_STOPPED,
                    node.name,
                    True,
                    f"Text Conference Manager is stopped on {node} (uses {assignment.database}).",
                    started,
                )

    def _destination_not_in_use(self) -> None:
        started = time.monotonic()
        users = [a.node for a in self._assignments() if a.database_id == self.job.target_id]
        running = [node.name for node in users if service_running(node, TEXT_CONFERENCE_MANAGER) is not False]
        if running:
            self.add(
                CheckName.DESTINATION_NOT_IN_USE,
                str(self.job.target),
                False,
                f"The destination is assigned to {', '.join(running)}, whose Text Conference Manager is running "
                "or not known to be stopped.",
                started,
            )
        else:
            self.add(
                CheckName.DESTINATION_NOT_IN_USE,
                str(self.job.target),
                True,
                "No running Text Conference Manager uses the destination.",
                started,
            )

    def _databases(self) -> dict[str, pg_engine.DatabaseFacts | None]:
        facts: dict[str, pg_engine.DatabaseFacts | None] = {}
        for role, database in self.roles.items():
            subject = f"{role}: {database}"
            started = time.monotonic()
            results = {r.name: r for r in run_checks(database, privileges=False)}
            reach, login = results[StatusCheckName.REACHABILITY], results[StatusCheckName.CONNECTIVITY]
            if not (reach.passed and login.passed):
                self.add(CheckName.REACHABLE, subject, False, (login if reach.passed else reach).message, started)
                facts[role] = None
                continue
            self.add(CheckName.REACHABLE, subject, True, f"{reach.message} {login.message}", started)
            started = time.monotonic()
            try:
                found = self._inspect(database, "destination" if role.startswith("Destination") else "source")
            except MergeCancelled:
                raise
            except MergeError as exc:
                self.add(CheckName.SCHEMA, subject, False, str(exc), started)
                facts[role] = None
                continue
            facts[role] = found
            if role.startswith("Source"):
                schema = results[StatusCheckName.SCHEMA]
                self.add(CheckName.SCHEMA, subject, schema.passed, schema.message, started)
            elif not found.tc_tables:
                self.add(
                    CheckName.SCHEMA,
                    subject,
                    True,
                    "The destination holds no TC tables yet; the merge installs the TC schema.",
                    started,
                )
            else:
                self.add(
                    CheckName.SCHEMA,
                    subject,
                    not found.schema_problems,
                    " ".join(found.schema_problems) or "Every tc_* table and xcp_sequence has the expected columns.",
                    started,
                )
            started = time.monotonic()
            self.add(
                CheckName.PRIVILEGES,
                subject,
                not found.missing_privileges,
                ("Missing: " + "; ".join(found.missing_privileges) + ".")
                if found.missing_privileges
                else self._privileges_held(role),
                started,
            )
        return facts

    def _privileges_held(self, role: str) -> str:
        if role.startswith("Source") and self.roles[role].pk == self.job.target_id:
            return "SELECT on every TC table; this source is also the destination, so it is written (see below)."
        if role.startswith("Source"):
            return "SELECT on every TC table (the source is only read)."
        extra = " and EXECUTE on dblink_connect/dblink" if self.job.method == "dblink" else ""
        return f"SELECT, INSERT, UPDATE on the TC tables, TEMPORARY tables{extra}."

    def _inspect(self, database: ExternalDatabase, role: str) -> pg_engine.DatabaseFacts:
        if self.job.db_type == MergeDatabaseType.ORACLE:
            from dbmerge.engines import oracle as ora_engine

            return ora_engine.inspect(database, role, self.job.tablespace)
        return pg_engine.inspect(engine_database(database), role, self.job.method, hooks=self.hooks)

    def _different_sources(self, facts) -> None:
        started = time.monotonic()
        one, two = facts.get("Source database 1"), facts.get("Source database 2")
        if one is None or two is None:
            self.add(CheckName.DIFFERENT_SOURCES, "", False, "Not tried: a source could not be inspected.", started)
        elif one.fingerprint == two.fingerprint:
            self.add(
                CheckName.DIFFERENT_SOURCES,
                "",
                False,
                f"{self.job.source_1} and {self.job.source_2} are the same database under two names; "
                "choose the two per-node databases.",
                started,
            )
        else:
            self.add(CheckName.DIFFERENT_SOURCES, "", True, "The two sources are different databases.", started)

    def _destination(self, facts) -> None:
        target = facts.get("Destination database")
        sources = [facts.get("Source database 1"), facts.get("Source database 2")]
        subject = f"Destination database: {self.job.target}"
        started = time.monotonic()
        if target is None or None in sources:
            self.add(CheckName.FREE_SPACE, subject, False, "Not tried: a database could not be inspected.", started)
            return
        if target.rooms == 0:
            message = (
                "The destination holds no room. Cisco requires at least one persistent room in the destination; "
                "imp-admin accepts an empty destination and merges into it."
            )
        else:
            message = (
                f"The destination holds {target.rooms} rooms ({target.persistent_rooms} persistent); they are kept."
            )
        self.add(CheckName.DESTINATION_CONTENT, subject, True, message, started)

        started = time.monotonic()
        for role in ("Source database 1", "Source database 2"):
            if facts[role].fingerprint == target.fingerprint:
                self.add(
                    CheckName.DESTINATION_IS_SOURCE,
                    subject,
                    True,
                    f"{self.job.target.database_name} is both a source and the destination: its rows stay and the "
                    "other source's rows are added to it.",
                    started,
                    warning=True,
                )

        started = time.monotonic()
        incoming = sum(f.tc_bytes for f in sources if f.fingerprint != target.fingerprint)
        if getattr(target, "free_bytes", None) is not None:
            free = target.free_bytes
            self.add(
                CheckName.FREE_SPACE,
                subject,
                free >= incoming,
                f"The sources' TC tables take {_mb(incoming)}; the destination's tablespace has {_mb(free)} free.",
                started,
            )
        else:
            self.add(
                CheckName.FREE_SPACE,
                subject,
                True,
                f"PostgreSQL does not report free disk space to its clients, so free space was not measured. "
                f"The sources' TC tables (with indexes) take {_mb(incoming)}; the destination's data directory "
                f"needs at least that much free, plus as much again for WAL while the merge runs.",
                started,
            )

        started = time.monotonic()
        pair = "|".join(sorted(f.fingerprint for f in sources))
        if pair in target.merged_pairs:
            self.add(
                CheckName.NOT_MERGED_BEFORE,
                subject,
                False,
                f"The destination already holds the merge of these two sources (job {target.merged_pairs[pair]}); "
                "the same merge cannot be applied twice.",
                started,
            )
        else:
            self.add(
                CheckName.NOT_MERGED_BEFORE, subject, True, "The destination holds no merge of these sources.", started
            )
