"""The console's three roles and the permissions each holds.

The groups are created by a migration; their permissions are (re)synchronised after every
``migrate`` because Django creates model permissions only once all migrations have run.
"""

from __future__ import annotations

from auditlog.context import disable_auditlog
from django.contrib.auth.models import Group, Permission
from django.db.models import Q

SUPER_ADMINISTRATOR = "Super Administrator"
OPERATOR = "Operator"
READ_ONLY = "Read-only"
ROLES = (SUPER_ADMINISTRATOR, OPERATOR, READ_ONLY)

CONSOLE_APPS = ("topology", "messaging", "dbmerge", "auditlog", "axes")

# What an operator may do beyond viewing: control services, fail over and fall back,
# change chat settings and external databases, run merge jobs. Topology and user
# changes stay with the super administrator.
OPERATOR_PERMISSIONS = (
    "topology.control_services",
    "topology.run_server_action",
    "topology.change_serviceparameters",
    "messaging.change_chatsettings",
    "messaging.add_externaldatabase",
    "messaging.change_externaldatabase",
    "messaging.delete_externaldatabase",
    "messaging.check_externaldatabase",
    "messaging.add_chatalias",
    "messaging.change_chatalias",
    "messaging.delete_chatalias",
    "messaging.add_groupchatadministrator",
    "messaging.change_groupchatadministrator",
    "messaging.delete_groupchatadministrator",
    "dbmerge.add_mergejob",
    "dbmerge.change_mergejob",
)


def _perms(codes) -> Q:
    query = Q(pk__in=[])
    for code in codes:
        app_label, codename = code.split(".")
        query |= Q(content_type__app_label=app_label, codename=codename)
    return query


def sync_role_permissions() -> None:
    """Give each role group exactly the permissions its role allows.

    Run after every ``migrate``; it restates what this module says rather than a change made by
    someone, so it is left out of the audit trail.
    """
    with disable_auditlog():
        _sync_role_permissions()


def _sync_role_permissions() -> None:
    console = Permission.objects.filter(content_type__app_label__in=CONSOLE_APPS)
    view = console.filter(codename__startswith="view_")
    groups = {name: Group.objects.get_or_create(name=name)[0] for name in ROLES}
    groups[READ_ONLY].permissions.set(view)
    groups[OPERATOR].permissions.set(view | Permission.objects.filter(_perms(OPERATOR_PERMISSIONS)))
    groups[SUPER_ADMINISTRATOR].permissions.set(Permission.objects.all())
