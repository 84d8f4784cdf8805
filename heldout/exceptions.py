"""The base of every app's domain errors (the first of the two tiers in CONVENTIONS.md)."""

from __future__ import annotations


class DomainError(Exception):
    """A refusal whose `message` is safe to show the user; `code` is the stable name the API
    returns. Apps subclass it (ChallengeError, SubmissionError, AccountError)."""

    code = "domain_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
