"""Settings for imp-admin.

Every value comes from the environment, read once here. Secrets accept a ``*_FILE``
variant that names a file holding the value (as container secrets are mounted).
"""

from __future__ import annotations

import base64
import os
import secrets
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env(name: str, default: str | None = None) -> str | None:
    """Return ``name`` from the environment, or the contents of the file ``name_FILE``."""
    file_path = os.environ.get(f"{name}_FILE")
    if file_path:
        return Path(file_path).read_text().strip()
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    value = env(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    value = env(name)
    return default if value in (None, "") else int(value)


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in (env(name, default) or "").split(",") if item.strip()]


def local_secret(name: str, make) -> str:
    """A key kept in ``VAR_DIR/name``, created (random, mode 0600) on first use.

    For one host this is enough; processes on several hosts must share the key through the
    environment (``SECRET_KEY``, ``IMP_SECRETS_KEY`` or their ``*_FILE``) instead.
    """
    path = VAR_DIR / name
    if not path.exists():
        try:
            private_dir(VAR_DIR)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another process created it first
        except OSError as exc:
            raise ImproperlyConfigured(
                f"Set {name.upper()} in the environment, or make {VAR_DIR} writable so one can be kept there."
            ) from exc
        else:
            with os.fdopen(fd, "w") as handle:
                handle.write(make())
    return path.read_text().strip()


DEBUG = env_bool("DEBUG", False)
VAR_DIR = Path(env("IMP_VAR_DIR", str(BASE_DIR / "var")))


