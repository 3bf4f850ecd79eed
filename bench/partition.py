"""Network partitions, many times over: acknowledged, lost, doubled and split-brain counts and
the service gap per case, on the namespace test bed (root only).

    sudo .venv/bin/python bench/partition.py [--runs 20] [--cases config-db,everything,...]

Each run of a case is the partition test's own (``tests/partition/cases.py``): a fresh
redundancy group with its config DB and chat database on the bed's PostgreSQL, node agents A
and B each in its namespace, Andy (home A) and Bob (home B) posting throughout to a room on
A; the cut, the hold, the heal, and Fallback when A was failed over. Per case it prints the
sums over the runs and, over the runs where the backup took the room, the time from the cut
to the first post the backup committed (median and worst), and the longest time without an
acknowledgement to anyone (median and worst).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import sys
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "imp_admin.settings")
    os.environ.setdefault("SECRET_KEY", "bench-only-secret-key-not-for-production-0123456789")
    os.environ.setdefault("IMP_SECRETS_KEY", "YmVuY2gtb25seS1rZXktbm90LWZvci1wcm9kdWN0aW9uPT0="[:43] + "=")
    os.environ.setdefault("IMP_VAR_DIR", str(ROOT / "var" / "bench"))
    for name in ("SECURE_SSL_REDIRECT", "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE", "STATIC_MANIFEST"):
        os.environ.setdefault(name, "0")  # the console is driven in-process over plain HTTP
    os.environ.pop("DATABASE_URL", None)
    import django

    django.setup()
    from django.test.utils import setup_test_environment

    setup_test_environment()  # the group page and Fallback are driven through Django's test client


def seconds(values: list[float]) -> str:
    if not values:
        return "-"
    return f"median {statistics.median(values):.2f} s, worst {max(values):.2f} s"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--cases", default="config-db,everything,redis,flapping,lossy")
    args = parser.parse_args()
    # Stopped early (SIGTERM, or Ctrl-C in a shell that lets it through): clean the bed up.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    setup_django()
    from tests.partition import cases
    from tests.partition.netns import TestBed, available, new_workdir
    from tests.partition.world import GroupOnBed, migrate_template, use_config_db

    reason = available()
    if reason:
        print(f"Cannot build the test bed: {reason}.", file=sys.stderr)
        return 1
    names = [name.strip() for name in args.cases.split(",") if name.strip()]
    workdir = new_workdir()
    bed = TestBed(workdir)
    totals = {name: {"runs": 0, "failed": 0, "acked": 0, "lost": 0, "doubled": 0, "split": 0} for name in names}
    backup_after: dict[str, list[float]] = {name: [] for name in names}
    pauses: dict[str, list[float]] = {name: [] for name in names}
    started = time.monotonic()
    try:
        bed.start()
        migrate_template(bed)
        for run in range(1, args.runs + 1):
            for name in names:
                group = GroupOnBed(bed, workdir)
                try:
                    with use_config_db(bed, group.config_db):
                        group.build()
                        result = cases.run_case(group, cases.CASES[name])
                    outcome = result.outcome
                    total = totals[name]
                    total["runs"] += 1
                    total["acked"] += outcome.acknowledged
                    total["lost"] += len(outcome.lost)
                    total["doubled"] += len(outcome.doubled)
                    total["split"] += len(outcome.split_brain)
                    if outcome.backup_after is not None:
                        backup_after[name].append(outcome.backup_after)
                    if outcome.longest_pause is not None:
                        pauses[name].append(outcome.longest_pause)
                    print(f"run {run:2d} {outcome.line(name)}", flush=True)
                except Exception:
                    totals[name]["failed"] += 1
                    print(f"run {run:2d} {name}: FAILED\n{traceback.format_exc(limit=3)}", flush=True)
                finally:
                    for host in ("a", "b"):
                        bed.heal(host)
                    group.close()
    finally:
        bed.close()
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"\n{args.runs} runs of each case in {time.monotonic() - started:.0f} s")
    print(
        "case        runs  failed  acknowledged  lost  doubled  split brain  "
        "service on backup after cut     longest pause"
    )
    for name in names:
        t = totals[name]
        print(
            f"{name:<11} {t['runs']:>4}  {t['failed']:>6}  {t['acked']:>12}  {t['lost']:>4}  {t['doubled']:>7}  "
            f"{t['split']:>11}  {seconds(backup_after[name]):<30}  {seconds(pauses[name])}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
