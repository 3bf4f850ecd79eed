"""Sign-in lockout on /login/ and /admin/login/: the message, the audit trail, unlocking."""

from __future__ import annotations

import pytest
from auditlog.models import LogEntry
from axes.models import AccessAttempt
from django.conf import settings
from django.contrib.auth.models import User
from django.test import Client

from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db

LOCKED = "Too many failed sign-ins for <strong>{}</strong>: after 5\n    in a row, sign-in is locked for 30 minutes."


def fail_to_sign_in(client: Client, url: str, username: str, times: int) -> list[int]:
    return [client.post(url, {"username": username, "password": "wrong-password"}).status_code for _ in range(times)]


def lockout_entries(username: str):
    return LogEntry.objects.filter(object_repr=username, changes__has_key="sign-in").order_by("pk")


def test_five_wrong_passwords_lock_the_console_login_and_the_right_one_is_refused(operator):
    client = Client()
    assert settings.AXES_FAILURE_LIMIT == 5
    statuses = fail_to_sign_in(client, "/login/", "operator", 5)
    assert statuses == [200, 200, 200, 200, 429]  # the form's error four times, then the lockout page

    response = client.post("/login/", {"username": "operator", "password": PASSWORD})
    assert response.status_code == 429
    page = response.content.decode()
    assert LOCKED.format("operator") in page
    assert "ask a super\n    administrator to unlock it" in page
    assert "_auth_user_id" not in client.session
    assert client.get("/").status_code == 302  # still not signed in

    entry = lockout_entries("operator").get()  # one entry for the lockout, none for refusals after it
    assert entry.changes == {"sign-in": ["allowed", "locked out"]}
    assert entry.content_type.model == "user" and entry.object_pk == str(operator.pk)
    assert entry.actor is None
    assert entry.additional_data == {"ip_address": "127.0.0.1", "path": "/login/", "failures": 5}


def test_the_django_admin_login_is_locked_out_the_same_way(db):
    User.objects.create_user("staffer", password=PASSWORD, is_staff=True, is_superuser=True)
    client = Client()
    assert fail_to_sign_in(client, "/admin/login/", "staffer", 5)[-1] == 429
    response = client.post("/admin/login/?next=/admin/", {"username": "staffer", "password": PASSWORD})
    assert response.status_code == 429
    assert LOCKED.format("staffer") in response.content.decode()
    assert client.get("/admin/").status_code == 302
    assert lockout_entries("staffer").get().additional_data["path"] == "/admin/login/"


def test_a_right_password_before_the_limit_signs_in_and_clears_the_count(operator):
    client = Client()
    fail_to_sign_in(client, "/login/", "operator", 4)
    response = client.post("/login/", {"username": "operator", "password": PASSWORD})
    assert response.status_code == 302 and response["Location"] == "/"
    assert not AccessAttempt.objects.filter(username="operator").exists()
    assert not lockout_entries("operator").exists()


def test_one_address_guessing_user_names_is_locked_out(db):
    client = Client()
    statuses = [
        client.post("/login/", {"username": f"guess{i}", "password": "wrong-password"}).status_code for i in range(5)
    ]
    assert statuses[-1] == 429
    assert (
        "Too many failed sign-ins" in client.post("/login/", {"username": "guess9", "password": "x"}).content.decode()
    )


@pytest.fixture
def locked_victim(db):
    """Another operator's account, locked out by wrong passwords."""
    victim = User.objects.create_user("victim", password=PASSWORD)
    fail_to_sign_in(Client(), "/login/", "victim", 5)
    assert Client().post("/login/", {"username": "victim", "password": PASSWORD}).status_code == 429
    return victim


def test_a_super_administrator_unlocks_from_the_locked_out_page(locked_victim, super_client, super_admin):
    page = super_client.get("/lockouts/").content.decode()
    assert "user name <strong>victim</strong>" in page and "Unlock" in page

    response = super_client.post("/lockouts/", {"username": "victim"}, follow=True)
    assert "User name victim can sign in again." in response.content.decode()
    assert "user name <strong>victim</strong>" not in response.content.decode()
    assert not AccessAttempt.objects.filter(username="victim").exists()

    unlocked = lockout_entries("victim").last()
    assert unlocked.changes == {"sign-in": ["locked out", "allowed"]}
    assert unlocked.actor == super_admin
    assert Client().post("/login/", {"username": "victim", "password": PASSWORD}).status_code == 302

    trail = super_client.get("/audit/", {"q": "victim"}).content.decode()
    assert "locked out → allowed" in trail and "allowed → locked out" in trail


@pytest.mark.parametrize("persona", ["operator", "read_only"])
def test_operators_and_read_only_users_see_lockouts_but_cannot_unlock(locked_victim, personas, persona):
    client = personas[persona]
    page = client.get("/lockouts/").content.decode()
    assert "user name <strong>victim</strong>" in page
    assert "Unlock</button>" not in page
    assert client.post("/lockouts/", {"username": "victim"}).status_code == 403
    assert AccessAttempt.objects.filter(username="victim").exists()
    assert Client().post("/login/", {"username": "victim", "password": PASSWORD}).status_code == 429


def test_an_anonymous_visitor_is_sent_to_login_from_the_locked_out_page(locked_victim, anon_client):
    assert anon_client.post("/lockouts/", {"username": "victim"})["Location"].startswith("/login/")
    assert AccessAttempt.objects.filter(username="victim").exists()


def test_deleting_the_attempt_in_django_admin_unlocks_and_is_audited(locked_victim):
    root = User.objects.create_user("root", password=PASSWORD, is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(root)
    attempt = AccessAttempt.objects.get(username="victim")
    response = client.post(f"/admin/axes/accessattempt/{attempt.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not AccessAttempt.objects.exists()
    unlocked = lockout_entries("victim").last()
    assert unlocked.changes == {"sign-in": ["locked out", "allowed"]} and unlocked.actor == root
    assert Client().post("/login/", {"username": "victim", "password": PASSWORD}).status_code == 302
