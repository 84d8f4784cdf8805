"""Announcements: an organiser tells a challenge's participants something (a deadline moved,
labels replaced, a new phase). Posting is audited and queues the e-mails (the Celery task
challenges.tasks.announcement_mail, by name: this module and the task module would import
each other); the banner on the challenge's pages reads `shown_to`.

Participants are the members of the challenge's teams and everyone who accepted its terms
(any version). Each gets one e-mail of their own (no one sees the others' addresses), once:
the ids mailed are recorded batch by batch under the announcement's row lock, so a
redelivered or retried task carries on where the last one stopped.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import EmailMultiAlternatives, get_connection
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.html import escape

from challenges import selectors
from challenges.exceptions import ChallengeError
from challenges.models import Announcement, Challenge, Membership, TermsAcceptance
from challenges.templatetags.heldout import markdown
from core import dispatch
from core.services import audit_record

ANNOUNCEMENT_MAIL = "challenges.tasks.announcement_mail"
SHOWN_FOR = timedelta(days=14)
MAIL_BATCH = 50  # e-mails sent under one hold of the row lock
MAX_BANNERS = 3


def participants(*, challenge: Challenge) -> QuerySet[Any]:
    """Active accounts in one of the challenge's teams or that accepted its terms."""
    members = Membership.objects.filter(challenge=challenge).values("user")
    accepted = TermsAcceptance.objects.filter(challenge=challenge).values("user")
    return get_user_model().objects.filter(
        Q(pk__in=members) | Q(pk__in=accepted), is_active=True).order_by("pk")


def shown_to(*, challenge: Challenge, user: Any) -> list[Announcement]:
    """The banners `user` sees on the challenge's pages: the latest announcements still
    shown, for its participants and organisers (others were not told them)."""
    if not getattr(user, "is_authenticated", False):
        return []
    # The banners first: most pages have none, and then one query is all this costs.
    shown = list(challenge.announcements.filter(shown_until__gt=timezone.now())
                 .order_by("-created_at")[:MAX_BANNERS])
    if shown and (selectors.is_organiser(challenge=challenge, user=user)
                  or participants(challenge=challenge).filter(pk=user.pk).exists()):
        return shown
    return []


@transaction.atomic
def announcement_post(*, challenge: Challenge, actor: Any, title: str, body: str,
                      shown_until: timezone.datetime | None = None) -> Announcement:
    """Post an announcement to the challenge's participants: stored, audited, and e-mailed
    to each once the row is committed."""
    if not selectors.is_organiser(challenge=challenge, user=actor):
        raise ChallengeError("Only the challenge's organisers post its announcements.")
    now = timezone.now()
    if shown_until is not None and shown_until <= now:
        raise ChallengeError("Show the banner until a time in the future.")
    announcement = Announcement(
        challenge=challenge, title=title.strip(), body=body, created_at=now,
        shown_until=shown_until or now + SHOWN_FOR, created_by=actor)
    announcement.full_clean()
    announcement.save()
    audit_record(verb="announcement.posted", actor=actor, challenge=challenge,
                 target=f"announcement:{announcement.pk}", data={
                     "title": announcement.title,
                     "body_sha256": hashlib.sha256(body.encode()).hexdigest(),
                     "shown_until": announcement.shown_until.isoformat(),
                     "participants": participants(challenge=challenge).count()})
    transaction.on_commit(lambda: dispatch.send(ANNOUNCEMENT_MAIL,
                                                announcement_pk=announcement.pk))
    return announcement


@transaction.atomic
def announcement_show_until(*, announcement: Announcement, actor: Any,
                            shown_until: timezone.datetime) -> Announcement:
    """Take the banner down early (now) or show it longer; audited. The text stays as
    mailed."""
    stored = Announcement.objects.select_for_update().get(pk=announcement.pk)
    if shown_until < stored.created_at:
        raise ChallengeError("An announcement cannot end before it was posted.")
    Announcement.objects.filter(pk=stored.pk).update(shown_until=shown_until)
    announcement.shown_until = shown_until
    if stored.shown_until != shown_until:
        audit_record(verb="announcement.edited", actor=actor, challenge=announcement.challenge,
                     target=f"announcement:{announcement.pk}",
                     data={"shown_until": shown_until.isoformat()})
    return announcement


def announcement_mail_send(*, announcement_pk: int) -> int:
    """E-mail the announcement to every participant not mailed yet; returns how many were
    mailed now. Each batch is sent and recorded under the row's lock, so two deliveries of
    the task never mail one person twice."""
    sent = 0
    while True:
        batch = _mail_batch(announcement_pk)
        if batch is None:
            break
        sent += batch
    if sent:
        announcement = Announcement.objects.select_related("challenge").get(pk=announcement_pk)
        audit_record(verb="announcement.mailed", challenge=announcement.challenge,
                     target=f"announcement:{announcement_pk}",
                     data={"mailed": sent, "mailed_in_all": len(announcement.mailed_to)})
    return sent


@transaction.atomic
def _mail_batch(announcement_pk: int) -> int | None:
    """Send and record one batch; None when nobody is left."""
    announcement = (Announcement.objects.select_for_update().select_related("challenge")
                    .filter(pk=announcement_pk).first())
    if announcement is None:
        return None
    done = set(announcement.mailed_to)
    people = [user for user in participants(challenge=announcement.challenge)
              .exclude(pk__in=done).exclude(email="")[:MAIL_BATCH]]
    if not people:
        return None
    messages = _messages(announcement, people)
    get_connection().send_messages(messages)
    announcement.mailed_to = [*announcement.mailed_to, *(user.pk for user in people)]
    announcement.mailed_at = timezone.now()
    announcement.save(update_fields=["mailed_to", "mailed_at"])
    return len(people)


def _messages(announcement: Announcement, people: list[Any]) -> list[EmailMultiAlternatives]:
    challenge = announcement.challenge
    link = settings.HELDOUT_SITE_URL.rstrip("/") + challenge.get_absolute_url()
    text = (f"{announcement.body.strip()}\n\n— The organisers of {challenge.title}\n{link}\n\n"
            f"You get this because you take part in {challenge.title} (a team member, or "
            "you accepted its data-use terms).")
    html = (f"<h2>{escape(announcement.title)}</h2>{markdown(announcement.body)}"
            f"<p>— The organisers of <a href=\"{escape(link)}\">{escape(challenge.title)}"
            "</a></p>")
    messages = []
    for user in people:
        message = EmailMultiAlternatives(
            subject=f"[Heldout] {challenge.title}: {announcement.title}", body=text,
            to=[user.email])
        message.attach_alternative(html, "text/html")
        messages.append(message)
    return messages
