"""Submissions stranded when the broker is down: the row was committed `queued` but its
evaluation never reached a worker, the client got a 500, and an Idempotency-Key retry returned
the same stranded row, holding quota and a concurrency slot for ever. Now the API answers 202
with the row, the submission remembers that its hand-over failed (the outbox), and the sweeper
hands it to the broker again once it is back: the message lands in the real Redis queue."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import pytest
import redis
from django.conf import settings
from django.utils import timezone
from rest_framework.test import APIClient

from heldout.celery import app
from submissions.models import Submission
from submissions.services import evaluations_redispatch
from tests.factories import accept_terms

pytestmark = pytest.mark.django_db(transaction=True)
CLOSED_PORT_BROKER = "redis://127.0.0.1:9/0"  # nothing listens on the discard port


def _reconnect(url: str) -> None:
    """The app publishes to `url` from its next message on: its pools are looked up again
    (kombu keeps one per broker address; none is closed, others may hold them)."""
    app.conf.broker_url = url
    app._pool = None
    app.amqp._producer_pool = None


@contextmanager
def broker_down() -> Iterator[None]:
    previous = app.conf.broker_url
    _reconnect(CLOSED_PORT_BROKER)
    try:
        yield
    finally:
        _reconnect(previous)


def scoring_queue() -> list[dict]:  # type: ignore[type-arg]
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    messages = [json.loads(raw) for raw in client.lrange("scoring", 0, -1)]
    return [json.loads(base64.b64decode(m["body"]))[1] for m in messages]


@pytest.fixture
def empty_queue() -> None:
    assert settings.CELERY_BROKER_URL.startswith("redis://"), "make test sets REDIS_URL"
    redis.Redis.from_url(settings.CELERY_BROKER_URL).delete("scoring")


def post(client: APIClient, phase, key: str):  # type: ignore[no-untyped-def]
    from django.core.files.uploadedfile import SimpleUploadedFile

    upload = SimpleUploadedFile("model.zip", _bundle(), content_type="application/zip")
    return client.post(
        f"/api/v1/challenges/{phase.challenge.slug}/phases/{phase.slug}/submissions/",
        {"kind": "bundle", "file": upload}, format="multipart", HTTP_IDEMPOTENCY_KEY=key)


def _bundle() -> bytes:
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("predict.py", "print('hello')\n")
    return buffer.getvalue()


def test_a_submission_made_while_the_broker_is_down_reaches_a_worker_later(
    phase, team_a, alice, empty_queue
) -> None:
    accept_terms(phase.challenge, alice)
    client = APIClient()
    client.force_authenticate(alice)

    with broker_down():
        first = post(client, phase, "retry-me")
        again = post(client, phase, "retry-me")

    assert first.status_code == 202, first.content  # never a 500 with a committed row
    assert again.status_code == 202 and again.json()["id"] == first.json()["id"]
    stranded = Submission.objects.get()
    assert (stranded.status, stranded.dispatched_at) == ("queued", None)
    assert scoring_queue() == []
    assert evaluations_redispatch() == []  # within its first minute: the request's own try

    assert evaluations_redispatch(now=timezone.now() + timedelta(seconds=61)) == [stranded.pk]

    assert scoring_queue() == [{"submission_pk": stranded.pk}]
    assert Submission.objects.get().dispatched_at is not None
    assert evaluations_redispatch(now=timezone.now() + timedelta(seconds=61)) == []


def test_a_message_the_broker_lost_is_sent_again_after_a_while(
    phase, team_a, alice, empty_queue
) -> None:
    accept_terms(phase.challenge, alice)
    client = APIClient()
    client.force_authenticate(alice)
    assert post(client, phase, "k").status_code == 202
    redis.Redis.from_url(settings.CELERY_BROKER_URL).delete("scoring")  # a broker restart

    later = timezone.now() + timedelta(seconds=settings.HELDOUT_REDISPATCH_SECONDS + 1)
    assert evaluations_redispatch(now=later) == [Submission.objects.get().pk]
    assert len(scoring_queue()) == 1
