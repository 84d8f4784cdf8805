"""Settings, all from environment variables (see the README's configuration table).

With nothing set you get the embedded default: SQLite, a filesystem Celery broker and files
under ./var, so `make demo` needs no services. DATABASE_URL and REDIS_URL switch to
PostgreSQL and Redis. Bad values stop start-up (heldout.env raises ImproperlyConfigured).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from heldout.env import env_bool, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
# Local state: the SQLite database, the filesystem broker, static files, upload temp files.
VAR_DIR = Path(env_str("HELDOUT_VAR_DIR") or BASE_DIR / "var")

# Development mode (make demo sets 1): no secrets needed, tracebacks shown. Never in
# production (check --deploy refuses it).
DEBUG = env_bool("DJANGO_DEBUG", False)
# Django's signing key (sessions, CSRF, password resets); required when DEBUG is off.
SECRET_KEY = env_str("DJANGO_SECRET_KEY") or ""
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("Set DJANGO_SECRET_KEY (or DJANGO_DEBUG=1 for development).")
    SECRET_KEY = "development-only-not-secret"


def _audit_key() -> str:
    """The audit trail's signing key (HMAC-SHA256 of every event and checkpoint). Kept apart
    from SECRET_KEY, so rotating sessions never breaks the trail, and never in the database,
    so whoever can write the database cannot sign what they wrote."""
    key = env_str("HELDOUT_AUDIT_KEY") or ""
    # Or the file holding it (mode 0600: check --deploy refuses one others may read).
    key_file = env_str("HELDOUT_AUDIT_KEY_FILE")
    if not key and key_file:
        try:
            key = Path(key_file).read_text().strip()
        except OSError as error:
            raise ImproperlyConfigured(
                f"HELDOUT_AUDIT_KEY_FILE={key_file!r} cannot be read: {error}") from None
    if not key and DEBUG:
        key = _development_audit_key(VAR_DIR / "audit.key")
    if not key:
        raise ImproperlyConfigured(
            "Set HELDOUT_AUDIT_KEY or HELDOUT_AUDIT_KEY_FILE (or DJANGO_DEBUG=1 for "
            "development): the key that signs the audit trail, e.g. "
            "python3 -c 'import secrets; print(secrets.token_urlsafe(32))'.")
    if len(key) < 32:
        raise ImproperlyConfigured("HELDOUT_AUDIT_KEY must be at least 32 characters.")
    if key == SECRET_KEY:
        raise ImproperlyConfigured("HELDOUT_AUDIT_KEY must differ from DJANGO_SECRET_KEY.")
    return key


def _development_audit_key(path: Path) -> str:
    """Made once (mode 0600) and kept: a new key would make every signed event fail."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        draft = path.with_name(f"{path.name}.{os.getpid()}")
        descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(secrets.token_urlsafe(32) + "\n")
        try:
            os.link(draft, path)  # atomic, and fails if another process made it first
        except FileExistsError:
            pass
        finally:
            draft.unlink()
    return path.read_text().strip()


HELDOUT_AUDIT_KEY = _audit_key()
HELDOUT_AUDIT_KEY_FILE = env_str("HELDOUT_AUDIT_KEY_FILE")  # for the deploy check of its mode
# Signed checkpoints of the audit trail's head, appended (core.audit): outside the
# database, so a rewritten or truncated trail no longer matches them.
HELDOUT_AUDIT_CHECKPOINT_FILE = Path(
    env_str("HELDOUT_AUDIT_CHECKPOINT_FILE") or VAR_DIR / "audit-checkpoints.jsonl")
# How often beat writes a checkpoint (manage.py audit_checkpoint writes one at once).
HELDOUT_AUDIT_CHECKPOINT_SECONDS = env_int("HELDOUT_AUDIT_CHECKPOINT_SECONDS", 300, minimum=10)

