"""Models of the dbmerge app: external database merge jobs (see issue #6)."""
