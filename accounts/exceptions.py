"""Domain errors of the accounts app. Every message is safe to show the user."""

from __future__ import annotations

from core.exceptions import DomainError


class AccountError(DomainError):
    code, status = "account_error", 400


class InvalidCredentials(AccountError):
    code, status = "invalid_credentials", 400


class EmailNotVerified(AccountError):
    code, status = "email_not_verified", 403


class TokenLimitReached(AccountError):
    code, status = "token_limit", 409


class TokenNotFound(AccountError):
    code, status = "not_found", 404