# The host names this site answers to.
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]", "testserver"])
# Origins (https://host) trusted for form posts besides the site's own address.
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "allauth",
    "allauth.account",
    "rest_framework",
    "drf_spectacular",
    "core",
    "accounts",
    "challenges",
    "submissions",
    "scoring",
    "leaderboards",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Static files without a separate server (gunicorn in production); see STORAGES.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # 413 from Content-Length before any body is read (after the user is known: the admin's
    # limit is for staff; before every process_view: CSRF's reads POST bodies).
    "core.middleware.BodySizeLimit",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
]

ROOT_URLCONF = "heldout.urls"
WSGI_APPLICATION = "heldout.wsgi.application"
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
            ],
        },
    },
]

# The database, e.g. postgres://user@host:5432/heldout (production: PostgreSQL); unset:
# SQLite in HELDOUT_VAR_DIR.
_database_url = env_str("DATABASE_URL")
if _database_url:
    DATABASES = {"default": dj_database_url.parse(_database_url, conn_max_age=60)}
else:
    VAR_DIR.mkdir(parents=True, exist_ok=True)  # SQLite cannot create its folder
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": VAR_DIR / "db.sqlite3",
            # SQLite ignores select_for_update; IMMEDIATE transactions take the write lock
            # up front, so quota checks stay serialised in the embedded default too.
            "OPTIONS": {"timeout": 30, "transaction_mode": "IMMEDIATE"},
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_REDIRECT_URL = "challenges:list"
LOGIN_URL = "account_login"
ACCOUNT_LOGIN_METHODS = {"username", "email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "username*", "password1*", "password2*"]
ACCOUNT_UNIQUE_EMAIL = True
# Verification is mandatory in production; development may relax it explicitly.
ACCOUNT_EMAIL_VERIFICATION = (
    env_str("HELDOUT_EMAIL_VERIFICATION", "optional") if DEBUG else "mandatory"
)
ACCOUNT_EMAIL_SUBJECT_PREFIX = "[Heldout] "

# How mail leaves: any Django e-mail backend (the console's prints it; SMTP for real mail).
EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
# The SMTP server.
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
# The SMTP server's port.
EMAIL_PORT = env_int("EMAIL_PORT", 25, minimum=1)
# The SMTP account (empty: none).
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
# The SMTP account's password.
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
# STARTTLS to the SMTP server.
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
# The sender of the platform's mails.
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "Heldout <noreply@heldout.invalid>")

LANGUAGE_CODE = "en-gb"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
# Where collectstatic puts the static files WhiteNoise serves.
STATIC_ROOT = Path(env_str("HELDOUT_STATIC_ROOT") or VAR_DIR / "static")
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    # Compressed copies made by collectstatic; no manifest, so a page renders even before
    # collectstatic has run (development, tests).
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = DEBUG  # development serves straight from static/
# Django's multipart temporary files go here, where the sweeper removes what a killed web
# process left behind.
FILE_UPLOAD_TEMP_DIR = VAR_DIR / "upload-tmp"
FILE_UPLOAD_TEMP_DIR.mkdir(parents=True, exist_ok=True)
MEDIA_ROOT = VAR_DIR / "media"
MEDIA_URL = "media/"
# Hidden evaluation data, submissions and public challenge files live here. No URL maps
# to this folder; public files are streamed by a view that checks terms acceptance.
PRIVATE_ROOT = Path(env_str("HELDOUT_PRIVATE_ROOT") or VAR_DIR / "private")
# The documentation site (`make docs` builds it here), served at /docs/.
HELDOUT_DOCS_DIR = Path(env_str("HELDOUT_DOCS_DIR") or BASE_DIR / "site")

# With DEBUG off, session and CSRF cookies are sent over HTTPS only; 0 only for a trial
# over plain HTTP.
SESSION_COOKIE_SECURE = not DEBUG and env_bool("HELDOUT_SECURE_COOKIES", True)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
# Set only where a reverse proxy is the one way in and overwrites X-Forwarded-Proto and
# X-Forwarded-For (docker/compose.yml's nginx): the scheme (https links, CSRF's Referer check)
# and the throttles' client address are then taken from it. Elsewhere both headers are the
# client's own words and are ignored (gunicorn's own scheme handling is off too).
HELDOUT_BEHIND_PROXY = env_bool("HELDOUT_BEHIND_PROXY", False)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if HELDOUT_BEHIND_PROXY else None

