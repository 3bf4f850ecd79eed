"""Django's SQLite backend, keeping the config DB private to its owner.

The config DB holds session keys and password hashes. SQLite creates the ``-wal`` and
``-shm`` files with the permissions of the database file, so creating that file mode 0600
before SQLite opens it makes all three 0600 from the start, whatever the process's umask.
A file left wider by an older release is tightened on the next connection.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from django.db.backends.sqlite3 import base

PRIVATE_MODE = 0o600


def make_private(path: Path) -> None:
    """Create ``path`` empty with mode 0600 if it is missing; tighten it and its WAL files."""
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_MODE))
    for candidate in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        try:
            if candidate.stat().st_mode & 0o077:
                candidate.chmod(PRIVATE_MODE)
        except FileNotFoundError:
            continue


class DatabaseWrapper(base.DatabaseWrapper):
    def get_new_connection(self, conn_params):
        database = conn_params["database"]
        if not self.is_in_memory_db() and not str(database).startswith("file:"):
            make_private(Path(database))
        return super().get_new_connection(conn_params)
