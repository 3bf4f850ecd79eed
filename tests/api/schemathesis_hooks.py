"""Schemathesis hooks for tests/api/test_fuzz.py (loaded through SCHEMATHESIS_HOOKS).

- ``readable_error``: every 4xx answer carries a sentence in ``detail``.
- Every generated external database points at this machine (127.0.0.1), so the fuzzer's
  Install schema and room report connect to loopback only, never to a name it made up.
"""

from __future__ import annotations

import schemathesis

LOOPBACK = "127.0.0.1"


@schemathesis.check
def readable_error(ctx, response, case):
    """A 4xx answer is JSON with a non-empty ``detail`` sentence."""
    if 400 <= response.status_code < 500:
        try:
            body = response.json()
        except ValueError:
            raise AssertionError(f"{response.status_code} without a JSON body: {response.text[:200]!r}") from None
        detail = body.get("detail") if isinstance(body, dict) else None
        if not isinstance(detail, str) or not detail.strip():
            raise AssertionError(f"{response.status_code} without a readable detail: {body!r}")


@schemathesis.hook
def map_case(ctx, case):
    if isinstance(case.body, dict) and "hostname" in case.body:
        case.body = {**case.body, "hostname": LOOPBACK}
    return case
