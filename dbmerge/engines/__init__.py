"""Merge engines: plain modules that merge two persistent chat databases into a destination.

They know nothing of HTTP, views or the job model: a caller (the Celery task, the management
command, a test, the benchmark) hands them connection settings and a few callbacks.
"""

from .base import (
    AlreadyMerged,
    MergeCancelled,
    MergeError,
    MergeHooks,
    MergeReport,
    SharedRoom,
    TableFigures,
)

__all__ = [
    "AlreadyMerged",
    "MergeCancelled",
    "MergeError",
    "MergeHooks",
    "MergeReport",
    "SharedRoom",
    "TableFigures",
]
