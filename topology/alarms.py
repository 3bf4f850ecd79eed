"""SRM alarms: the one place they are raised.

An alarm is a row first (``HAAlarm``, shown on the dashboard); once the SRM's transaction
commits, a Celery task e-mails it (``topology.tasks``) through Django's mail settings to every
enabled ``AlarmRecipient``. Raising an alarm never fails a failover: a broker that is away is
logged.
"""

from __future__ import annotations

import logging

from django.db import transaction

from topology.choices import HAReason
from topology.models import AlarmName, HAAlarm, Node, RedundancyGroup
from topology.tasks import queue_alarm_email

log = logging.getLogger(__name__)


def raise_alarm(
    name: AlarmName, group: RedundancyGroup, from_node: Node, to_node: Node | None, reason: HAReason
) -> HAAlarm:
    """Record an SRM alarm and e-mail it to the alarm recipients after the commit."""
    alarm = HAAlarm.objects.create(name=name, group=group, from_node=from_node, to_node=to_node, reason=reason)
    log.warning("%s FromNode=%s ToNode=%s Reason=%s", name, from_node, to_node, reason)
    transaction.on_commit(lambda: queue_alarm_email(alarm.pk))
    return alarm
