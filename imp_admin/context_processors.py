from datetime import timedelta

from django.conf import settings


def console(request) -> dict:
    return {
        "console_debug": settings.DEBUG,
        "login_lockout_minutes": settings.AXES_COOLOFF_TIME // timedelta(minutes=1),
    }
