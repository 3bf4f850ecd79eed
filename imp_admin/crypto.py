"""Encryption of secrets kept in the config DB (external database passwords).

Fernet (AES-128-CBC with HMAC-SHA256) from `cryptography`, with a MultiFernet so the key
can be rotated: the first key of ``settings.SECRETS_KEYS`` encrypts, every key decrypts.
"""

from __future__ import annotations

from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


class SecretUnreadable(Exception):
    """A stored secret cannot be decrypted with any configured key."""


@lru_cache(maxsize=4)
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    try:
        return MultiFernet([Fernet(key.encode()) for key in keys])
    except ValueError as exc:
        raise ImproperlyConfigured(
            "IMP_SECRETS_KEY holds a key that is not a Fernet key (32 url-safe base64-encoded bytes). "
            "Generate one with: python -c 'from cryptography.fernet import Fernet; "
            "print(Fernet.generate_key().decode())'"
        ) from exc


def encrypt(plaintext: str) -> str:
    return _fernet(tuple(settings.SECRETS_KEYS)).encrypt(plaintext.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return _fernet(tuple(settings.SECRETS_KEYS)).decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise SecretUnreadable(
            "The stored password cannot be decrypted with the configured IMP_SECRETS_KEY; enter the password again."
        ) from exc


def generate_key() -> str:
    return Fernet.generate_key().decode()
