"""End users' chat passwords: SCRAM keys, password checks and the sign-in throttle.

Contract for the chat ports (JSON and XMPP front ends of the XCP Router)
=======================================================================

Every function here is synchronous and touches the config DB (and Redis for the throttle).
From the router's event loop call the ``a``-prefixed twins (``aauthenticate``,
``ascram_credentials``, ``acheck_allowed``, ``arecord_failure``, ``arecord_success``,
``aset_password``), which run the same function in a worker thread and close stale DB
connections around it.

Passwords
    ``set_password(user, raw)``
        Validate ``raw`` (``validate_password``: 8 to 1024 characters, SASLprep-clean; raises
        ``django.core.exceptions.ValidationError``), then store SCRAM-SHA-256 and SCRAM-SHA-1
        keys (random salt, ``settings.SCRAM_ITERATIONS`` >= 4096), set
        ``user.password_set_at`` (the audit trail records that time, never the password) and
        lift the user's throttle. Use it for XEP-0077 password changes too.
    ``check_password(user, raw) -> bool``
        For SASL PLAIN and the JSON ``sign_in``. ``user`` is an EndUser or a user ID / JID.
        False for an unknown user or one without a password. Does not count failures.
    ``generate_password() -> str``
        A random password (the admin bulk action's one-time passwords).

SCRAM (scramp's server)
    ``scram_credentials(user_id_or_jid, mechanism) -> (salt, stored_key, server_key, iterations) | None``
        ``mechanism`` is ``"SCRAM-SHA-256"`` or ``"SCRAM-SHA-1"``. The tuple is exactly what
        ``scramp.ScramMechanism(mechanism).make_server(auth_fn)`` wants ``auth_fn(username)``
        to return. None: unknown user, or no password set.
    ``scram_auth_fn(mechanism) -> auth_fn``
        A ready ``auth_fn`` for ``make_server``: real keys for a known user, and for anyone else
        decoy keys (a stable salt per name) so the exchange fails at the proof like a wrong
        password and does not reveal which user IDs exist. Usage::

            server = ScramMechanism("SCRAM-SHA-256").make_server(credentials.scram_auth_fn("SCRAM-SHA-256"))
            server.set_client_first(client_first)     # username = authcid
            ...
            server.set_client_final(client_final)     # ScramException → record_failure, not-authorized

Throttle (per user AND per source address, shared by all node agents through Redis)
    ``check_allowed(user_id, source_address) -> None``
        Call before checking a password. Raises ``SignInThrottled`` (message and
        ``retry_after`` seconds) when the user or the address had
        ``SIGN_IN_FAILURES_PER_USER`` / ``SIGN_IN_FAILURES_PER_ADDRESS`` failures in a row,
        each within ``SIGN_IN_THROTTLE_SECONDS`` of the next; ``SignInUnavailable`` when Redis
        cannot be reached (fail closed). ``user_id`` may be None (unknown name).
    ``record_failure(user_id, source_address)``
        Count a wrong password (or unknown user): both throttle counters, and on the user's row
        ``failed_sign_ins``, ``last_failed_sign_in_at`` and ``last_failed_sign_in_source``
        (shown on the user's page).
    ``record_success(user_id, source_address)``
        Reset the user's counter and set ``last_sign_in_at``.

One call for PLAIN and JSON
    ``authenticate(user_id_or_jid, raw, source_address) -> EndUser``
        check_allowed + check_password + record_failure/record_success. Raises
        ``SignInThrottled``/``SignInUnavailable`` or ``WrongCredentials`` (all
        ``SignInRefused``; ``str(exc)`` is the message for the client). A wrong password, an
        unknown user and a user without a password all give the same ``WrongCredentials``.

TLS
    ``server_ssl_context(node) -> ssl.SSLContext`` (from ``topology.certificates``): the node's
    XMPP client port certificate, created from the demo CA on first need.

The raw password is never stored, logged, or put in an exception message.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import secrets
from collections.abc import Callable
from functools import lru_cache

import redis
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from scramp import ScramException, ScramMechanism

from topology.agent.db import in_worker_thread
from topology.certificates import server_ssl_context
from topology.models import MIN_SCRAM_ITERATIONS, EndUser, ScramCredential, ScramMechanismName

MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 1024
MECHANISMS = (ScramMechanismName.SHA_256, ScramMechanismName.SHA_1)
WRONG_CREDENTIALS_MESSAGE = "Wrong user ID or password."

ScramKeys = tuple[bytes, bytes, bytes, int]

__all__ = [
    "SignInRefused",
    "SignInThrottled",
    "SignInUnavailable",
    "WrongCredentials",
    "aauthenticate",
    "acheck_allowed",
    "arecord_failure",
    "arecord_success",
    "ascram_credentials",
    "aset_password",
    "authenticate",
    "check_allowed",
    "check_password",
    "find_user",
    "generate_password",
    "record_failure",
    "record_success",
    "scram_auth_fn",
    "scram_credentials",
    "server_ssl_context",
    "set_password",
    "validate_password",
]


class SignInRefused(Exception):
    """A sign-in was refused; ``str(exc)`` says why, in words fit for the client."""


class WrongCredentials(SignInRefused):
    """Unknown user, no password set, or wrong password (the client is not told which)."""

    def __init__(self, message: str = WRONG_CREDENTIALS_MESSAGE) -> None:
        super().__init__(message)


class SignInThrottled(SignInRefused):
    """Too many failed sign-ins for the user or from the source address."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class SignInUnavailable(SignInRefused):
    """The throttle's store (Redis) cannot be reached; sign-ins fail closed."""


