"""The kernel's errors: the base of every domain error, and the two a file can cause.

`DomainError` is a refusal whose `message` is safe to show; `code` is its stable name and
`status` the HTTP status the platform's API answers with (the platform's apps subclass it,
core.exceptions re-exports it). Kept here, below the platform, because the kernel raises
the file errors itself: at a station as in the central worker.
"""

from __future__ import annotations


class DomainError(Exception):
    """A refusal whose `message` is safe to show the user; `code` is the stable name the API
    returns and `status` its HTTP status."""

    code = "domain_error"
    status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidUpload(DomainError):
    """The uploaded file is unusable (bad zip, bad archive, bad CSV shape, too large)."""

    code, status = "invalid_upload", 400


class InvalidPredictions(DomainError):
    """What a model wrote does not follow the container contract."""

    code, status = "invalid_output", 400
