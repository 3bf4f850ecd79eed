"""Models of the messaging app: chat settings, external databases (see issue #3)."""
