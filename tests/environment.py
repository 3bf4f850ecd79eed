"""Loaded as a pytest plugin (``-p tests.environment``) before Django reads its settings.

The test environment gets fixed, non-secret keys so a plain ``pytest`` works without
the variables a deployment must set.
"""

import os

os.environ.setdefault("SECRET_KEY", "test-only-secret-key-not-for-production-use-0123456789")
# A fixed Fernet key for tests only; deployments generate their own.
os.environ.setdefault("IMP_SECRETS_KEY", "dGVzdC1vbmx5LWtleS1ub3QtZm9yLXByb2R1Y3Rpb24=")
os.environ.setdefault("SECURE_SSL_REDIRECT", "0")
os.environ.setdefault("SESSION_COOKIE_SECURE", "0")
os.environ.setdefault("CSRF_COOKIE_SECURE", "0")
os.environ.setdefault("IMP_VAR_DIR", os.path.join(os.path.dirname(os.path.dirname(__file__)), "var", "test"))
os.environ.setdefault("STATIC_MANIFEST", "0")
# A file (not in-memory) test config DB, so node agents and Celery workers started by the
# tests share it; one per pytest process so concurrent runs never collide. A pytest-xdist
# worker inherits its controller's environment, so it sets its own names rather than keep
# the controller's.
_run = f"{os.getpid()}"
_set = os.environ.__setitem__ if os.environ.get("PYTEST_XDIST_WORKER") else os.environ.setdefault
_set("SQLITE_TEST_PATH", os.path.join(os.environ["IMP_VAR_DIR"], f"configdb-{_run}.sqlite3"))
_set("CELERY_TASK_DEFAULT_QUEUE", f"imp-admin-test-{_run}")
_set("CHAT_BUS_PREFIX", f"imp-chat-test-{_run}")
os.makedirs(os.environ["IMP_VAR_DIR"], exist_ok=True)

# --- why a test was run again -----------------------------------------------------------------
# pytest-rerunfailures runs a failed test again (scripts/test: --reruns 2) and, if it then
# passes, keeps only the pass. CI's log must still say what failed the first time: each
# failure that led to a rerun is printed at the end of the run, under its own heading.
_reruns: list = []


def pytest_runtest_logreport(report) -> None:
    if report.outcome == "rerun":
        _reruns.append(report)


def pytest_terminal_summary(terminalreporter) -> None:
    if not _reruns:
        return
    terminalreporter.section("failures that were run again (RERUN)")
    for report in _reruns:
        terminalreporter.line(f"--- {report.nodeid} ({report.when}) ---", bold=True)
        text = report.longreprtext
        terminalreporter.line(text if len(text) <= 6000 else "…\n" + text[-6000:])
