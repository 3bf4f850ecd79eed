"""End users' passwords: SCRAM keys verified by scramp's own client, password checks, the
sign-in throttle (real Redis) and the config DB holding no password."""

from __future__ import annotations

import uuid

import pytest
from auditlog.models import LogEntry
from django.core.exceptions import ValidationError
from django.db import connection
from scramp import ScramClient, ScramException, ScramMechanism

from topology import credentials
from topology.models import EndUser, ScramCredential, ScramMechanismName

pytestmark = [pytest.mark.configdb, pytest.mark.django_db]

RAW = "Andy-s3cret-passphrase"


@pytest.fixture(autouse=True)
def throttle(settings):
    """A Redis key prefix of the test's own, and small limits."""
    settings.CHAT_BUS_PREFIX = f"imp-chat-test-{uuid.uuid4().hex[:10]}"
    settings.SIGN_IN_FAILURES_PER_USER = 3
    settings.SIGN_IN_FAILURES_PER_ADDRESS = 5
    settings.SIGN_IN_THROTTLE_SECONDS = 60
    return settings


@pytest.fixture
def andy() -> EndUser:
    user = EndUser.objects.create(user_id="andy", jid="andy@example.com")
    credentials.set_password(user, RAW)
    return user


def scram_exchange(username: str, password: str, mechanism: str) -> None:
    """A full SCRAM exchange between scramp's client and a server fed by our keys."""
    server = ScramMechanism(mechanism).make_server(credentials.scram_auth_fn(mechanism))
    client = ScramClient([mechanism], username, password)
    server.set_client_first(client.get_client_first())
    client.set_server_first(server.get_server_first())
    server.set_client_final(client.get_client_final())
    client.set_server_final(server.get_server_final())


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-256", "SCRAM-SHA-1"])
def test_stored_scram_keys_verify_with_scramps_client_for_both_mechanisms(andy, mechanism):
    salt, stored_key, server_key, iterations = credentials.scram_credentials("andy", mechanism)
    assert iterations >= 4096 and len(salt) >= 16
    assert credentials.scram_credentials("andy@example.com", mechanism) == (salt, stored_key, server_key, iterations)
    scram_exchange("andy", RAW, mechanism)  # raises if the server's or the client's proof is wrong


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-256", "SCRAM-SHA-1"])
def test_a_wrong_password_fails_the_scram_exchange(andy, mechanism):
    with pytest.raises(ScramException):
        scram_exchange("andy", "not-the-password", mechanism)


def test_an_unknown_user_gets_decoy_keys_that_fail_like_a_wrong_password(andy):
    assert credentials.scram_credentials("nobody", "SCRAM-SHA-256") is None
    first = credentials.scram_auth_fn("SCRAM-SHA-256")("nobody")
    second = credentials.scram_auth_fn("SCRAM-SHA-256")("nobody")
    assert first[0] == second[0] and first[3] >= 4096
    with pytest.raises(ScramException):
        scram_exchange("nobody", RAW, "SCRAM-SHA-256")


def test_check_password_accepts_only_the_password(andy):
    assert credentials.check_password(andy, RAW)
    assert credentials.check_password("andy@example.com", RAW)
    assert not credentials.check_password(andy, RAW.upper())
    assert not credentials.check_password(andy, "")
    assert not credentials.check_password("nobody", RAW)


def test_a_user_without_a_password_cannot_sign_in():
    bob = EndUser.objects.create(user_id="bob", jid="bob@example.com")
    assert not bob.has_password
    assert credentials.scram_credentials(bob, "SCRAM-SHA-1") is None
    with pytest.raises(credentials.WrongCredentials, match="Wrong user ID or password"):
        credentials.authenticate("bob", "anything-at-all", "127.0.0.1")


def test_a_new_password_replaces_the_old_keys(andy):
    credentials.set_password(andy, "a-brand-new-password")
    assert ScramCredential.objects.filter(user=andy).count() == 2
    assert not credentials.check_password(andy, RAW)
    assert credentials.check_password(andy, "a-brand-new-password")


@pytest.mark.parametrize(
    ("raw", "message"),
    [("short", "at least 8 characters"), ("x" * 1025, "at most 1024"), ("bad\u0007password", "SASLprep")],
)
def test_a_password_that_cannot_be_used_is_refused_with_the_reason(raw, message):
    user = EndUser.objects.create(user_id="cat", jid="cat@example.com")
    with pytest.raises(ValidationError, match=message):
        credentials.set_password(user, raw)
    assert not ScramCredential.objects.filter(user=user).exists()


