"""API clients per persona: each holds a real token of its user, as a script would. The task-flow
test reuses the agent suite's node agents."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from api.models import ApiToken
from tests.agent.conftest import agents  # noqa: F401


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    """The personas' passwords hashed quickly: these tests are about the API, not the hasher."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def fresh_throttle_counts():
    """Each test starts with no request counted: token ids repeat from one test to the next."""
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


def token_client(user) -> APIClient:
    client = APIClient()
    if user is not None:
        _, token = ApiToken.issue(user, "tests")
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


@pytest.fixture
def api_personas(super_admin, operator, read_only):
    """API clients by persona name: anonymous (no token), read_only, operator, super_admin."""
    return {
        "anonymous": token_client(None),
        "read_only": token_client(read_only),
        "operator": token_client(operator),
        "super_admin": token_client(super_admin),
    }


@pytest.fixture
def api(super_admin) -> APIClient:
    """A super administrator's token client."""
    return token_client(super_admin)
