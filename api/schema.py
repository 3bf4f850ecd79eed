"""The OpenAPI schema: every operation documents the errors it can answer, in one shape."""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema as BaseAutoSchema

from api.errors import ErrorSerializer

ERRORS = {
    "400": "The input is not valid: the console's messages, per field.",
    "401": "No valid token or session.",
    "403": "Your role does not allow this (or the CSRF token of a session is missing).",
    "404": "No such object.",
    "409": "The object's state does not allow this now; the reason says what to do first.",
    "415": "The body is not JSON (send Content-Type: application/json).",
    "429": "Too many requests with this token; retry after the time in Retry-After.",
}
READ_ERRORS = ("400", "401", "403", "404", "429")


class AutoSchema(BaseAutoSchema):
    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        codes = READ_ERRORS if self.method in ("GET", "HEAD") else tuple(ERRORS)
        for code in codes:
            if code not in responses:
                body = self._get_response_for_code(ErrorSerializer, code, direction=direction)
                body["description"] = ERRORS[code]
                responses[code] = body
        return responses


class TokenAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "api.authentication.TokenAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "description": "A token from My API Tokens in the console."}


class SessionAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "api.authentication.SessionAuthentication"
    name = "cookieAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "cookie",
            "name": "sessionid",
            "description": "The console's session (with CSRF).",
        }
