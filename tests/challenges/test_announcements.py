"""Issue #21, item 7 (d): an organiser posts an announcement in the admin; it is audited,
e-mailed once to each participant of the challenge (team members and everyone who accepted
its terms) through the normal e-mail backend, and shown as a banner on the challenge's pages
to them until it ends. Organisers see and post only their own challenges' announcements."""

from __future__ import annotations

from datetime import timedelta
from smtplib import SMTPException
from typing import Any
from unittest import mock

import pytest
from django.core import mail
from django.core.mail.backends.locmem import EmailBackend
from django.urls import reverse
from django.utils import timezone

from challenges import announcements
from challenges.models import Announcement, Membership
from challenges.tasks import announcement_mail
from core.models import AuditEvent
from tests.factories import (
    ChallengeFactory,
    PhaseFactory,
    TeamFactory,
    UserFactory,
    accept_terms,
)

pytestmark = pytest.mark.django_db

BODY = ("The **deadline** moves to 1 March.\n\n<script>alert('x')</script>\n\n"
        "[Details](javascript:alert(1))")


@pytest.fixture
def people(challenge, team_a, team_c, dave) -> dict[str, Any]:
    """Alice and Bob (team A), Carol (team C), Dave (accepted the terms, no team), Mia (in
    team C but has not accepted the current terms), Eve (nothing), Zed (another challenge)."""
    accept_terms(challenge, dave)
    mia = UserFactory(username="mia")
    Membership.objects.create(team=team_c, user=mia, challenge=challenge)
    other = ChallengeFactory(slug="other", title="Other")
    zed = UserFactory(username="zed")
    TeamFactory(challenge=other, name="Zed's", captain=zed)
    UserFactory(username="ghost", is_active=False)
    accept_terms(challenge, UserFactory(username="ghost"))
    return {"mia": mia, "eve": UserFactory(username="eve"), "zed": zed, "other": other}


def post(client: Any, challenge: Any, **values: Any) -> Any:
    data = {"challenge": challenge.pk, "title": "Deadline extended", "body": BODY,
            "shown_until_0": (timezone.now() + timedelta(days=3)).strftime("%Y-%m-%d"),
            "shown_until_1": "12:00:00", **values}
    return client.post(reverse("admin:challenges_announcement_add"), data)


def mailed(announcement: Announcement) -> None:
    announcement_mail.run(announcement_pk=announcement.pk)  # the task's body, as a worker runs it


def test_an_organiser_posts_it_is_audited_and_queued_by_name(
        client, challenge, olga, people, django_capture_on_commit_callbacks) -> None:
    client.force_login(olga)

    with mock.patch("core.dispatch.send", autospec=True) as sent, \
            django_capture_on_commit_callbacks(execute=True):
        response = post(client, challenge)

    assert response.status_code == 302
    announcement = Announcement.objects.get()
    assert (announcement.challenge, announcement.created_by) == (challenge, olga)
    assert announcement.title == "Deadline extended" and announcement.body == BODY
    sent.assert_called_once_with(announcements.ANNOUNCEMENT_MAIL,
                                 announcement_pk=announcement.pk)
    event = AuditEvent.objects.get(verb="announcement.posted")
    assert (event.actor_id, event.challenge_id) == (olga.pk, challenge.pk)
    assert event.target == f"announcement:{announcement.pk}"
    assert event.data["title"] == "Deadline extended" and event.data["participants"] == 5
    assert announcement_mail.name == announcements.ANNOUNCEMENT_MAIL


def test_each_participant_gets_one_mail_of_their_own(client, challenge, olga, people) -> None:
    client.force_login(olga)
    with mock.patch("core.dispatch.send", autospec=True):
        post(client, challenge)
    announcement = Announcement.objects.get()

    mailed(announcement)
    mailed(announcement)  # a redelivered task mails nobody again

    recipients = sorted(address for message in mail.outbox for address in message.to)
    assert recipients == [f"{name}@example.org" for name in
                          ("alice", "bob", "carol", "dave", "mia")]
    assert all(len(message.to) == 1 and not message.cc and not message.bcc
               for message in mail.outbox)
    message = mail.outbox[0]
    assert message.subject == "[Heldout] Readmission: Deadline extended"
    assert "The **deadline** moves to 1 March." in message.body
    assert "http://" in message.body and challenge.get_absolute_url() in message.body
    html, kind = message.alternatives[0]
    assert kind == "text/html" and "<strong>deadline</strong>" in html
    assert "<script>" not in html and "javascript:" not in html
    announcement.refresh_from_db()
    assert len(announcement.mailed_to) == 5 and announcement.mailed_at is not None
    assert AuditEvent.objects.get(verb="announcement.mailed").data == {
        "mailed": 5, "mailed_in_all": 5}


