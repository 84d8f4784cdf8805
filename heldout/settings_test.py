"""Test settings: only e-mail, password hashing, the secrets and per-database names differ
from production."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("DJANGO_SECRET_KEY", "test-only-not-secret")
# In os.environ, not only here: worker and manage.py subprocesses of tests inherit it.
os.environ.setdefault("HELDOUT_AUDIT_KEY", "test-only-audit-key-not-secret-0123456789")

from heldout.settings import *  # noqa: E402,F403

EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
HELDOUT_LOG_FORMAT = "text"  # readable in pytest's captured output
LOGGING["handlers"]["console"]["formatter"] = "text"  # noqa: F405
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # noqa: F405 - WhiteNoise looks there

# Containers and work folders named per test database: a test session's sweeps then never
# take a demo's (or another session's) containers and folders on the same engine for its own
# leftovers. Worker subprocesses started by tests get the test database ("test_" + name).
HELDOUT_CONTAINER_PREFIX = os.environ.get(
    "HELDOUT_CONTAINER_PREFIX",
    f"heldout-t-{str(DATABASES['default']['NAME']).removeprefix('test_')}-")  # noqa: F405
# Likewise the audit checkpoints (tests of them use their own file): another session's
# checkpoints would not match this session's chain.
_database = Path(str(DATABASES["default"]["NAME"])).name.removeprefix("test_")  # noqa: F405
HELDOUT_AUDIT_CHECKPOINT_FILE = VAR_DIR / f"audit-checkpoints-{_database}.jsonl"  # noqa: F405
