"""Gunicorn settings for Heldout's web process:

    gunicorn -c docker/gunicorn.conf.py --bind 0.0.0.0:8000 heldout.wsgi

Workers: WEB_CONCURRENCY, default 2. Gunicorn's own records (start, worker boots, one access
line per request) go through the same JSON formatter as Django's (core/logging.py), unless
HELDOUT_LOG_FORMAT=text.
"""

import os

workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
# An 8 MB upload chunk from a slow connection outlasts gunicorn's 30 s default.
timeout = 120
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
