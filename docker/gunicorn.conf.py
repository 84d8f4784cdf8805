"""Gunicorn settings for Heldout's web process:

    gunicorn -c docker/gunicorn.conf.py --bind 0.0.0.0:8000 heldout.wsgi

Workers: WEB_CONCURRENCY, default 2, of gunicorn's sync class: each serves one request at a
time and reads it from its socket itself, so a client that sends or reads slowly holds a worker
for as long as it likes, up to `timeout`. Production puts nginx in front (docker/compose.yml,
docker/nginx/nginx.conf), which reads each request whole first; never expose these workers to
clients directly. Threads (gthread) would only raise the number of slow clients needed, one
per thread.

Gunicorn's own records (start, worker boots, one access line per request) go through the same
JSON formatter as Django's (core/logging.py), unless HELDOUT_LOG_FORMAT=text.
"""

import os

workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
# The longest request a worker may take: finishing a large upload (hashing, checks) takes a
# while, and without a proxy in front an 8 MB chunk from a slow connection arrives slowly.
timeout = 120
# Django alone decides the scheme, from X-Forwarded-Proto only where HELDOUT_BEHIND_PROXY says
# a proxy sets it (heldout/settings.py). Gunicorn would otherwise believe that header from
# loopback (FORWARDED_ALLOW_IPS), from any client on this host.
secure_scheme_headers: dict[str, str] = {}
# The heartbeat file in memory: a container's /tmp may be a slow overlay file system.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None
# The control socket is for interactive use; several instances on a host would share its path.
control_socket_disable = True
accesslog = "-"

# Same default as heldout/settings.py: JSON unless DJANGO_DEBUG is on.
_debug = os.environ.get("DJANGO_DEBUG", "0").strip().lower() in {"1", "true", "yes", "on"}
if os.environ.get("HELDOUT_LOG_FORMAT", "text" if _debug else "json") == "json":
    # Replaces gunicorn's default handlers; Django's LOGGING takes the root logger over when
    # the application loads, with the same formatter, and gunicorn's loggers propagate to it.
    logconfig_dict = {
        "formatters": {"json": {"()": "core.logging.JsonFormatter"}},
        "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "json",
                                 "stream": "ext://sys.stderr"}},
        "root": {"level": "INFO", "handlers": ["console"]},
        "loggers": {
            "gunicorn.error": {"level": "INFO", "handlers": [], "propagate": True},
            "gunicorn.access": {"level": "INFO", "handlers": [], "propagate": True},
        },
    }
