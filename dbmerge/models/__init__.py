"""Models of the dbmerge app: external database merge jobs, their checks and log."""

from .jobs import MergeCheck, MergeJob, MergeLogEntry

__all__ = ["MergeCheck", "MergeJob", "MergeLogEntry"]
