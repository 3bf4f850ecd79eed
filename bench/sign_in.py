"""What a password costs a sign-in: the checks a chat port runs per sign-in, timed in one run.

    .venv/bin/python bench/sign_in.py --users 50 --rounds 5

Builds a throw-away config DB (SQLite, as the demo) with ``--users`` end users holding SCRAM
keys, then times, per sign-in, side by side:

- ``lookup``: finding the user (what a sign-in cost before passwords: ``find_user``);
- ``check_password``: deriving the SCRAM-SHA-256 key again (PBKDF2, ``SCRAM_ITERATIONS``);
- ``authenticate``: the whole JSON/PLAIN path (throttle check in Redis, the check, the success
  recorded in Redis and on the user's row);
- ``scram exchange``: a full SCRAM-SHA-256 exchange between scramp's client and server fed by
  ``scram_credentials`` (the XMPP path; the client's PBKDF2 included).

Prints the median and p95 in milliseconds, and how long ``--users`` users signing in one after
the other take (what a failover's reconnect storm asks of one node's worker threads).
Needs Redis (REDIS_URL).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
WORK = Path(tempfile.mkdtemp(prefix="sign-in-bench-"))
os.environ.setdefault("SECRET_KEY", "bench-only-secret-key-not-for-production-0123456789")
os.environ.setdefault("IMP_SECRETS_KEY", "dGVzdC1vbmx5LWtleS1ub3QtZm9yLXByb2R1Y3Rpb24=")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "imp_admin.settings")
os.environ["SQLITE_PATH"] = str(WORK / "config.sqlite3")
os.environ["IMP_VAR_DIR"] = str(WORK)
os.environ["CHAT_BUS_PREFIX"] = f"imp-chat-bench-{uuid.uuid4().hex[:8]}"
BENCH_PASSWORD = "bench-user-password"

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from scramp import ScramClient, ScramMechanism  # noqa: E402

from topology import credentials  # noqa: E402
from topology.models import EndUser  # noqa: E402


def timed(function, calls: list) -> list[float]:
    """Milliseconds of each call of ``function`` with each argument tuple of ``calls``."""
    times = []
    for arguments in calls:
        started = time.perf_counter()
        function(*arguments)
        times.append((time.perf_counter() - started) * 1000)
    return times


def scram_exchange(user_id: str) -> None:
    mechanism = "SCRAM-SHA-256"
    server = ScramMechanism(mechanism).make_server(credentials.scram_auth_fn(mechanism))
    client = ScramClient([mechanism], user_id, BENCH_PASSWORD)
    server.set_client_first(client.get_client_first())
    client.set_server_first(server.get_server_first())
    server.set_client_final(client.get_client_final())
    client.set_server_final(server.get_server_final())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=5, help="Sign-ins per user and kind.")
    args = parser.parse_args()
    call_command("migrate", verbosity=0)
    users = []
    for n in range(args.users):
        user = EndUser.objects.create(user_id=f"user{n:03d}", jid=f"user{n:03d}@example.com")
        credentials.set_password(user, BENCH_PASSWORD)
        users.append(user)
    ids = [u.user_id for u in users] * args.rounds
    kinds = {
        "lookup (before passwords)": timed(credentials.find_user, [(i,) for i in ids]),
        "check_password": timed(credentials.check_password, [(i, BENCH_PASSWORD) for i in ids]),
        "authenticate (JSON, PLAIN)": timed(credentials.authenticate, [(i, BENCH_PASSWORD, "127.0.0.1") for i in ids]),
        "SCRAM-SHA-256 exchange (XMPP)": timed(scram_exchange, [(i,) for i in ids]),
    }
    print(
        f"sign-in cost, {args.users} users x {args.rounds} rounds, SCRAM_ITERATIONS={settings.SCRAM_ITERATIONS}, "
        f"config DB SQLite ({WORK})"
    )
    print(f"{'':32} {'median ms':>10} {'p95 ms':>8} {f'{args.users} in a row, s':>18}")
    for name, times in kinds.items():
        p95 = sorted(times)[int(0.95 * (len(times) - 1))]
        burst = sum(times[: args.users]) / 1000
        print(f"{name:32} {statistics.median(times):10.2f} {p95:8.2f} {burst:18.2f}")


if __name__ == "__main__":
    main()