# Passwords


def validate_password(raw: str) -> None:
    """Raise ValidationError unless ``raw`` can be a password (length, SASLprep)."""
    if not isinstance(raw, str) or len(raw) < MIN_PASSWORD_LENGTH:
        raise ValidationError(f"The password must have at least {MIN_PASSWORD_LENGTH} characters.", code="too_short")
    if len(raw) > MAX_PASSWORD_LENGTH:
        raise ValidationError(f"The password can have at most {MAX_PASSWORD_LENGTH} characters.", code="too_long")
    try:
        ScramMechanism(ScramMechanismName.SHA_256).make_auth_info(raw, iteration_count=MIN_SCRAM_ITERATIONS)
    except (ScramException, ValueError) as exc:
        raise ValidationError(
            "The password contains characters SASLprep does not allow (control or unassigned characters).",
            code="saslprep",
        ) from exc


def generate_password() -> str:
    """A random password of 16 URL-safe characters (96 bits)."""
    return secrets.token_urlsafe(12)


def set_password(user: EndUser, raw: str) -> None:
    """Store the SCRAM keys of ``raw`` for ``user`` (both mechanisms) and record when."""
    validate_password(raw)
    iterations = max(MIN_SCRAM_ITERATIONS, settings.SCRAM_ITERATIONS)
    with transaction.atomic():
        for mechanism in MECHANISMS:
            salt, stored_key, server_key, count = ScramMechanism(mechanism).make_auth_info(
                raw, iteration_count=iterations
            )
            ScramCredential.objects.update_or_create(
                user=user,
                mechanism=mechanism,
                defaults={"salt": salt, "stored_key": stored_key, "server_key": server_key, "iterations": count},
            )
        user.password_set_at = timezone.now()
        user.save(update_fields=["password_set_at"])
    _lift_user_throttle(user.user_id)


def find_user(user_id_or_jid: str) -> EndUser | None:
    """The end user named by a user ID (``andy``) or an IM address (``andy@example.com``)."""
    name = (user_id_or_jid or "").strip()
    if not name:
        return None
    if "@" in name:
        return EndUser.objects.filter(jid__iexact=name.split("/", 1)[0]).first()
    return EndUser.objects.filter(user_id=name).first()


def scram_credentials(user_id_or_jid: str | EndUser, mechanism: str) -> ScramKeys | None:
    """The stored SCRAM keys of a user for ``mechanism``, as scramp's ``auth_fn`` returns them."""
    if mechanism not in ScramMechanismName.values:
        supported = ", ".join(ScramMechanismName.values)
        raise ValueError(f"Unsupported SCRAM mechanism {mechanism!r}; use one of {supported}.")
    user = user_id_or_jid if isinstance(user_id_or_jid, EndUser) else find_user(user_id_or_jid)
    if user is None:
        return None
    row = ScramCredential.objects.filter(user=user, mechanism=mechanism).first()
    if row is None:
        return None
    return bytes(row.salt), bytes(row.stored_key), bytes(row.server_key), row.iterations


def scram_auth_fn(mechanism: str) -> Callable[[str], ScramKeys]:
    """An ``auth_fn`` for ``ScramMechanism(mechanism).make_server``: real or decoy keys."""

    def auth_fn(username: str) -> ScramKeys:
        return scram_credentials(username, mechanism) or _decoy_keys(username, mechanism)

    return auth_fn


def _decoy_keys(name: str, mechanism: str) -> ScramKeys:
    # A stable salt per name, so that asking twice does not tell a decoy from a real user;
    # random keys, so that no password matches.
    salt = hmac.new(settings.SECRET_KEY.encode(), f"{mechanism}:{name.lower()}".encode(), hashlib.sha256).digest()[:16]
    size = 32 if mechanism == ScramMechanismName.SHA_256 else 20
    iterations = max(MIN_SCRAM_ITERATIONS, settings.SCRAM_ITERATIONS)
    return salt, secrets.token_bytes(size), secrets.token_bytes(size), iterations


