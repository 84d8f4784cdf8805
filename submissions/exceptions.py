"""Domain errors of the submissions app. Every message is safe to show a participant.
(Terms not accepted is challenges.exceptions.TermsNotAccepted, the same everywhere.)"""

from __future__ import annotations

from core.exceptions import DomainError
from heldout_kernel.errors import InvalidPredictions, InvalidUpload

# The two a file can cause are the kernel's (raised at stations as here); re-exported.
__all__ = ["InvalidPredictions", "InvalidUpload", "SubmissionError"]


class SubmissionError(DomainError):
    """Base: `code` is the stable machine-readable name used by the API."""

    code, status = "submission_error", 409


class PhaseClosed(SubmissionError):
    code, status = "phase_closed", 409


class KindNotAllowed(SubmissionError):
    code, status = "kind_not_allowed", 400


class NotAMember(SubmissionError):
    code, status = "not_a_member", 403


class QuotaExceeded(SubmissionError):
    code, status = "quota_exceeded", 429


class NoteTooLong(SubmissionError):
    """A submission note past NOTE_MAX_LENGTH: the same code as any other invalid field."""

    code, status = "invalid_input", 400




class UploadLimit(SubmissionError):
    """Too many unfinished uploads, or too many bytes in them, for one person or team."""

    code, status = "upload_limit", 429


class StorageFull(SubmissionError):
    """The platform's disk is below its free-space floor; nothing new is accepted."""

    code, status = "insufficient_storage", 507