def test_wrong_passwords_are_counted_then_the_user_is_throttled_even_with_the_right_one(andy):
    for _ in range(3):
        with pytest.raises(credentials.WrongCredentials):
            credentials.authenticate("andy", "wrong-password", "192.0.2.7")
    with pytest.raises(credentials.SignInThrottled, match=r"Too many failed sign-ins for andy; try again in \d+ s"):
        credentials.authenticate("andy", RAW, "192.0.2.8")
    andy.refresh_from_db()
    assert andy.failed_sign_ins == 3
    assert andy.last_failed_sign_in_source == "192.0.2.7"
    assert andy.last_failed_sign_in_at is not None
    # An administrator setting a new password lifts the user's throttle.
    credentials.set_password(andy, "the-reset-password")
    assert credentials.authenticate("andy", "the-reset-password", "192.0.2.8") == andy


def test_a_source_address_is_throttled_across_users(andy):
    EndUser.objects.create(user_id="bob", jid="bob@example.com")
    for name in ("bob", "nobody", "bob", "nobody", "carol"):
        with pytest.raises(credentials.WrongCredentials):
            credentials.authenticate(name, "wrong-password", "198.51.100.9")
    with pytest.raises(credentials.SignInThrottled, match=r"Too many failed sign-ins from 198\.51\.100\.9"):
        credentials.authenticate("andy", RAW, "198.51.100.9")
    # Another address is not affected.
    assert credentials.authenticate("andy", RAW, "198.51.100.10") == andy


def test_a_successful_sign_in_resets_the_users_counter(andy):
    for _ in range(2):
        with pytest.raises(credentials.WrongCredentials):
            credentials.authenticate("andy", "wrong-password", "192.0.2.7")
    credentials.authenticate("andy", RAW, "192.0.2.7")
    for _ in range(2):
        with pytest.raises(credentials.WrongCredentials):
            credentials.authenticate("andy", "wrong-password", "192.0.2.7")
    assert credentials.authenticate("andy", RAW, "192.0.2.7") == andy
    andy.refresh_from_db()
    assert andy.last_sign_in_at is not None and andy.failed_sign_ins == 4


def test_the_throttle_is_shared_through_redis_by_every_process(andy, throttle):
    # Two node agents share nothing but Redis and the config DB: a failure counted through one
    # Redis connection is seen through a fresh one.
    credentials._redis.cache_clear()
    for _ in range(3):
        credentials.record_failure("andy", "192.0.2.1")
    credentials._redis.cache_clear()
    with pytest.raises(credentials.SignInThrottled):
        credentials.check_allowed("andy", "192.0.2.99")


def test_sign_in_fails_closed_when_redis_cannot_be_reached(andy, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    with pytest.raises(credentials.SignInUnavailable, match="sign-in throttle cannot be reached"):
        credentials.authenticate("andy", RAW, "127.0.0.1")


def test_setting_a_password_is_audited_without_the_secret(andy):
    entry = LogEntry.objects.get_for_object(andy).latest("timestamp")
    assert "password_set_at" in entry.changes_dict


def test_the_config_db_holds_no_password(andy):
    credentials.set_password(andy, RAW)
    with pytest.raises(credentials.WrongCredentials):
        credentials.authenticate("andy", "Andy-wrong-passphrase", "127.0.0.1")
    tables = [EndUser._meta.db_table, ScramCredential._meta.db_table, LogEntry._meta.db_table]
    needles = [RAW, RAW.encode(), RAW.encode().hex(), "Andy-wrong-passphrase"]
    rows_seen = 0
    with connection.cursor() as cursor:
        for table in tables:
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")  # noqa: S608 (table names from models)
            for row in cursor.fetchall():
                rows_seen += 1
                for value in row:
                    text = bytes(value).hex() if isinstance(value, bytes | memoryview) else str(value)
                    raw_bytes = bytes(value) if isinstance(value, bytes | memoryview) else b""
                    for needle in needles:
                        assert (needle not in raw_bytes) if isinstance(needle, bytes) else (needle not in text)
    assert rows_seen >= 4  # the user, two keys, and audit entries were all searched
    assert ScramCredential.objects.filter(user=andy, mechanism=ScramMechanismName.SHA_1).exists()
