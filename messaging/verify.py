"""Verify High Availability settings: for every redundancy group, one row per check with
pass/fail, the reason and the page that fixes it.

Database checks use the results recorded on each external database. The page's Verify
button queues the checks of every assigned database on a Celery worker
(``request_database_checks``) and shows the results as they arrive; ``live=True`` runs them
inline first (``manage.py verify_ha`` does).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Prefetch
from django.urls import reverse

from messaging.dbcheck import record, run_checks
from messaging.models import (
    STATUS_CHECKS,
    ChatSettings,
    ExternalDatabase,
    ExternalDatabaseCheck,
    PersistentChatAssignment,
    StatusCheckName,
)
from messaging.tasks import check_in_progress, request_check
from topology.certificates import certificate_problems
from topology.models import Node, RedundancyGroup
from topology.observed import TEXT_CONFERENCE_MANAGER, services_running


@dataclass(frozen=True)
class VerifyRow:
    group: str
    check: str
    passed: bool
    reason: str
    fix_url: str
    checking: bool = False  # a check of the row's database is queued or running on the worker
    warning: bool = False  # worth fixing, but high availability works (a node's TLS certificate)

    @property
    def failed(self) -> bool:
        return not self.passed and not self.warning


def assigned_databases() -> list[ExternalDatabase]:
    """Every external database assigned to a chat node, each once."""
    return list(ExternalDatabase.objects.filter(assignments__isnull=False).distinct())


def request_database_checks() -> int:
    """Queue the status checks of every assigned database on the worker (the Verify button);
    return how many are queued or already running."""
    databases = assigned_databases()
    for database in databases:
        request_check(database)
    return len(databases)


def verify_ha(live: bool = False) -> list[VerifyRow]:
    """Every check of every redundancy group, in the order an administrator fixes them."""
    groups = list(
        RedundancyGroup.objects.select_related("cluster").prefetch_related(
            Prefetch(
                "members", queryset=Node.objects.select_related("cluster", "certificate").order_by("group_position")
            ),
        )
    )
    assignments = {a.node_id: a.database for a in PersistentChatAssignment.objects.select_related("database")}
    databases = {db.pk: db for db in assignments.values() if db is not None}
    if live:
        for database in databases.values():
            record(database, run_checks(database, privileges=False))
    results: dict[int, dict[str, ExternalDatabaseCheck]] = {}
    for check in ExternalDatabaseCheck.objects.filter(database__in=databases.values()):
        results.setdefault(check.database_id, {})[check.name] = check
    settings_by_cluster = {
        s.cluster_id: s for s in ChatSettings.objects.filter(cluster__in={g.cluster_id for g in groups})
    }

    nodes = {node.pk: node for group in groups for node in group.members.all()}
    tc_running = services_running(list(nodes.values()), TEXT_CONFERENCE_MANAGER)
    rows: list[VerifyRow] = []
    for group in groups:
        rows.extend(_group_rows(group, assignments, results, settings_by_cluster, tc_running))
    return rows


def _group_rows(group, assignments, results, settings_by_cluster, tc_running) -> list[VerifyRow]:
    rows: list[VerifyRow] = []
    name = str(group)
    group_url = reverse("topology:group_edit", args=[group.pk])
    settings_url = reverse("messaging:chatsettings_edit") + f"?cluster={group.cluster_id}"

    def add(check: str, passed: bool, reason: str, url: str, checking: bool = False) -> None:
        rows.append(VerifyRow(name, check, passed, reason, url, checking))

    add(
        "High availability enabled",
        group.ha_enabled,
        "Enable High Availability is on." if group.ha_enabled else "Enable High Availability is off for this group.",
        group_url,
    )
    settings = settings_by_cluster.get(group.cluster_id) or ChatSettings(cluster=group.cluster)
    add(
        "Persistent chat enabled",
        settings.enable_persistent_chat,
        f"Persistent chat is {'on' if settings.enable_persistent_chat else 'off'} in cluster {group.cluster}.",
        settings_url,
    )
    members = list(group.members.all())
    assigned = {node: assignments.get(node.pk) for node in members}
    missing = [str(node) for node, db in assigned.items() if db is None]
    if len(members) < 2:
        missing.append("Server 2 (the group has one node)")
    add(
        "External database assigned to both nodes",
        not missing,
        f"Unassigned: {', '.join(missing)}." if missing else "Both nodes have an external database.",
        settings_url,
    )
    distinct = {db.pk: db for db in assigned.values() if db is not None}
    same = len(distinct) == 1 and not missing
    if len(distinct) > 1:
        used = ", ".join(f"{n}: {db}" for n, db in assigned.items() if db)
        reason = f"The nodes use different databases ({used}); with high availability both must use the same one."
    elif same:
        reason = f"Both nodes use {next(iter(distinct.values()))}."
    else:
        reason = "Not both nodes are assigned."
    add("Both nodes use the same database", same, reason, settings_url)

    database = next(iter(distinct.values())) if len(distinct) == 1 else None
    for check_name in STATUS_CHECKS:
        label = StatusCheckName(check_name).label
        if database is None:
            add(label, False, "Not checked: the group has no single external database.", settings_url)
            continue
        found = results.get(database.pk, {}).get(check_name)
        url = database.get_absolute_url()
        checking = check_in_progress(database)
        if found is None and checking:
            reason = f"{database} is being checked on the worker; the result appears here when it finishes."
            add(label, False, reason, url, checking=True)
        elif found is None:
            since = " since its connection settings changed" if database.status_note else " yet"
            add(label, False, f"{database} has not been checked{since}; run Verify, or Check now on its page.", url)
        else:
            add(label, found.passed, f"{database}: {found.message}", url, checking=checking)

    control_center = reverse("topology:controlcenter_feature")
    # The group's own nodes: another group's Text Conference Manager does not decide this one's HA.
    for node in members:
        running = tc_running[node.pk]
        reason = {
            True: "Running.",
            False: "Not running; start it in Control Center – Feature Services.",
            None: "Unknown — node agent not reporting.",
        }[running]
        add(f"{TEXT_CONFERENCE_MANAGER} on {node}", running is True, reason, control_center)
    # Warnings only: a node whose XMPP certificate expired or does not name it still fails over,
    # but XMPP clients refuse to connect to it.
    for node in members:
        problems = certificate_problems(node)
        if problems:
            reason = " ".join(problems)
            rows.append(
                VerifyRow(name, f"TLS certificate of {node}", False, reason, node.get_absolute_url(), warning=True)
            )
    return rows
