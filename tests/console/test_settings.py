"""Production settings pass Django's deployment checks; secrets come from *_FILE too."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parents[2]


def run_manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )


def production_env(tmp_path: Path) -> dict[str, str]:
    keep = {"PATH", "HOME", "LANG"}
    env = {key: value for key, value in os.environ.items() if key in keep}
    (tmp_path / "secret").write_text("x" * 20 + "production-secret-key-with-enough-entropy-0123456789")
    (tmp_path / "fernet").write_text(Fernet.generate_key().decode())
    env.update(
        SECRET_KEY_FILE=str(tmp_path / "secret"),
        IMP_SECRETS_KEY_FILE=str(tmp_path / "fernet"),
        IMP_VAR_DIR=str(tmp_path),
    )
    return env


def test_check_deploy_is_clean_with_production_settings(tmp_path):
    result = run_manage("check", "--deploy", "--fail-level", "WARNING", env=production_env(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout


def test_without_keys_in_the_environment_random_ones_are_kept_in_the_var_dir(tmp_path):
    env = production_env(tmp_path)
    del env["SECRET_KEY_FILE"], env["IMP_SECRETS_KEY_FILE"]
    show = "from django.conf import settings; print(settings.SECRET_KEY); print(settings.SECRETS_KEYS[0])"
    first = run_manage("shell", "-v", "0", "-c", show, env=env)
    second = run_manage("shell", "-v", "0", "-c", show, env=env)
    assert first.returncode == 0, first.stderr
    assert first.stdout == second.stdout  # created once, then reused
    secret_key, fernet_key = first.stdout.split()
    assert len(secret_key) >= 50
    Fernet(fernet_key.encode())  # a valid Fernet key
    for name in ("secret_key", "imp_secrets_key"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o600


def test_an_unwritable_var_dir_without_keys_is_a_clear_error(tmp_path):
    env = production_env(tmp_path)
    del env["SECRET_KEY_FILE"]
    env["IMP_VAR_DIR"] = "/proc/imp-admin-cannot-write-here"
    result = run_manage("check", env=env)
    assert result.returncode != 0
    assert "Set SECRET_KEY in the environment, or make /proc/imp-admin-cannot-write-here writable" in result.stderr


def test_a_malformed_secrets_key_is_a_clear_error(settings):
    from django.core.exceptions import ImproperlyConfigured

    from imp_admin import crypto

    settings.SECRETS_KEYS = ["not-a-fernet-key"]
    with pytest.raises(ImproperlyConfigured, match="is not a Fernet key"):
        crypto.encrypt("x")


def test_stored_secrets_round_trip_and_are_not_plaintext(settings):
    from imp_admin import crypto

    token = crypto.encrypt("tc-password")
    assert "tc-password" not in token
    assert crypto.decrypt(token) == "tc-password"


def test_a_secret_from_an_old_key_is_still_readable_after_rotation(settings):
    from imp_admin import crypto

    old = settings.SECRETS_KEYS[0]
    token = crypto.encrypt("tc-password")
    settings.SECRETS_KEYS = [Fernet.generate_key().decode(), old]
    assert crypto.decrypt(token) == "tc-password"


def shown_on_a_postgresql_config_db(tmp_path, names: tuple[str, ...], first: str = "") -> dict[str, str]:
    """What ``SHOW name`` answers in a session of the console's settings on a PostgreSQL
    config DB, after running ``first`` (Python) in that process."""
    env = production_env(tmp_path)
    env["DATABASE_URL"] = "postgres://postgres@127.0.0.1:5432/postgres?connect_timeout=5"
    script = (
        f"{first}\n"
        "from django.db import connection\n"
        "with connection.cursor() as cursor:\n"
        f"    for name in {names!r}:\n"
        "        cursor.execute('SHOW ' + name)\n"
        "        print(name, cursor.fetchone()[0])\n"
    )
    result = run_manage("shell", "-c", script, env=env)
    assert result.returncode == 0, result.stderr
    rows = [line.split() for line in result.stdout.splitlines()]
    return {row[0]: row[1] for row in rows if len(row) == 2 and row[0] in names}


def test_a_postgresql_config_db_ends_the_session_of_a_vanished_client_within_seconds(tmp_path):
    """A node agent cut off in the middle of a config-DB transaction must not keep its row locks
    for hours: the server probes a silent client after 2 s and gives up on unacknowledged data
    after 5 s (tests/partition proves the effect; this reads what the server was told)."""
    names = ("tcp_keepalives_idle", "tcp_keepalives_interval", "tcp_keepalives_count", "tcp_user_timeout")
    assert shown_on_a_postgresql_config_db(tmp_path, names) == {
        "tcp_keepalives_idle": "2",
        "tcp_keepalives_interval": "1",
        "tcp_keepalives_count": "3",
        "tcp_user_timeout": "5000",
    }


def test_a_node_agent_on_a_postgresql_config_db_has_its_idle_transactions_ended(tmp_path):
    """An agent cut off in the middle of a transaction, behind a proxy that keeps the TCP
    connection up, must not hold its group's row lock: the server ends the transaction."""
    first = "from topology.agent.db import end_idle_transactions; end_idle_transactions()"
    shown = shown_on_a_postgresql_config_db(tmp_path, ("idle_in_transaction_session_timeout",), first)
    assert shown == {"idle_in_transaction_session_timeout": "5s"}
