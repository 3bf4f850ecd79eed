from django.conf import settings


def console(request) -> dict:
    return {"console_debug": settings.DEBUG}