def check_password(user: EndUser | str | None, raw: str) -> bool:
    """Whether ``raw`` is the user's password (derived again and compared with the stored key)."""
    if isinstance(user, str):
        user = find_user(user)
    keys = scram_credentials(user, ScramMechanismName.SHA_256) if user is not None else None
    if keys is None or not isinstance(raw, str) or not raw or len(raw) > MAX_PASSWORD_LENGTH:
        # Spend the same work as a real check, so timing does not tell which users exist.
        keys = _decoy_keys(getattr(user, "user_id", "") or "", ScramMechanismName.SHA_256)
        _derive(keys, "decoy password")
        return False
    try:
        stored_key = _derive(keys, raw)
    except (ScramException, ValueError):  # not SASLprep-clean: cannot be anyone's password
        return False
    return hmac.compare_digest(stored_key, keys[1])


def _derive(keys: ScramKeys, raw: str) -> bytes:
    salt, _stored, _server, iterations = keys
    return ScramMechanism(ScramMechanismName.SHA_256).make_auth_info(raw, iteration_count=iterations, salt=salt)[1]


# Throttle


@lru_cache(maxsize=4)
def _redis(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=3, socket_connect_timeout=3)


def _key(kind: str, value: str) -> str:
    prefix = getattr(settings, "CHAT_BUS_PREFIX", None) or "imp-chat"
    return f"{prefix}:sign-in-failures:{kind}:{value}"


def _counters(user_id: str | None, source_address: str) -> list[tuple[str, str, int]]:
    counters = [("address", source_address or "unknown", settings.SIGN_IN_FAILURES_PER_ADDRESS)]
    if user_id:
        counters.insert(0, ("user", user_id, settings.SIGN_IN_FAILURES_PER_USER))
    return counters


def check_allowed(user_id: str | None, source_address: str) -> None:
    """Raise SignInThrottled if the user or the source address may not try now."""
    counters = _counters(user_id, source_address)
    try:
        pipe = _redis(settings.REDIS_URL).pipeline(transaction=False)
        for kind, value, _limit in counters:
            pipe.get(_key(kind, value))
            pipe.ttl(_key(kind, value))
        replies = pipe.execute()
    except redis.RedisError as exc:
        raise SignInUnavailable("Sign-in is unavailable right now: the sign-in throttle cannot be reached.") from exc
    for index, (kind, value, limit) in enumerate(counters):
        count, ttl = int(replies[2 * index] or 0), int(replies[2 * index + 1] or 0)
        if limit > 0 and count >= limit:
            retry_after = max(ttl, 1)
            whom = f"for {value}" if kind == "user" else f"from {value}"
            raise SignInThrottled(
                f"Too many failed sign-ins {whom}; try again in {retry_after} seconds.", retry_after=retry_after
            )


def record_failure(user_id: str | None, source_address: str) -> None:
    """Count a failed sign-in for the user (if known) and the source address."""
    window = max(1, settings.SIGN_IN_THROTTLE_SECONDS)
    try:
        pipe = _redis(settings.REDIS_URL).pipeline(transaction=True)
        for kind, value, _limit in _counters(user_id, source_address):
            pipe.incr(_key(kind, value))
            pipe.expire(_key(kind, value), window)
        pipe.execute()
    except redis.RedisError:
        pass  # check_allowed fails closed while Redis is away; the row below still counts
    if user_id:
        EndUser.objects.filter(user_id=user_id).update(
            failed_sign_ins=F("failed_sign_ins") + 1,
            last_failed_sign_in_at=timezone.now(),
            last_failed_sign_in_source=(source_address or "")[:64],
        )


def record_success(user_id: str, source_address: str) -> None:
    """Reset the user's failure counter and note the sign-in on the user's row."""
    _lift_user_throttle(user_id)
    EndUser.objects.filter(user_id=user_id).update(last_sign_in_at=timezone.now())


def _lift_user_throttle(user_id: str) -> None:
    with contextlib.suppress(redis.RedisError):
        _redis(settings.REDIS_URL).delete(_key("user", user_id))


def authenticate(user_id_or_jid: str, raw: str, source_address: str) -> EndUser:
    """Sign-in check for a user ID or JID and a password; the user, or SignInRefused."""
    user = find_user(user_id_or_jid)
    user_id = user.user_id if user is not None else None
    check_allowed(user_id, source_address)
    if not check_password(user, raw):
        record_failure(user_id, source_address)
        raise WrongCredentials()
    record_success(user.user_id, source_address)
    return user


# Async twins for the router's event loop

aauthenticate = in_worker_thread(authenticate)
ascram_credentials = in_worker_thread(scram_credentials)
acheck_allowed = in_worker_thread(check_allowed)
arecord_failure = in_worker_thread(record_failure)
arecord_success = in_worker_thread(record_success)
aset_password = in_worker_thread(set_password)
