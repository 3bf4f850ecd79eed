"""Config DB access from the agent's asyncio loop: one worker thread, one connection."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from asgiref.sync import sync_to_async
from django.db import OperationalError, close_old_connections, connection, connections

# A node agent's config-DB transactions are short and wait on nothing but the config DB. One
# left idle means the agent is cut off in the middle of it; its session would keep the row
# locks it holds (its redundancy group's) and stall its peer's Server Recovery Manager, also
# where the server's TCP keepalives cannot tell (a proxy or relay between them keeps the
# connection up). So a PostgreSQL config DB ends an agent's transaction idle this long.
IDLE_IN_TRANSACTION_MS = 5000


def end_idle_transactions() -> None:
    """Have a PostgreSQL config DB end this process's idle transactions after
    ``IDLE_IN_TRANSACTION_MS``; call before the first query."""
    settings_dict = connections.settings["default"]
    if settings_dict["ENGINE"] != "django.db.backends.postgresql":
        return
    options = settings_dict.setdefault("OPTIONS", {})
    setting = f"-c idle_in_transaction_session_timeout={IDLE_IN_TRANSACTION_MS}"
    options["options"] = f"{options.get('options', '')} {setting}".strip()
    connections.close_all()


def _guarded(fn: Callable[..., Any], *args: Any) -> Any:
    try:
        return fn(*args)
    except OperationalError:
        connection.close()  # reconnect on the next call (PostgreSQL restarted, …)
        raise


async def db(fn: Callable[..., Any], *args: Any) -> Any:
    """Run ``fn(*args)`` against the config DB without blocking the loop."""
    return await sync_to_async(_guarded, thread_sensitive=True)(fn, *args)


def in_worker_thread(function: Callable[..., Any]) -> Callable[..., Any]:
    """``function`` made awaitable for the routers' event loop: each call runs in a thread of
    the loop's executor (not the agent's one config-DB thread of :func:`db`, so a sign-in or a
    bookmark write does not wait behind the SRM), with that thread's connection checked before
    and closed after."""

    def call(*args, **kwargs):
        close_old_connections()
        try:
            return function(*args, **kwargs)
        finally:
            close_old_connections()

    call.__doc__ = f"``{function.__name__}`` in a worker thread (``topology.agent.db.in_worker_thread``)."
    return sync_to_async(call, thread_sensitive=False)
