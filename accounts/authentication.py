"""DRF authentication by personal API token: `Authorization: Token <key>`.

Model imports are deferred: DRF imports this module while building its APIView class, which
can happen before the app registry is ready.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.plumbing import build_bearer_security_scheme_object
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.request import Request

KEYWORD = "Token"


class TokenAuthentication(BaseAuthentication):
    """Returns (user, ApiToken). A request with a bad token is refused outright (401), never
    treated as anonymous, so a script with a revoked token learns it at once."""

    def authenticate(self, request: Request) -> tuple[Any, Any] | None:
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() != KEYWORD.lower().encode():
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed(
                "Invalid token header: use “Authorization: Token <key>”."
            )
        try:
            key = parts[1].decode("ascii")
        except UnicodeError:
            raise exceptions.AuthenticationFailed("Invalid token.") from None
        return self._credentials(key)

    def _credentials(self, key: str) -> tuple[Any, Any]:
        from accounts import selectors, services

        token = selectors.active_token_for_key(key=key)
        if token is None:
            raise exceptions.AuthenticationFailed("Invalid or revoked token.")
        if not token.user.is_active:
            raise exceptions.AuthenticationFailed("This account is disabled.")
        services.token_touch(token=token)
        return token.user, token

    def authenticate_header(self, request: Request) -> str:
        # Makes DRF answer 401 (with WWW-Authenticate) rather than 403 to anonymous requests.
        return f'{KEYWORD} realm="api"'


class TokenScheme(OpenApiAuthenticationExtension):  # type: ignore[no-untyped-call]
    """Documents TokenAuthentication in the OpenAPI schema (registered on import)."""

    target_class = TokenAuthentication
    name = "tokenAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return build_bearer_security_scheme_object(
            header_name="Authorization", token_prefix="Token")
