"""Setting end users' chat passwords: the user's page (every persona) and the Django admin's
one-time passwords bulk action. The password is never rendered back nor stored."""

from __future__ import annotations

import re
import uuid

import pytest
from auditlog.models import LogEntry
from django.db import connection
from django.test import Client

from topology import credentials
from topology.models import EndUser, ScramCredential

pytestmark = [pytest.mark.configdb, pytest.mark.django_db]

RAW = "Bob-new-passphrase-1"


@pytest.fixture(autouse=True)
def own_throttle(settings):
    settings.CHAT_BUS_PREFIX = f"imp-chat-test-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def bob(build) -> EndUser:
    node = build.node("imp-1a", build.cluster())
    return EndUser.objects.create(user_id="bob", jid="bob@example.com", assigned_node=node)


def url(user: EndUser) -> str:
    return f"/system/users/{user.pk}/password/"


def assert_no_secret_in_db(*secrets: str) -> None:
    """Search every column of the end users, their SCRAM keys and the audit trail."""
    tables = [EndUser._meta.db_table, ScramCredential._meta.db_table, LogEntry._meta.db_table]
    with connection.cursor() as cursor:
        for table in tables:
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")  # noqa: S608 (model tables)
            for row in cursor.fetchall():
                for value in row:
                    data = bytes(value) if isinstance(value, bytes | memoryview) else str(value).encode()
                    for secret in secrets:
                        assert secret.encode() not in data, f"{secret!r} found in {table}"


def test_anonymous_visitors_are_sent_to_the_login_page(bob, anon_client):
    response = anon_client.get(url(bob))
    assert response.status_code == 302 and "/login/" in response["Location"]
    assert anon_client.post(url(bob), {"password": RAW, "confirmation": RAW}).status_code == 302
    assert not ScramCredential.objects.exists()


@pytest.mark.parametrize("persona", ["read_only", "operator"])
def test_read_only_users_and_operators_see_the_page_but_cannot_set_a_password(bob, personas, persona):
    client = personas[persona]
    page = client.get(url(bob))
    assert page.status_code == 200
    assert "Set Password of bob" in page.content.decode()
    assert 'type="submit"' not in page.content.decode()
    assert "Set Password</a>" not in client.get(f"/system/users/{bob.pk}/").content.decode()
    assert client.post(url(bob), {"password": RAW, "confirmation": RAW}).status_code == 403
    bob.refresh_from_db()
    assert not bob.has_password and not ScramCredential.objects.exists()


def test_a_super_administrator_sets_the_password_and_the_audit_trail_says_when_not_what(bob, super_client, super_admin):
    page = super_client.get(f"/system/users/{bob.pk}/").content.decode()
    assert "Not set: the user cannot sign in" in page and "Set Password</a>" in page
    response = super_client.post(url(bob), {"password": RAW, "confirmation": RAW}, follow=True)
    html = response.content.decode()
    assert response.redirect_chain[-1][0] == f"/system/users/{bob.pk}/"
    assert "Password of bob set." in html
    bob.refresh_from_db()
    assert bob.has_password and f"Set {bob.password_set_at:%Y-%m-%d %H:%M:%S} UTC" in html
    assert credentials.check_password(bob, RAW)
    entry = LogEntry.objects.get_for_object(bob).filter(actor=super_admin).latest("timestamp")
    assert "password_set_at" in entry.changes_dict
    assert RAW not in html
    assert_no_secret_in_db(RAW)


@pytest.mark.parametrize(
    ("password", "confirmation", "message"),
    [
        (RAW, RAW + "x", "The two passwords differ; type the same password twice."),
        ("short", "short", "The password must have at least 8 characters."),
        ("", "", "This field is required."),
    ],
)
def test_a_wrong_entry_says_what_is_wrong_and_never_shows_the_password_again(
    bob, super_client, password, confirmation, message
):
    response = super_client.post(url(bob), {"password": password, "confirmation": confirmation})
    html = response.content.decode()
    assert response.status_code == 200
    assert message in html
    assert not re.search(r'value="[^"]+"[^>]*type="password"|type="password"[^>]*value="[^"]+"', html)
    if password:
        assert f'value="{password}"' not in html
    bob.refresh_from_db()
    assert not bob.has_password


def test_setting_a_password_needs_the_csrf_token(bob, super_admin):
    client = Client(enforce_csrf_checks=True)
    client.force_login(super_admin)
    assert client.post(url(bob), {"password": RAW, "confirmation": RAW}).status_code == 403
    assert not ScramCredential.objects.exists()


def test_the_users_page_shows_failed_sign_ins_and_the_last_ones_time_and_source(bob, read_only_client):
    credentials.set_password(bob, RAW)
    for _ in range(2):
        with pytest.raises(credentials.WrongCredentials):
            credentials.authenticate("bob", "a-wrong-guess", "203.0.113.5")
    html = read_only_client.get(f"/system/users/{bob.pk}/").content.decode()
    bob.refresh_from_db()
    assert re.search(r"Failed sign-ins</dt>\s*<dd[^>]*>2</dd>", html)
    assert f"{bob.last_failed_sign_in_at:%Y-%m-%d %H:%M:%S} UTC from 203.0.113.5" in html
    assert "a-wrong-guess" not in html


# --- Django admin: one-time passwords -----------------------------------------------------


@pytest.fixture
def staff(personas, super_admin, operator, read_only):
    for user in (super_admin, operator, read_only):
        user.is_staff = True
        user.save()
    return personas


def run_action(client: Client, *users: EndUser):
    return client.post(
        "/admin/topology/enduser/",
        {"action": "generate_one_time_passwords", "_selected_action": [user.pk for user in users]},
    )


def test_the_bulk_action_shows_each_new_password_once_and_stores_only_keys(bob, staff):
    andy = EndUser.objects.create(user_id="andy", jid="andy@example.com")
    response = run_action(staff["super_admin"], andy, bob)
    html = response.content.decode()
    assert response.status_code == 200
    assert "These passwords are shown this once." in html
    assert "no-store" in response["Cache-Control"]
    issued = dict(re.findall(r"<tr><td>(\w+)</td><td>[^<]+</td><td><code>([^<]+)</code></td></tr>", html))
    assert set(issued) == {"andy", "bob"} and issued["andy"] != issued["bob"]
    for user_id, password in issued.items():
        assert len(password) >= 16
        assert credentials.check_password(user_id, password)
    assert_no_secret_in_db(*issued.values())
    # The list page afterwards shows when the passwords were set, never the passwords.
    listing = staff["super_admin"].get("/admin/topology/enduser/").content.decode()
    assert not any(password in listing for password in issued.values())


@pytest.mark.parametrize("persona", ["read_only", "operator"])
def test_the_bulk_action_is_not_offered_to_read_only_users_or_operators(bob, staff, persona):
    client = staff[persona]
    listing = client.get("/admin/topology/enduser/")
    assert listing.status_code == 200
    assert "generate_one_time_passwords" not in listing.content.decode()
    response = run_action(client, bob)
    assert "These passwords are shown this once." not in response.content.decode()
    bob.refresh_from_db()
    assert not bob.has_password


def test_the_bulk_action_sends_anonymous_visitors_to_the_login_page(bob, anon_client):
    response = run_action(anon_client, bob)
    assert response.status_code == 302 and "login/" in response["Location"]
    bob.refresh_from_db()
    assert not bob.has_password
