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