# --- Celery and the cache ---------------------------------------------------------------
# The Celery broker, e.g. redis://host:6379/0; unset: a filesystem broker in HELDOUT_VAR_DIR
# (one machine only).
REDIS_URL = env_str("REDIS_URL")
# Throttle counters and the leaderboard computation lock must be shared by every web node and
# worker: Redis when there is one, else the process's own memory (embedded default). Give the
# cache its own Redis database (HELDOUT_CACHE_URL): clearing a cache empties its database.
CACHE_URL = env_str("HELDOUT_CACHE_URL") or REDIS_URL
if CACHE_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                          "LOCATION": CACHE_URL, "KEY_PREFIX": "heldout"}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
# At least the longest time limit of any phase (limits.seconds): the Redis broker redelivers
# an unacknowledged task only well after it (below).
HELDOUT_MAX_RUN_SECONDS = env_int("HELDOUT_MAX_RUN_SECONDS", 3600, minimum=10)
if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    # Redis redelivers an unacknowledged task after this; it must outlast the longest run,
    # or a slow model would be started twice.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 2 * HELDOUT_MAX_RUN_SECONDS + 600}
else:
    _broker_dir = VAR_DIR / "broker"
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "out"),
        "data_folder_out": str(_broker_dir / "out"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
# Celery logs through Django's LOGGING (structured JSON lines), not its own text format.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "default"
# Both need a Docker engine, which scoring workers have and web nodes may not.
CELERY_TASK_ROUTES = {"scoring.tasks.evaluate_submission": {"queue": "scoring"},
                      "scoring.tasks.export_runtime_image": {"queue": "scoring"}}
# Run tasks in the requesting process, without a worker (tests and scripts only).
CELERY_TASK_ALWAYS_EAGER = env_bool("HELDOUT_CELERY_EAGER", False)
CELERY_BEAT_SCHEDULE = {
    # Leases are renewed by the running worker; the sweeper notices a dead one within about
    # HELDOUT_LEASE_SECONDS plus this period.
    "sweep-stuck-runs": {"task": "scoring.tasks.sweep_stuck_runs", "schedule": 20.0},
    "refresh-closed-leaderboards": {
        "task": "leaderboards.tasks.refresh_closed_leaderboards", "schedule": 60.0,
    },
    "expire-uploads": {"task": "submissions.tasks.expire_uploads", "schedule": 3600.0},
    # The audit trail's head, signed, in a file the database cannot change (core.audit).
    "audit-checkpoint": {
        "task": "core.tasks.audit_checkpoint",
        "schedule": float(HELDOUT_AUDIT_CHECKPOINT_SECONDS),
    },
}

# --- Scoring ----------------------------------------------------------------------------
# The container backend, by dotted path (check --deploy refuses one without a sandbox).
HELDOUT_BACKEND = env_str("HELDOUT_BACKEND", "heldout_kernel.sandbox.docker.DockerBackend")
# The OCI runtime models run under: auto (gVisor's runsc where the engine has it and a probe
# run works, else runc with host-wide /proc and /sys files masked), runsc or runc. Checked
# here; the Django-free backend (and every data station) reads the same variable itself.
HELDOUT_SANDBOX_RUNTIME = env_str("HELDOUT_SANDBOX_RUNTIME", "auto")
if HELDOUT_SANDBOX_RUNTIME not in ("auto", "runsc", "runc"):
    raise ImproperlyConfigured("HELDOUT_SANDBOX_RUNTIME must be auto, runsc or runc.")
# Attempts at an evaluation whose worker vanished before it ends as internal_error.
HELDOUT_MAX_ATTEMPTS = env_int("HELDOUT_MAX_ATTEMPTS", 3, minimum=1)
# A queued submission whose evaluation message has waited this long without a claim is
# handed to the broker again (a restarted broker may have lost it); see evaluations_redispatch.
HELDOUT_REDISPATCH_SECONDS = env_int("HELDOUT_REDISPATCH_SECONDS", 600, minimum=60)
# Names of model containers and work folders: one prefix per platform on an engine (the
# sweeper removes what starts with it).
HELDOUT_CONTAINER_PREFIX = env_str("HELDOUT_CONTAINER_PREFIX", "heldout-run-")
# The largest image archive a team may upload.
HELDOUT_MAX_IMAGE_BYTES = env_int("HELDOUT_MAX_IMAGE_BYTES", 4 * 1024**3, minimum=1)
# The runtime image as a download for participants' local tests (heldout_kernel.runtime_image):
# written once per recipe by a worker (it needs the engine) and served by the web nodes, so under
# the private root, which both share and no URL maps to (a view checks the terms).
HELDOUT_RUNTIME_ARCHIVE_DIR = Path(
    env_str("HELDOUT_RUNTIME_ARCHIVE_DIR") or PRIVATE_ROOT / "runtime-images")
# An unfinished resumable upload idle this long is removed with its bytes.
HELDOUT_UPLOAD_EXPIRY_HOURS = env_int("HELDOUT_UPLOAD_EXPIRY_HOURS", 24, minimum=1)
# Where the demo finds the real data sets (default ../shared/data; else synthetic ones).
HELDOUT_DATA_DIR = env_str("HELDOUT_DATA_DIR")
# Scheme and host for absolute links in e-mails sent outside a request (notifications).
HELDOUT_SITE_URL = env_str("HELDOUT_SITE_URL", "http://127.0.0.1:8000")
# Subgroup cells with fewer cases are suppressed in every board, page, export and API.
HELDOUT_SUBGROUP_MIN_CASES = env_int("HELDOUT_SUBGROUP_MIN_CASES", 20, minimum=1)
# Subgroup cells with fewer positive cases are suppressed likewise.
HELDOUT_SUBGROUP_MIN_POSITIVES = env_int("HELDOUT_SUBGROUP_MIN_POSITIVES", 10, minimum=1)
# Teams learn how a run on hidden data ended (status, scores, board, e-mail, quota) at the end
# of the period it ended in, never sooner: its end time is known only to this many seconds.
HELDOUT_RELEASE_SECONDS = env_int("HELDOUT_RELEASE_SECONDS", 60, minimum=1)
# A running evaluation holds a lease that its worker renews every HELDOUT_HEARTBEAT_SECONDS;
# past the lease the sweeper takes the evaluation over (kills its container, queues it again).
HELDOUT_LEASE_SECONDS = env_int("HELDOUT_LEASE_SECONDS", 60, minimum=5)
# How often a running evaluation renews its lease (at most half of it).
HELDOUT_HEARTBEAT_SECONDS = env_int("HELDOUT_HEARTBEAT_SECONDS", 15, minimum=1)
if HELDOUT_HEARTBEAT_SECONDS * 2 > HELDOUT_LEASE_SECONDS:
    raise ImproperlyConfigured("HELDOUT_HEARTBEAT_SECONDS must be at most half the lease.")
# A data station's job lease (the station renews it every third of it); a station not heard
# from for HELDOUT_STATION_OFFLINE_SECONDS shows as offline ("waiting for station X").
HELDOUT_STATION_LEASE_SECONDS = env_int("HELDOUT_STATION_LEASE_SECONDS", 60, minimum=3)
# A station not heard from this long shows as offline ("waiting for station X").
HELDOUT_STATION_OFFLINE_SECONDS = env_int("HELDOUT_STATION_OFFLINE_SECONDS", 60, minimum=5)
# Engine errors (Docker restarting) are retried this many times, with backoff, before
# a run ends as internal_error.
HELDOUT_ENGINE_RETRIES = env_int("HELDOUT_ENGINE_RETRIES", 3, minimum=0)
# Resumable uploads: caps per user and per team on what may be open at once, and a floor of
# free disk below which new uploads are refused.
HELDOUT_MAX_OPEN_UPLOADS_PER_USER = env_int("HELDOUT_MAX_OPEN_UPLOADS_PER_USER", 3, minimum=1)
# Unfinished resumable uploads one team may hold at once.
HELDOUT_MAX_OPEN_UPLOADS_PER_TEAM = env_int("HELDOUT_MAX_OPEN_UPLOADS_PER_TEAM", 6, minimum=1)
# Bytes declared by one person's unfinished uploads.
HELDOUT_MAX_STAGED_BYTES_PER_USER = env_int(
    "HELDOUT_MAX_STAGED_BYTES_PER_USER", 8 * 1024**3, minimum=1)
# Bytes declared by one team's unfinished uploads.
HELDOUT_MAX_STAGED_BYTES_PER_TEAM = env_int(
    "HELDOUT_MAX_STAGED_BYTES_PER_TEAM", 16 * 1024**3, minimum=1)
# No upload starts when free disk would fall below this (insufficient_storage, 507).
HELDOUT_MIN_FREE_DISK_BYTES = env_int("HELDOUT_MIN_FREE_DISK_BYTES", 10 * 1024**3, minimum=0)
# Image archives are unpacked while streaming: at most this many bytes, and at most this
# many times their compressed size.
HELDOUT_MAX_IMAGE_UNPACKED_BYTES = env_int(
    "HELDOUT_MAX_IMAGE_UNPACKED_BYTES", 16 * 1024**3, minimum=1)
# An image archive unpacks to at most this many times its compressed size.
HELDOUT_MAX_IMAGE_RATIO = env_int("HELDOUT_MAX_IMAGE_RATIO", 50, minimum=1)
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024**2
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024**2
# Request bodies (core.middleware.BodySizeLimit): a Content-Length above the endpoint's limit
# is answered 413 before the body is read. JSON and forms are small; uploads are not: the
# CLI's resumable-upload chunks are 8 MB, a direct submission is at most the largest upload
# of any kind (image archives; bundles 500 MB and predictions 200 MB, in
# heldout_kernel.validation.UploadLimits) plus its multipart envelope, a station's answer holds
# resample vectors. The admin's limit applies to staff only: bundles, evaluation sets and
# baselines, an image archive and its form the largest (as docker/nginx/nginx.conf's).
HELDOUT_MAX_REQUEST_BYTES = env_int("HELDOUT_MAX_REQUEST_BYTES", 1024**2, minimum=64 * 1024)
# One chunk of a resumable upload (the clients send 8 MB).
HELDOUT_MAX_CHUNK_REQUEST_BYTES = env_int(
    "HELDOUT_MAX_CHUNK_REQUEST_BYTES", 10 * 1024**2, minimum=1024**2)
# A data station's answer (it holds resample vectors).
HELDOUT_MAX_STATION_REQUEST_BYTES = env_int(
    "HELDOUT_MAX_STATION_REQUEST_BYTES", 32 * 1024**2, minimum=1024**2)
# Uploads in the admin (staff only): bundles, evaluation sets, baselines.
HELDOUT_MAX_ADMIN_REQUEST_BYTES = env_int(
    "HELDOUT_MAX_ADMIN_REQUEST_BYTES", HELDOUT_MAX_IMAGE_BYTES + 4 * 1024**2, minimum=1024**2)
# A direct (one-request) submission's file; larger ones go through the resumable upload,
# which checks membership, terms, window, quota and disk before any byte is sent.
HELDOUT_MAX_DIRECT_UPLOAD_BYTES = env_int(
    "HELDOUT_MAX_DIRECT_UPLOAD_BYTES", 64 * 1024**2, minimum=1024**2)
HELDOUT_MAX_SUBMISSION_REQUEST_BYTES = HELDOUT_MAX_DIRECT_UPLOAD_BYTES + 1024**2
HELDOUT_REQUEST_LIMITS = {  # URL name -> bytes; every other endpoint: HELDOUT_MAX_REQUEST_BYTES
    "api:upload-detail": HELDOUT_MAX_CHUNK_REQUEST_BYTES,
    "api:submission-list": HELDOUT_MAX_SUBMISSION_REQUEST_BYTES,
    "submissions:upload": HELDOUT_MAX_SUBMISSION_REQUEST_BYTES,
    "api:station-result": HELDOUT_MAX_STATION_REQUEST_BYTES,
}

# The REST API (/api/v1/, see heldout/api.py and core/api.py). Token first, so that an
# anonymous request is answered 401 with a WWW-Authenticate header; the session serves the
# browser (with CSRF).
# Throttles count in the default cache: give every web node a shared cache (Redis) in
# production, or each process counts on its own.
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["core.parsers.JSONParser"],  # DRF's, refusing NUL
    "DEFAULT_PAGINATION_CLASS": "core.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    # The client's address for the throttles: the proxy's X-Forwarded-For, else the peer.
    "NUM_PROXIES": 1 if HELDOUT_BEHIND_PROXY else 0,
    "EXCEPTION_HANDLER": "core.api.exception_handler",
    "DEFAULT_THROTTLE_CLASSES": [
        "accounts.throttling.AnonThrottle",
        "accounts.throttling.UserThrottle",
        "accounts.throttling.TokenThrottle",
    ],
    # Requests per period: anonymous clients (by address), each user, each token, and
    # requests for a token (by address); more answer 429 throttled.
    "DEFAULT_THROTTLE_RATES": {
        "anon": env_str("HELDOUT_API_RATE_ANON", "60/minute"),
        "user": env_str("HELDOUT_API_RATE_USER", "600/minute"),
        "token": env_str("HELDOUT_API_RATE_TOKEN", "300/minute"),
        "login": env_str("HELDOUT_API_RATE_LOGIN", "10/minute"),
    },
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Heldout API",
    "DESCRIPTION": (
        "Challenges, teams, submissions and leaderboards of Heldout. Authenticate with "
        "`Authorization: Token <key>` (create a token on your profile page or with "
        "POST /api/v1/auth/token/). Errors are JSON `{\"code\": ..., \"detail\": ...}` "
        "with a stable `code`."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    "PATH_CONVERTER_OVERRIDES": {"slug": {"type": "string", "pattern": "^[-a-zA-Z0-9_]+$"}},
    "ENUM_NAME_OVERRIDES": {
        "SubmissionKindEnum": "challenges.models.Phase.Kind",
        "SubmissionStatusEnum": "submissions.models.Submission.Status",
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "core.api.document_errors",
    ],
}

# Structured logs: one JSON object a line (HELDOUT_LOG_FORMAT=json, the default without
# DEBUG), or plain text for people at a terminal.
HELDOUT_LOG_FORMAT = env_str("HELDOUT_LOG_FORMAT", "text" if DEBUG else "json")
if HELDOUT_LOG_FORMAT not in ("json", "text"):
    raise ImproperlyConfigured("HELDOUT_LOG_FORMAT must be json or text.")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "json": {"()": "core.logging.JsonFormatter"},
        "text": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler",
                             "formatter": HELDOUT_LOG_FORMAT}},
    # The least severe log level written (DEBUG, INFO, WARNING, ...).
    "root": {"handlers": ["console"], "level": env_str("HELDOUT_LOG_LEVEL", "INFO")},
}
# Whether /healthz asks the Docker engine and for the runtime image (worker hosts; web nodes
# without an engine set 0).
HELDOUT_HEALTH_CHECK_ENGINE = env_bool("HELDOUT_HEALTH_CHECK_ENGINE", True)
