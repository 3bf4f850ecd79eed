"""The config DB, its -wal and -shm files and IMP_VAR_DIR are private to their owner from the start."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.console.test_settings import ROOT, production_env

# Opens the config DB, writes in WAL mode, and prints the modes while the -wal/-shm files exist.
SHOW_MODES = """
import os
from django.conf import settings
from django.db import connection
with connection.cursor() as cursor:
    cursor.execute("CREATE TABLE IF NOT EXISTS probe (x integer)")
    cursor.execute("INSERT INTO probe VALUES (1)")
    path = settings.DATABASES["default"]["NAME"]
    for name in (settings.VAR_DIR, path, path + "-wal", path + "-shm"):
        print(oct(os.stat(name).st_mode & 0o777))
"""


def modes_under_umask(env: dict, umask: int) -> list[str]:
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-v", "0", "-c", SHOW_MODES],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=lambda: os.umask(umask),  # the child's umask is the point
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


def test_a_new_var_dir_and_config_db_are_created_0700_and_0600_whatever_the_umask(tmp_path):
    for umask in (0o022, 0o000):
        var_dir = tmp_path / f"var-{umask:o}" / "imp"
        env = {**production_env(tmp_path), "IMP_VAR_DIR": str(var_dir)}
        assert modes_under_umask(env, umask) == ["0o700", "0o600", "0o600", "0o600"]
        assert (var_dir / "imp-admin.sqlite3").exists()


def test_an_existing_world_readable_config_db_and_var_dir_are_tightened(tmp_path):
    var_dir = tmp_path / "old"
    var_dir.mkdir(mode=0o755)
    var_dir.chmod(0o755)
    database = Path(var_dir / "imp-admin.sqlite3")
    database.touch()
    database.chmod(0o644)
    env = {**production_env(tmp_path), "IMP_VAR_DIR": str(var_dir)}
    assert modes_under_umask(env, 0o022) == ["0o700", "0o600", "0o600", "0o600"]
