"""Celery tasks of the topology app: the e-mail of SRM alarms, and its enqueueing."""

from __future__ import annotations

import logging

from celery import shared_task
from django.conf import settings
from django.core.mail import send_mail

from topology.models import AlarmRecipient, HAAlarm

log = logging.getLogger(__name__)

# SMTP is bounded by EMAIL_TIMEOUT; the limit catches a server that trickles past it.
EMAIL_TIME_LIMIT = 120


@shared_task(time_limit=EMAIL_TIME_LIMIT, acks_late=True, autoretry_for=(OSError,), retry_backoff=30, max_retries=5)
def email_alarm(alarm_id: int) -> None:
    """E-mail one SRM alarm to the alarm recipients (retried while the mail server is away)."""
    email_alarm_now(alarm_id)


def queue_alarm_email(alarm_id: int) -> None:
    """Queue the e-mail of a committed alarm, if anyone receives alarms; a broker away is logged."""
    if not AlarmRecipient.objects.filter(enabled=True).exists():
        return
    try:
        email_alarm.delay(alarm_id)
    except Exception:
        log.exception("Could not queue the e-mail of SRM alarm %s", alarm_id)


def email_alarm_now(alarm_id: int) -> int:
    """Send one alarm to every enabled recipient; returns how many were sent (0 or 1 message)."""
    alarm = HAAlarm.objects.select_related("group", "from_node", "to_node").filter(pk=alarm_id).first()
    recipients = list(AlarmRecipient.objects.filter(enabled=True).values_list("email", flat=True))
    if alarm is None or not recipients:
        return 0
    subject = f"[imp-admin] {alarm.name} on {alarm.group}: {alarm.get_reason_display()}"
    body = "\n".join(
        [
            alarm.text,
            "",
            f"Presence redundancy group: {alarm.group}",
            f"Raised at: {alarm.raised_at:%Y-%m-%d %H:%M:%S %Z}",
            "",
            "The group's page shows each node's state and the Server Action buttons.",
        ]
    )
    return send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, recipients)
