"""SRM alarms: the one place they are raised, and their e-mail to the alarm recipients.

An alarm is a row first (``HAAlarm``, shown on the dashboard); once the SRM's transaction
commits, a Celery task e-mails it through Django's mail settings to every enabled
``AlarmRecipient``. Raising an alarm never fails a failover: a broker that is away is logged.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction

from topology.choices import HAReason
from topology.models import AlarmName, AlarmRecipient, HAAlarm, Node, RedundancyGroup

log = logging.getLogger(__name__)


def raise_alarm(
    name: AlarmName, group: RedundancyGroup, from_node: Node, to_node: Node | None, reason: HAReason
) -> HAAlarm:
    """Record an SRM alarm and e-mail it to the alarm recipients after the commit."""
    alarm = HAAlarm.objects.create(name=name, group=group, from_node=from_node, to_node=to_node, reason=reason)
    log.warning("%s FromNode=%s ToNode=%s Reason=%s", name, from_node, to_node, reason)
    transaction.on_commit(lambda: _queue_email(alarm.pk))
    return alarm


def _queue_email(alarm_id: int) -> None:
    if not AlarmRecipient.objects.filter(enabled=True).exists():
        return
    from topology.tasks import email_alarm

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