def private_dir(path: Path) -> Path:
    """Create ``path`` mode 0700 (it holds keys and the config DB), or tighten it to 0700."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    if path.stat().st_mode & 0o077:
        path.chmod(0o700)
    return path


SECRET_KEY = env("SECRET_KEY") or local_secret("secret_key", lambda: secrets.token_urlsafe(50))

# Key(s) for the secrets stored in the config DB (external database passwords): Fernet
# keys, comma separated, newest first, so a key can be rotated without losing old values.
SECRETS_KEYS = env_list("IMP_SECRETS_KEY") or [
    local_secret("imp_secrets_key", lambda: base64.urlsafe_b64encode(secrets.token_bytes(32)).decode())
]

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    # Before staticfiles: its `runserver` (which names no server version) wins.
    "imp_admin",
    "django.contrib.staticfiles",
    "axes",
    "csp",
    "crispy_forms",
    "crispy_bootstrap5",
    "django_htmx",
    "django_tables2",
    "django_filters",
    "auditlog",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "topology",
    "messaging",
    "dbmerge",
    "api",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "auditlog.middleware.AuditlogMiddleware",
    "csp.middleware.CSPMiddleware",
    "imp_admin.sessions.IdleSessionMiddleware",
    # Last, as django-axes asks: it turns a lockout into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "imp_admin.urls"
WSGI_APPLICATION = "imp_admin.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "imp_admin.context_processors.console",
            ],
        },
    },
]

# The config DB. SQLite in WAL mode is the embedded default: the console, the Celery
# workers and the node agents share it on one host. DATABASE_URL switches to PostgreSQL.
DATABASE_URL = env("DATABASE_URL")
# On PostgreSQL the server ends the session of a client that vanished (a node cut off by a
# partition, a host that died) within seconds: keepalive probes after 2 s of silence, and no
# more than 5 s of unacknowledged data. Otherwise the session of a node cut off in the middle
# of a transaction keeps its row locks (the redundancy group's, say) until TCP gives up, after
# hours, and its peer's Server Recovery Manager waits on them: no take-over, no Fallback.
CONFIG_DB_SESSION_OPTIONS = (
    "-c tcp_keepalives_idle=2 -c tcp_keepalives_interval=1 -c tcp_keepalives_count=3 -c tcp_user_timeout=5000"
)
if DATABASE_URL:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60)}
    if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
        _options = DATABASES["default"].setdefault("OPTIONS", {})
        _options["options"] = f"{_options.get('options', '')} {CONFIG_DB_SESSION_OPTIONS}".strip()
else:
    private_dir(VAR_DIR)
    DATABASES = {
        "default": {
            # Django's SQLite backend, creating the file (and so its -wal and -shm) mode 0600.
            "ENGINE": "imp_admin.sqlite3",
            "NAME": env("SQLITE_PATH", str(VAR_DIR / "imp-admin.sqlite3")),
            # Connections are kept between requests (each worker thread keeps its own), so a
            # request does not pay for opening the file and re-reading the schema.
            "CONN_MAX_AGE": env_int("SQLITE_CONN_MAX_AGE", 300),
            "CONN_HEALTH_CHECKS": True,
            "OPTIONS": {
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; "
                "PRAGMA cache_size=-16000; PRAGMA temp_store=MEMORY; PRAGMA mmap_size=268435456;",
                # Writers take the lock up front, so two processes never deadlock
                # upgrading a read lock; a busy database is waited for, not failed.
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
            },
            # Tests that start node agents or workers need a file the processes share.
            "TEST": {"NAME": env("SQLITE_TEST_PATH")},
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = env("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(env("STATIC_ROOT", str(VAR_DIR / "static")))
WHITENOISE_AUTOREFRESH = DEBUG
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        # Hashed names need `collectstatic`; tests and DEBUG serve the files as they are.
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if env_bool("STATIC_MANIFEST", not DEBUG)
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

CRISPY_ALLOWED_TEMPLATE_PACKS = "bootstrap5"
CRISPY_TEMPLATE_PACK = "bootstrap5"
# django-tables2's Bootstrap 5 table, its rows written by imp_admin.tables (the same markup).
DJANGO_TABLES2_TEMPLATE = "tables/console.html"

AUDITLOG_INCLUDE_ALL_MODELS = False

# The REST API (/api/, docs/api.md): per-user tokens or the console's session, the console's
# permissions per role, JSON only, throttled per token.
API_THROTTLE_RATE = env("API_THROTTLE_RATE", "600/minute")
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "api.authentication.TokenAuthentication",
        "api.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["api.permissions.ConsolePermission"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PAGINATION_CLASS": "api.pagination.Pagination",
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_THROTTLE_CLASSES": ["api.throttling.TokenRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {"token": API_THROTTLE_RATE},
    "DEFAULT_SCHEMA_CLASS": "api.schema.AutoSchema",
    "EXCEPTION_HANDLER": "api.errors.exception_handler",
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "imp-admin API",
    "DESCRIPTION": "Everything the imp-admin console does, over HTTP. Authenticate with "
    "`Authorization: Bearer <token>` (My API Tokens in the console). See docs/api.md.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "HAStateEnum": "topology.choices.HAState",
        "HAReasonEnum": "topology.choices.HAReason",
        "NodeRoleEnum": "topology.choices.NodeRole",
        "UserAssignmentModeEnum": "topology.choices.UserAssignmentMode",
        "ServerActionNameEnum": "topology.models.ha.ServerActionName",
        "ServerActionStatusEnum": "topology.models.ha.ServerActionStatus",
        "AlarmNameEnum": "topology.models.ha.AlarmName",
        "ServiceNameEnum": "topology.catalog.ServiceName",
        "ServiceKindEnum": "topology.catalog.ServiceKind",
        "ServiceStatusEnum": "topology.catalog.ServiceStatus",
        "DesiredStateEnum": "topology.catalog.DesiredState",
        "ControlActionEnum": "topology.catalog.ControlAction",
        "ParticipationLevelEnum": "messaging.models.chat_settings.ParticipationLevel",
        "DatabaseTypeEnum": "messaging.models.databases.DatabaseType",
        "DatabaseCheckNameEnum": "messaging.models.databases.StatusCheckName",
        "CheckRunStateEnum": "messaging.models.databases.CheckRunState",
        "MergeDatabaseTypeEnum": "dbmerge.choices.MergeDatabaseType",
        "JobStateEnum": "dbmerge.choices.JobState",
        "JobKindEnum": "dbmerge.choices.JobKind",
        "MergeMethodEnum": "dbmerge.choices.MergeMethod",
        "FeatureTableEnum": "dbmerge.choices.FeatureTable",
        "MergeCheckNameEnum": "dbmerge.choices.CheckName",
        "AuditActionEnum": [(0, "create"), (1, "update"), (2, "delete"), (3, "access")],
    },
}

# Celery: Redis is the broker; job state lives in the config DB, not in a result backend.
REDIS_URL = env("REDIS_URL", "redis://127.0.0.1:6379/0")
CELERY_BROKER_URL = REDIS_URL
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Tests give each run its own queue so concurrent runs never take each other's tasks.
CELERY_TASK_DEFAULT_QUEUE = env("CELERY_TASK_DEFAULT_QUEUE", "imp-admin")
# A message taken by a worker that died unacknowledged (acks_late) is delivered again after the
# visibility timeout (Redis's default, one hour); the merge job runner ignores a redelivered
# job that already ended or runs elsewhere. CELERY_BROKER_KEYPREFIX gives a test its own
# broker keys (queues and the unacknowledged set alike).
CELERY_VISIBILITY_TIMEOUT = env_int("CELERY_VISIBILITY_TIMEOUT", 3600)
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": CELERY_VISIBILITY_TIMEOUT,
    # How often a worker looks for messages past the timeout (kombu's default is 10 s).
    "unacked_restore_interval": min(10, CELERY_VISIBILITY_TIMEOUT),
    "unacked_restore_throttle": 1 if CELERY_VISIBILITY_TIMEOUT < 60 else 10,
    **({"global_keyprefix": env("CELERY_BROKER_KEYPREFIX")} if env("CELERY_BROKER_KEYPREFIX") else {}),
}

# Redis pub/sub channels of the chat bus between node agents start with this prefix; test
# runs give themselves their own so concurrent runs never hear each other.
CHAT_BUS_PREFIX = env("CHAT_BUS_PREFIX", "imp-chat")

# End users' chat passwords (topology.credentials): the PBKDF2 iteration count of new SCRAM
# keys (at least 4096), and the sign-in throttle shared by every node agent through Redis: a
# user or a source address with this many failed sign-ins in a row is refused until
# SIGN_IN_THROTTLE_SECONDS have passed since its last failure.
# The demo CA (certificate and key, PEM) that signs each node's XMPP TLS certificate on first need;
# clients of the demo trust ca.pem. Production replaces the node certificates by uploading PEM.
DEMO_CA_DIR = Path(env("DEMO_CA_DIR", str(VAR_DIR / "demo-ca")))
SCRAM_ITERATIONS = max(4096, env_int("SCRAM_ITERATIONS", 4096))
SIGN_IN_FAILURES_PER_USER = env_int("SIGN_IN_FAILURES_PER_USER", 5)
SIGN_IN_FAILURES_PER_ADDRESS = env_int("SIGN_IN_FAILURES_PER_ADDRESS", 20)
SIGN_IN_THROTTLE_SECONDS = env_int("SIGN_IN_THROTTLE_SECONDS", 300)

# XEP-0198 stream resumption on the XMPP front end: how long a session whose connection
# dropped keeps its rooms and queues its stanzas for the client to resume (0 = never offered).
XMPP_RESUME_SECONDS = env_int("XMPP_RESUME_SECONDS", 300)

# Bookmarks (XEP-0402, XEP-0048) and XEP-0049 private XML storage, kept per user in the config
# DB: the most bookmarks a user may have and the most bytes one may take (as XML); the most
# other private XML elements a user may store and the most bytes each may take. A request
# beyond them is refused with a stanza error; nothing already stored is dropped.
BOOKMARKS_MAX_ITEMS = env_int("BOOKMARKS_MAX_ITEMS", 256)
BOOKMARK_MAX_BYTES = env_int("BOOKMARK_MAX_BYTES", 8 * 1024)
PRIVATE_XML_MAX_ELEMENTS = env_int("PRIVATE_XML_MAX_ELEMENTS", 32)
PRIVATE_XML_MAX_BYTES = env_int("PRIVATE_XML_MAX_BYTES", 64 * 1024)

# How long a reachability or login check of an external database may take.
EXTERNAL_DB_CHECK_TIMEOUT = env_int("EXTERNAL_DB_CHECK_TIMEOUT", 5)
# How often (seconds) Celery beat re-checks every external database; 0 turns it off.
EXTERNAL_DB_CHECK_INTERVAL = env_int("EXTERNAL_DB_CHECK_INTERVAL", 300)
# How often (seconds) Celery beat fails merge jobs whose worker stopped; 0 turns it off.
MERGE_STALE_CHECK_INTERVAL = env_int("MERGE_STALE_CHECK_INTERVAL", 60)

# Production hardening; `manage.py check --deploy` is clean with DEBUG off.
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not DEBUG)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = not DEBUG
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if env_bool("BEHIND_PROXY") else None
X_FRAME_OPTIONS = "DENY"

# --- Production: sign-in lockout, Content-Security-Policy, idle sessions ---------------------

# django-axes counts failed sign-ins on /login/ and /admin/login/ and locks a user name (or an
# address) out (HTTP 429 and the lockout page) for LOGIN_LOCKOUT_MINUTES after
# LOGIN_FAILURE_LIMIT failures in a row, as the product's credential policy does. A super
# administrator unlocks it earlier (Locked Out in the menu, or Django admin).
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("LOGIN_LOCKOUT_MINUTES", 30))
# Either a user name or an address with that many failures is locked out: an account under
# attack, or one address guessing many user names.
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = True
# A sign-in refused during a lockout does not restart it: the lockout ends on time.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_VERBOSE = False
AXES_HANDLER = "imp_admin.lockout.AuditedAxesHandler"  # writes lockouts to the audit trail
AXES_ENABLE_ADMIN = False  # imp_admin/admin.py registers its own, audited, admin

# Content-Security-Policy (django-csp): every script and style is a static file of our own;
# no inline script, no inline style, no eval. htmx is configured to match (base.html).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "font-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}

# A console session ends after SESSION_IDLE_MINUTES without a request from its administrator
# (the product's administration signs idle sessions out after 30 minutes); see
# imp_admin/sessions.py for what counts as activity.
SESSION_IDLE_TIMEOUT = env_int("SESSION_IDLE_MINUTES", 30) * 60
SESSION_COOKIE_AGE = SESSION_IDLE_TIMEOUT

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", "INFO")},
}

# --- Metrics and alarm e-mail ------------------------------------------------------------
# The console's /metrics answers a request bearing this token (Authorization: Bearer …), or
# a signed-in console user (any role); with no token set, only the latter.
METRICS_TOKEN = env("METRICS_TOKEN")
# Where each node agent's own Prometheus endpoint listens (`run_node --metrics-host`);
# loopback unless a scraper on another host needs it.
NODE_METRICS_HOST = env("NODE_METRICS_HOST", "127.0.0.1")
# SRM alarms are also e-mailed to the recipients set on System > Alarm Recipients, through
# Django's mail settings. Without EMAIL_HOST the console logs the mail instead of sending it.
EMAIL_HOST = env("EMAIL_HOST", "")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = env("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10)
EMAIL_BACKEND = env(
    "EMAIL_BACKEND",
    "django.core.mail.backends.smtp.EmailBackend" if EMAIL_HOST else "django.core.mail.backends.console.EmailBackend",
)
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", "imp-admin@localhost")
