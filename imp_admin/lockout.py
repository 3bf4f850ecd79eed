"""Sign-in lockout (django-axes) in the audit trail, and unlocking by a super administrator.

django-axes counts failed sign-ins and refuses a locked-out user name or address for
``AXES_COOLOFF_TIME``. This module adds what the console needs around it: each lockout and
each unlock is an audit trail entry (whose account, from where, who unlocked it, when), and
:func:`unlock` is the one way the console page and Django admin end a lockout early.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from auditlog.models import LogEntry
from axes.handlers.database import AxesDatabaseHandler
from axes.helpers import get_client_username
from axes.models import AccessAttempt
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.db.models import Max, Q, Sum
from django.utils import timezone

SIGN_IN = "sign-in"
ALLOWED = "allowed"
LOCKED_OUT = "locked out"


def _log(username: str, change: tuple[str, str], *, actor=None, **details) -> LogEntry:
    """An audit entry on the console user named ``username`` (or on the attempt when no such
    user exists: someone guessing names)."""
    user = get_user_model().objects.filter(username=username).first() if username else None
    target_model = type(user) if user else AccessAttempt
    return LogEntry.objects.create(
        content_type=ContentType.objects.get_for_model(target_model),
        object_pk=str(user.pk) if user else "",
        object_id=user.pk if user else None,
        object_repr=username or "(no user name)",
        action=LogEntry.Action.UPDATE,
        changes={SIGN_IN: list(change)},
        actor=actor,
        additional_data={key: value for key, value in details.items() if value not in (None, "")},
    )


class AuditedAxesHandler(AxesDatabaseHandler):
    """django-axes' database handler, writing an audit entry when a failure starts a lockout.

    A request that is refused because it is already locked out does not write another one.
    A successful sign-in clears the failures of its own user name only: axes would clear
    its address's too, so anyone signing in from a shared address (a proxy, a NAT) would
    end the lockout of an account under attack.
    """

    def reset_user_attempts(self, request, credentials: dict | None = None) -> int:
        username = get_client_username(request, credentials)
        return AccessAttempt.objects.filter(username=username).delete()[0] if username else 0

    def user_login_failed(self, sender, credentials: dict, request=None, **kwargs):
        was_locked = bool(getattr(request, "axes_locked_out", False))
        super().user_login_failed(sender, credentials, request, **kwargs)
        if request is not None and not was_locked and getattr(request, "axes_locked_out", False):
            _log(
                (credentials or {}).get("username") or "",
                (ALLOWED, LOCKED_OUT),
                ip_address=getattr(request, "axes_ip_address", None),
                path=getattr(request, "axes_path_info", None),
                failures=settings.AXES_FAILURE_LIMIT,
            )


@dataclass(frozen=True)
class Lockout:
    """A user name or an address that is refused sign-in now."""

    kind: str  # "user name" or "address"
    value: str
    failures: int
    last_failure: datetime

    @property
    def until(self) -> datetime:
        return self.last_failure + settings.AXES_COOLOFF_TIME


def current_lockouts() -> list[Lockout]:
    """Every user name and address with at least ``AXES_FAILURE_LIMIT`` recent failures."""
    recent = AccessAttempt.objects.filter(attempt_time__gte=timezone.now() - settings.AXES_COOLOFF_TIME)
    lockouts = []
    for kind, field in (("user name", "username"), ("address", "ip_address")):
        rows = (
            recent.exclude(**{f"{field}__isnull": True})
            .values(field)
            .annotate(failures=Sum("failures_since_start"), last=Max("attempt_time"))
            .filter(failures__gte=settings.AXES_FAILURE_LIMIT)
            .order_by(field)
        )
        lockouts += [Lockout(kind, row[field], row["failures"], row["last"]) for row in rows]
    return lockouts


@transaction.atomic
def unlock(*, actor, username: str | None = None, ip_address: str | None = None) -> int:
    """End the lockout of ``username`` or ``ip_address`` now; audited. Returns the attempts cleared."""
    if not username and not ip_address:
        raise ValueError("unlock needs a user name or an address")
    condition = Q(username=username) if username else Q(ip_address=ip_address)
    attempts = AccessAttempt.objects.filter(condition)
    names = sorted({name for name in attempts.values_list("username", flat=True) if name})
    count, _ = attempts.delete()
    if count:
        for name in names or [""]:
            _log(name, (LOCKED_OUT, ALLOWED), actor=actor, ip_address=ip_address, unlocked_by=actor.get_username())
    return count
