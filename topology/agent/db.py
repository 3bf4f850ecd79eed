"""Config DB access from the agent's asyncio loop: one worker thread, one connection."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from asgiref.sync import sync_to_async
from django.db import OperationalError, connection


def _guarded(fn: Callable[..., Any], *args: Any) -> Any:
    try:
        return fn(*args)
    except OperationalError:
        connection.close()  # reconnect on the next call (PostgreSQL restarted, …)
        raise


async def db(fn: Callable[..., Any], *args: Any) -> Any:
    """Run ``fn(*args)`` against the config DB without blocking the loop."""
    return await sync_to_async(_guarded, thread_sensitive=True)(fn, *args)
