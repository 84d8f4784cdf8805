"""API throttles: per anonymous client address, per user, per token, and for password logins.

These live next to token authentication rather than in core.api because DRF imports its
default throttle classes while defining APIView; a module that imports views would be
imported half-initialised. Rates are read from settings.REST_FRAMEWORK at request time (not
frozen at import like DRF's own classes), so they can be tuned in tests and settings alike.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ImproperlyConfigured
from rest_framework.request import Request
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle


class _Throttle(SimpleRateThrottle):
    def get_rate(self) -> str | None:
        try:
            rate: str | None = api_settings.DEFAULT_THROTTLE_RATES[self.scope]
        except KeyError:
            raise ImproperlyConfigured(
                f"REST_FRAMEWORK['DEFAULT_THROTTLE_RATES'] has no rate for {self.scope!r}"
            ) from None
        return rate

    def _key(self, ident: str) -> str:
        return f"throttle_{self.scope}_{ident}"


class AnonThrottle(_Throttle):
    scope = "anon"

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        if request.user and request.user.is_authenticated:
            return None
        return self._key(self.get_ident(request))


class UserThrottle(_Throttle):
    """All requests of one user, whatever the credential (session or any of their tokens)."""

    scope = "user"

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        if not (request.user and request.user.is_authenticated):
            return None
        return self._key(str(request.user.pk))


class TokenThrottle(_Throttle):
    """Requests made with one API token, so one runaway script cannot use the whole budget of
    its owner."""

    scope = "token"

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        from accounts.models import ApiToken

        if not isinstance(request.auth, ApiToken):
            return None
        return self._key(str(request.auth.pk))


class LoginThrottle(_Throttle):
    """Password guesses against POST /api/v1/auth/token/, per client address."""

    scope = "login"

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        return self._key(self.get_ident(request))
