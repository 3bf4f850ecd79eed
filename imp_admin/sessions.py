"""Idle console sessions end after ``SESSION_IDLE_TIMEOUT`` seconds.

A session's expiry is pushed forward when its administrator does something: any request
except an htmx GET, which is a page polling by itself (job progress, node states) and must
not keep a session open on an unattended screen. The expiry is written at most once a
minute, so a busy administrator does not cost a config DB write per click.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.contrib.auth.signals import user_logged_in
from django.dispatch import receiver

REFRESH_AFTER = 60  # seconds between writes of a session's new expiry


def start_idle_clock(session) -> None:
    session.set_expiry(timedelta(seconds=settings.SESSION_IDLE_TIMEOUT))


@receiver(user_logged_in, dispatch_uid="imp_admin.sessions.start_idle_clock")
def _signed_in(sender, request, user, **kwargs) -> None:
    """A new session expires after the idle time from its sign-in (saved with the sign-in)."""
    if request is not None and hasattr(request, "session"):
        start_idle_clock(request.session)


class IdleSessionMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        session = getattr(request, "session", None)
        user = getattr(request, "user", None)
        if session is None or user is None or not user.is_authenticated or session.is_empty():
            return response
        if request.method == "GET" and request.headers.get("HX-Request") == "true":
            return response  # a page polling by itself, not its administrator
        # A session from before this release has no expiry of its own yet: give it one.
        has_expiry = session.get("_session_expiry") is not None
        if not has_expiry or session.get_expiry_age() < settings.SESSION_IDLE_TIMEOUT - REFRESH_AFTER:
            start_idle_clock(session)
        return response
