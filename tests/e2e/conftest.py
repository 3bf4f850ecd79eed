"""End-to-end suites reuse the real-process fixtures of the other suites: persistent chat
databases and a Celery worker (merge suite), node agents (agent suite)."""

from tests.agent.conftest import agents  # noqa: F401
from tests.dbmerge.conftest import celery_worker, chat_db  # noqa: F401
