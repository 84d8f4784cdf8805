"""Domain errors of the submissions app. Every message is safe to show a participant."""

from __future__ import annotations

from heldout.exceptions import DomainError


class SubmissionError(DomainError):
    """Base: `code` is the stable machine-readable name used by the API."""

    code = "submission_error"


class PhaseClosed(SubmissionError):
    code = "phase_closed"


class KindNotAllowed(SubmissionError):
    code = "kind_not_allowed"


class NotAMember(SubmissionError):
    code = "not_a_member"


class TermsNotAccepted(SubmissionError):
    code = "terms_not_accepted"


class QuotaExceeded(SubmissionError):
    code = "quota_exceeded"


class InvalidUpload(SubmissionError):
    """The uploaded file is unusable (bad zip, bad archive, bad CSV shape, too large)."""

    code = "invalid_upload"


class InvalidPredictions(SubmissionError):
    """A predictions file does not follow the container contract."""

    code = "invalid_output"
