"""Celery tasks of the topology app: the e-mail of SRM alarms."""

from __future__ import annotations

from celery import shared_task

# SMTP is bounded by EMAIL_TIMEOUT; the limit catches a server that trickles past it.
EMAIL_TIME_LIMIT = 120


@shared_task(time_limit=EMAIL_TIME_LIMIT, acks_late=True, autoretry_for=(OSError,), retry_backoff=30, max_retries=5)
def email_alarm(alarm_id: int) -> None:
    """E-mail one SRM alarm to the alarm recipients (retried while the mail server is away)."""
    from topology.alarms import email_alarm_now

    email_alarm_now(alarm_id)
