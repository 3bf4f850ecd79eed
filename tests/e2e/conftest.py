"""End-to-end suites reuse the fixtures of the other suites: persistent chat databases (merge
suite) and node agents (agent suite); the Celery worker is the root conftest's."""

from tests.agent.conftest import agents  # noqa: F401
from tests.dbmerge.conftest import chat_db  # noqa: F401
