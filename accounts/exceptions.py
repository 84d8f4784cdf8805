"""Domain errors of the accounts app. Every message is safe to show the user."""

from __future__ import annotations


class AccountError(Exception):
    code = "account_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidCredentials(AccountError):
    code = "invalid_credentials"


class EmailNotVerified(AccountError):
    code = "email_not_verified"


class TokenLimitReached(AccountError):
    code = "token_limit"


class TokenNotFound(AccountError):
    code = "not_found"
