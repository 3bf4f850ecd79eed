"""A change of a console user's role, permissions, flags or password is in the audit trail."""

from __future__ import annotations

import pytest
from auditlog.models import LogEntry
from django.contrib.auth.models import Group, Permission, User
from django.test import Client

from imp_admin.roles import OPERATOR, READ_ONLY
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


@pytest.fixture
def root(db) -> Client:
    user = User.objects.create_user("root", password=PASSWORD, is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(user)
    client.user = user
    return client


def admin_change_form(user: User, **changes) -> dict:
    data = {
        "username": user.username,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "email": user.email,
        "is_active": "on",
        "groups": [group.pk for group in user.groups.all()],
        "user_permissions": [perm.pk for perm in user.user_permissions.all()],
        "last_login_0": "",
        "last_login_1": "",
        "date_joined_0": user.date_joined.strftime("%Y-%m-%d"),
        "date_joined_1": user.date_joined.strftime("%H:%M:%S"),
    }
    data.update(changes)
    return {key: value for key, value in data.items() if value is not None}


def entries_for(user: User):
    return LogEntry.objects.filter(content_type__model="user", object_pk=str(user.pk)).order_by("pk")


def test_a_role_change_in_django_admin_is_in_the_audit_trail_with_who_whose_what_when(root, read_only):
    before = entries_for(read_only).count()
    operator_role = Group.objects.get(name=OPERATOR)
    response = root.post(
        f"/admin/auth/user/{read_only.pk}/change/", admin_change_form(read_only, groups=[operator_role.pk])
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert list(read_only.groups.values_list("name", flat=True)) == [OPERATOR]

    new = list(entries_for(read_only)[before:])
    assert [entry.changes for entry in new] == [
        {"groups": {"type": "m2m", "operation": "delete", "objects": [READ_ONLY]}},
        {"groups": {"type": "m2m", "operation": "add", "objects": [OPERATOR]}},
    ]
    assert {entry.actor for entry in new} == {root.user}
    assert all(entry.object_repr == "viewer" and entry.timestamp for entry in new)

    trail = root.get("/audit/", {"q": "viewer"}).content.decode()
    assert f"added {OPERATOR}" in trail and f"removed {READ_ONLY}" in trail


def test_staff_superuser_and_permission_changes_are_in_the_audit_trail(root, operator):
    permission = Permission.objects.get(codename="delete_accessattempt")
    root.post(
        f"/admin/auth/user/{operator.pk}/change/",
        admin_change_form(operator, is_staff="on", is_superuser="on", user_permissions=[permission.pk]),
    )
    operator.refresh_from_db()
    assert operator.is_staff and operator.is_superuser
    changes = {field: change for entry in entries_for(operator) for field, change in entry.changes.items()}
    assert changes["is_staff"] == ["False", "True"]
    assert changes["is_superuser"] == ["False", "True"]
    assert changes["user_permissions"]["operation"] == "add"
    assert changes["user_permissions"]["objects"] == [str(permission)]
    assert entries_for(operator).last().actor == root.user


def test_a_password_change_is_recorded_as_changed_and_the_hash_is_never_written(root, operator):
    old_hash = operator.password
    response = root.post(
        f"/admin/auth/user/{operator.pk}/password/",
        {"password1": "a-new-long-password-42", "password2": "a-new-long-password-42", "usable_password": "true"},
    )
    assert response.status_code == 302
    operator.refresh_from_db()
    assert operator.check_password("a-new-long-password-42")
    entry = entries_for(operator).last()
    assert entry.changes == {"password": ["******", "******"]}
    assert entry.actor == root.user
    everything = str(list(LogEntry.objects.values_list("changes", "serialized_data")))
    assert old_hash not in everything and operator.password not in everything


def test_a_role_s_permissions_changed_by_hand_are_in_the_audit_trail_but_the_migrate_sync_is_not(root):
    from imp_admin.roles import sync_role_permissions

    sync_role_permissions()
    assert not LogEntry.objects.filter(content_type__model="group").exists()
    role = Group.objects.get(name=READ_ONLY)
    permission = Permission.objects.get(codename="delete_accessattempt")
    data = {"name": role.name, "permissions": [*role.permissions.values_list("pk", flat=True), permission.pk]}
    assert root.post(f"/admin/auth/group/{role.pk}/change/", data).status_code == 302
    entry = LogEntry.objects.get(content_type__model="group")
    assert entry.changes["permissions"]["objects"] == [str(permission)]
    assert entry.actor == root.user
