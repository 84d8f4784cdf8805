"""Reads for API tokens."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from accounts.models import ApiToken, hash_key


def tokens_for_user(*, user: Any) -> QuerySet[ApiToken]:
    return ApiToken.objects.filter(user=user).order_by("revoked_at", "-created_at")


def active_token_count(*, user: Any) -> int:
    return ApiToken.objects.filter(user=user, revoked_at__isnull=True).count()


def active_token_for_key(*, key: str) -> ApiToken | None:
    """The unrevoked token whose key hashes to the stored hash, with its user."""
    return (
        ApiToken.objects.select_related("user")
        .filter(key_hash=hash_key(key), revoked_at__isnull=True)
        .first()
    )
