"""How API requests authenticate: ``Authorization: Bearer <token>`` (a per-user API token), or
the console's session (with CSRF) for the browsable schema.

Neither goes through ``django.contrib.auth.authenticate``, so login-attempt lockout (django-axes)
keeps guarding the login page only; a wrong token is refused the same way every time.
"""

from __future__ import annotations

from auditlog.context import auditlog_value
from django.utils.translation import gettext_lazy as _
from rest_framework import authentication, exceptions

from api.models import ApiToken, hash_token


class TokenAuthentication(authentication.BaseAuthentication):
    """``Authorization: Bearer imp_…``; the request acts as the token's owner."""

    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.lower().encode():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed(_("Invalid Authorization header: use 'Bearer <token>'."))
        try:
            token = header[1].decode()
        except UnicodeError:
            raise exceptions.AuthenticationFailed(_("Invalid token.")) from None
        row = ApiToken.objects.select_related("user").filter(key_hash=hash_token(token)).first()
        if row is None or not row.user.is_active:
            raise exceptions.AuthenticationFailed(_("Invalid token."))
        if row.expired:
            raise exceptions.AuthenticationFailed(_("This token has expired; create a new one on My API Tokens."))
        row.touch()
        attribute_to(row.user)
        return row.user, row

    def authenticate_header(self, request) -> str:
        return f'{self.keyword} realm="api"'


class SessionAuthentication(authentication.SessionAuthentication):
    """The console's session; DRF enforces CSRF on every unsafe method."""

    def authenticate(self, request):
        result = super().authenticate(request)
        if result is not None:
            attribute_to(result[0])
        return result


def attribute_to(user) -> None:
    """Make the audit trail record ``user`` as the actor of this request's changes.

    ``AuditlogMiddleware`` reads the user before the view runs, when an API request is still
    anonymous (the API authenticates in the view); the request's audit context is updated here.
    """
    try:
        context = auditlog_value.get()
    except LookupError:
        return
    context["actor"] = user
