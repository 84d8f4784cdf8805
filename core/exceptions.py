"""The base of every app's domain errors (the first of the two tiers in CONVENTIONS.md).

Each subclass names its stable `code` and the HTTP `status` the API answers with, once, here
in the class: the API's error handler, its schema and its reference page all read them from
the classes, so a refusal has the same code and status wherever it is raised.
"""

from __future__ import annotations

from heldout_kernel.errors import DomainError

__all__ = ["DomainError", "RequestTooLarge", "domain_error_codes"]


def domain_error_codes() -> dict[str, int]:
    """Every code a DomainError subclass declares, with its status (imported apps only)."""
    codes: dict[str, int] = {}
    pending: list[type[DomainError]] = [DomainError]
    while pending:
        error = pending.pop()
        pending.extend(error.__subclasses__())
        if error is not DomainError:
            codes[error.code] = error.status
    return codes


class RequestTooLarge(DomainError):
    """A request body above its endpoint's limit (core.middleware.BodySizeLimit refuses it
    from its Content-Length, before reading it; the API's handler answers Django's own
    RequestDataTooBig with it too)."""

    code, status = "request_too_large", 413
