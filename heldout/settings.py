"""Settings, all from environment variables (see the README's configuration table).

With nothing set you get the embedded default: SQLite, a filesystem Celery broker and files
under ./var, so `make demo` needs no services. DATABASE_URL and REDIS_URL switch to
PostgreSQL and Redis. Bad values stop start-up (heldout.env raises ImproperlyConfigured).
"""

from __future__ import annotations

from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from heldout.env import env_bool, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("HELDOUT_VAR_DIR") or BASE_DIR / "var")

DEBUG = env_bool("DJANGO_DEBUG", False)
SECRET_KEY = env_str("DJANGO_SECRET_KEY") or ""
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("Set DJANGO_SECRET_KEY (or DJANGO_DEBUG=1 for development).")
    SECRET_KEY = "development-only-not-secret"
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]", "testserver"])
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
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
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

EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "Heldout <noreply@heldout.invalid>")

LANGUAGE_CODE = "en-gb"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_ROOT = VAR_DIR / "media"
MEDIA_URL = "media/"
# Hidden evaluation data, submissions and public challenge files live here. No URL maps
# to this folder; public files are streamed by a view that checks terms acceptance.
PRIVATE_ROOT = Path(env_str("HELDOUT_PRIVATE_ROOT") or VAR_DIR / "private")

SESSION_COOKIE_SECURE = not DEBUG and env_bool("HELDOUT_SECURE_COOKIES", True)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE

# --- Celery -----------------------------------------------------------------------------
REDIS_URL = env_str("REDIS_URL")
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
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ROUTES = {"scoring.tasks.evaluate_submission": {"queue": "scoring"}}
CELERY_TASK_ALWAYS_EAGER = env_bool("HELDOUT_CELERY_EAGER", False)
CELERY_BEAT_SCHEDULE = {
    "sweep-stuck-runs": {"task": "scoring.tasks.sweep_stuck_runs", "schedule": 60.0},
    "refresh-closed-leaderboards": {
        "task": "leaderboards.tasks.refresh_closed_leaderboards", "schedule": 60.0,
    },
    "expire-uploads": {"task": "submissions.tasks.expire_uploads", "schedule": 3600.0},
}

# --- Scoring ----------------------------------------------------------------------------
HELDOUT_BACKEND = env_str("HELDOUT_BACKEND", "scoring.backends.docker.DockerBackend")
HELDOUT_MAX_ATTEMPTS = env_int("HELDOUT_MAX_ATTEMPTS", 3, minimum=1)
HELDOUT_CONTAINER_PREFIX = env_str("HELDOUT_CONTAINER_PREFIX", "heldout-run-")
HELDOUT_MAX_IMAGE_BYTES = env_int("HELDOUT_MAX_IMAGE_BYTES", 4 * 1024**3, minimum=1)
HELDOUT_UPLOAD_EXPIRY_HOURS = env_int("HELDOUT_UPLOAD_EXPIRY_HOURS", 24, minimum=1)
HELDOUT_DATA_DIR = env_str("HELDOUT_DATA_DIR")
HELDOUT_SUBGROUP_MIN_CASES = env_int("HELDOUT_SUBGROUP_MIN_CASES", 20, minimum=1)
HELDOUT_SUBGROUP_MIN_POSITIVES = env_int("HELDOUT_SUBGROUP_MIN_POSITIVES", 10, minimum=1)
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024**2
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024**2

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
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "core.api.exception_handler",
    "DEFAULT_THROTTLE_CLASSES": [
        "accounts.throttling.AnonThrottle",
        "accounts.throttling.UserThrottle",
        "accounts.throttling.TokenThrottle",
    ],
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

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("HELDOUT_LOG_LEVEL", "INFO")},
}
