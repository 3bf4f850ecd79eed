"""API tokens: each belongs to one console user and acts with that user's permissions."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone

TOKEN_PREFIX = "imp_"  # noqa: S105 (a prefix, not a secret)
# How far apart two writes of ``last_used_at`` are at least: a token used on every request
# must not write the config DB on every request.
LAST_USED_RESOLUTION = timedelta(seconds=60)


def hash_token(token: str) -> str:
    """The stored form of a token: its SHA-256. A token carries 256 random bits, so a slow,
    salted hash (as for passwords) adds no safety, only a cost to every request."""
    return hashlib.sha256(token.encode()).hexdigest()


class ApiTokenQuerySet(models.QuerySet):
    def usable(self) -> ApiTokenQuerySet:
        """Tokens not expired."""
        return self.filter(models.Q(expires_at__isnull=True) | models.Q(expires_at__gt=timezone.now()))


class ApiToken(models.Model):
    """A per-user API token. Only its hash is stored; the token itself is shown once, when
    created on the user's own page (My API Tokens)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=64, help_text="What the token is for, such as the script that uses it.")
    key_prefix = models.CharField(
        max_length=16, editable=False, help_text="The token's first characters, to tell tokens apart on the page."
    )
    key_hash = models.CharField(max_length=64, unique=True, editable=False, help_text="SHA-256 of the token.")
    created = models.DateTimeField(default=timezone.now, editable=False)
    expires_at = models.DateTimeField(
        null=True, blank=True, help_text="After this time the token is refused; empty means it never expires."
    )
    last_used_at = models.DateTimeField(
        null=True,
        blank=True,
        editable=False,
        help_text="When a request last authenticated with the token (to the minute), written by the API.",
    )

    objects = ApiTokenQuerySet.as_manager()

    class Meta:
        ordering = ["-created", "-pk"]
        verbose_name = "API token"

    def __str__(self) -> str:
        return f"{self.name} ({self.key_prefix}…)"

    @property
    def expired(self) -> bool:
        return self.expires_at is not None and self.expires_at <= timezone.now()

    @classmethod
    def issue(cls, user, name: str, expires_at=None) -> tuple[ApiToken, str]:
        """Create a token for ``user``; return the row and the token, which is never stored."""
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        row = cls.objects.create(
            user=user,
            name=name,
            key_prefix=token[: len(TOKEN_PREFIX) + 6],
            key_hash=hash_token(token),
            expires_at=expires_at,
        )
        return row, token

    def touch(self) -> None:
        """Record a use, at most once per ``LAST_USED_RESOLUTION``."""
        now = timezone.now()
        if self.last_used_at is None or now - self.last_used_at >= LAST_USED_RESOLUTION:
            ApiToken.objects.filter(pk=self.pk).update(last_used_at=now)
            self.last_used_at = now
