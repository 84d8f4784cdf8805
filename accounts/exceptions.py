"""Domain errors of the accounts app. Every message is safe to show the user."""

from __future__ import annotations

from heldout.exceptions import DomainError


class AccountError(DomainError):
    code = "account_error"


class InvalidCredentials(AccountError):
    code = "invalid_credentials"


class EmailNotVerified(AccountError):
    code = "email_not_verified"


class TokenLimitReached(AccountError):
    code = "token_limit"


class TokenNotFound(AccountError):
    code = "not_found"
