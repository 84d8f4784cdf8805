"""Celery tasks for challenges: thin wrappers around services."""

from __future__ import annotations

from smtplib import SMTPException

from challenges import announcements
from core.tasks import heldout_task


# A mail server that is down or refuses a batch: tried again later; the people mailed
# before it are recorded, so nobody gets the announcement twice.
@heldout_task(name=announcements.ANNOUNCEMENT_MAIL, autoretry_for=(OSError, SMTPException),
              retry_backoff=60, max_retries=6)
def announcement_mail(*, announcement_pk: int) -> None:
    """E-mail an announcement to the challenge's participants (queued by name when it is
    posted; a redelivery mails only those not mailed yet)."""
    announcements.announcement_mail_send(announcement_pk=announcement_pk)