def test_a_mail_server_failure_mid_way_mails_nobody_twice(challenge, olga, people) -> None:
    with mock.patch("core.dispatch.send", autospec=True):
        announcement = announcements.announcement_post(
            challenge=challenge, actor=olga, title="Labels replaced", body="Re-scored.")
    original = EmailBackend.send_messages
    calls = []

    def flaky(backend: EmailBackend, messages: list[Any]) -> int:
        calls.append(len(messages))
        if len(calls) == 2:
            raise SMTPException("the server hung up")
        return original(backend, messages)

    with mock.patch.object(announcements, "MAIL_BATCH", 2), \
            mock.patch.object(EmailBackend, "send_messages", flaky):
        with pytest.raises(SMTPException):
            mailed(announcement)
        assert len(mail.outbox) == 2
        mailed(announcement)  # the task's retry

    recipients = [m.to[0] for m in mail.outbox]
    assert len(recipients) == len(set(recipients)) == 5


def test_participants_see_the_banner_on_the_challenges_pages_until_it_ends(
        client, challenge, olga, alice, dave, people) -> None:
    phase = PhaseFactory(challenge=challenge, slug="round-1")
    with mock.patch("core.dispatch.send", autospec=True):
        announcement = announcements.announcement_post(
            challenge=challenge, actor=olga, title="Deadline extended", body=BODY)
    pages = [challenge.get_absolute_url(), phase.get_absolute_url(),
             reverse("challenges:terms", args=[challenge.slug])]

    for user in (alice, dave, olga):
        client.force_login(user)
        for url in pages:
            html = client.get(url).content.decode()
            assert f'id="announcement-{announcement.pk}"' in html, (user, url)
            assert "<strong>deadline</strong>" in html
            assert "<script>alert" not in html and 'href="javascript:' not in html
    for user in (people["eve"], people["zed"], None):
        client.logout()
        if user is not None:
            client.force_login(user)
        assert "announcement-" not in client.get(pages[0]).content.decode(), user

    client.force_login(olga)
    change = reverse("admin:challenges_announcement_change", args=[announcement.pk])
    now = timezone.now()
    response = client.post(change, {"shown_until_0": now.strftime("%Y-%m-%d"),
                                    "shown_until_1": now.strftime("%H:%M:%S"),
                                    "title": "Changed after mailing"})
    assert response.status_code == 302
    announcement.refresh_from_db()
    assert announcement.title == "Deadline extended"  # the text is as mailed
    assert AuditEvent.objects.filter(verb="announcement.edited").count() == 1
    client.force_login(alice)
    assert "announcement-" not in client.get(pages[0]).content.decode()


def test_only_the_latest_three_banners_show(client, challenge, olga, alice, team_a) -> None:
    with mock.patch("core.dispatch.send", autospec=True):
        for n in range(5):
            announcements.announcement_post(challenge=challenge, actor=olga,
                                            title=f"News {n}", body="…")
    client.force_login(alice)
    html = client.get(challenge.get_absolute_url()).content.decode()
    shown = [n for n in range(5) if f"News {n}" in html]
    assert shown == [2, 3, 4]


def test_organisers_see_and_post_only_their_own_challenges_announcements(
        client, challenge, olga, people) -> None:
    oscar = UserFactory(username="oscar", is_staff=True)
    people["other"].organisers.add(oscar)
    with mock.patch("core.dispatch.send", autospec=True):
        hers = announcements.announcement_post(challenge=challenge, actor=olga,
                                               title="Hers", body="…")
        his = announcements.announcement_post(challenge=people["other"], actor=oscar,
                                              title="His", body="…")
    client.force_login(oscar)

    response = client.get(reverse("admin:challenges_announcement_changelist"))
    assert {a.pk for a in response.context["cl"].result_list} == {his.pk}
    assert "Readmission" not in response.content.decode()
    with mock.patch("core.dispatch.send", autospec=True) as sent:
        refused = post(client, challenge)
    assert refused.status_code == 200 and "Select a valid choice" in refused.content.decode()
    sent.assert_not_called()
    assert Announcement.objects.filter(challenge=challenge).get() == hers
    assert client.get(reverse("admin:challenges_announcement_change",
                              args=[hers.pk])).status_code in (302, 403, 404)


def test_the_service_refuses_someone_who_does_not_organise_it(challenge, people) -> None:
    with pytest.raises(announcements.ChallengeError):
        announcements.announcement_post(challenge=challenge, actor=people["zed"],
                                        title="Spam", body="…")
    assert not Announcement.objects.exists()
