"""Personal API tokens for scripts and the `heldout` CLI.

Only a SHA-256 hash of each key is stored: the plaintext is shown once, when the token is
created, and a leaked database dump cannot be replayed against the API. Keys are 256 random
bits, so an unsalted fast hash is enough (there is nothing to brute-force, unlike passwords).
"""

from __future__ import annotations

import hashlib

from django.conf import settings
from django.db import models

KEY_PREFIX = "hld_"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class ApiToken(models.Model):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=100, help_text="What the token is for, e.g. “laptop CLI”.")
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    prefix = models.CharField(
        max_length=16, editable=False, help_text="First characters of the key, for recognition."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API token"
        constraints = [
            models.CheckConstraint(condition=~models.Q(name=""), name="api_token_named"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None
