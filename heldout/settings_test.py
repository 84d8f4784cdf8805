"""Test settings: only e-mail, password hashing and the secret differ from production."""

from __future__ import annotations

import os

os.environ.setdefault("DJANGO_SECRET_KEY", "test-only-not-secret")

from heldout.settings import *  # noqa: E402,F403

EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
HELDOUT_LOG_FORMAT = "text"  # readable in pytest's captured output
LOGGING["handlers"]["console"]["formatter"] = "text"  # noqa: F405
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # noqa: F405 - WhiteNoise looks there
