"""Uploads through the pages: the plain multipart form, the resumable chunked upload of the
REST API that the browser uses for every file (session authentication), and the submission
page (who sees it, which logs, which scores).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from challenges.models import Phase
from core.storage import private_path
from scoring.models import Run
from submissions import services
from submissions.exceptions import InvalidUpload
from submissions.models import Submission, UploadSession
from submissions.uploads import chunk_path, stage_chunks
from tests.factories import PhaseFactory, ResultFactory, RunFactory
from tests.factories.submissions import told_finish

CSV = b"id,score\nc001,0.9\nc002,0.1\nc003,0.5\nc004,0.25\n"
LONG_CSV = b"id,score\n" + b"".join(b"c%04d,0.%d\n" % (i, i % 10) for i in range(300))
BAD_CSV = b"identifier,prob\nc001,0.9\n"


def image_tar() -> bytes:
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {}}).encode()
    digest = hashlib.sha256(config).hexdigest()
    manifest = json.dumps([{"Config": f"{digest}.json", "RepoTags": ["a:1"], "Layers": []}])
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in ((f"{digest}.json", config), ("manifest.json", manifest.encode())):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@pytest.fixture(autouse=True)
def enqueue() -> Iterator[mock.MagicMock]:
    with mock.patch("core.dispatch.evaluate_submission", autospec=True) as patched:
        yield patched


@pytest.fixture
def phase(challenge) -> Phase:
    return PhaseFactory(challenge=challenge, slug="leaderboard", quota_per_day=20,
                        quota_concurrent=20)


@pytest.fixture
def as_alice(client: Client, alice, team_a) -> Client:
    client.force_login(alice)
    return client


def login(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def stored_files() -> list[Path]:
    folder = Path(settings.PRIVATE_ROOT) / "submissions"
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


# --- the plain multipart form -------------------------------------------------------------


def upload_url(phase: Phase) -> str:
    return reverse("submissions:upload", args=[phase.challenge.slug, phase.slug])


def test_the_form_upload_creates_a_submission_and_shows_it(
    as_alice, phase, alice, enqueue, django_capture_on_commit_callbacks
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        response = as_alice.post(upload_url(phase), {
            "kind": "predictions", "file": SimpleUploadedFile("my preds.csv", CSV)})

    submission = Submission.objects.get()
    assert response.status_code == 302
    assert response["Location"] == submission.get_absolute_url()
    assert (submission.created_by, submission.number, submission.kind) == (alice, 1, "predictions")
    assert submission.filename == "my_preds.csv"
    assert private_path(submission.file_path).read_bytes() == CSV
    enqueue.assert_called_once_with(submission.pk)
    page = as_alice.get(response["Location"])
    assert page.status_code == 200
    assert "Submission #1 of Team A" in page.content.decode()


def test_a_refused_form_upload_shows_the_reason_and_creates_nothing(
    as_alice, phase, enqueue
) -> None:
    response = as_alice.post(upload_url(phase), {
        "kind": "predictions", "file": SimpleUploadedFile("p.csv", BAD_CSV)}, follow=True)

    assert response.redirect_chain == [(phase.get_absolute_url(), 302)]
    assert "header must be" in response.content.decode()
    assert not Submission.objects.exists() and stored_files() == []
    assert list((Path(settings.PRIVATE_ROOT) / "staging").iterdir()) == []
    enqueue.assert_not_called()


def test_the_form_upload_refuses_a_user_without_a_team(client, dave, phase) -> None:
    client.force_login(dave)

    response = client.post(upload_url(phase), {
        "kind": "predictions", "file": SimpleUploadedFile("p.csv", CSV)}, follow=True)

    assert response.redirect_chain == [(phase.get_absolute_url(), 302)]
    assert "Join or create a team" in response.content.decode()
    assert not Submission.objects.exists()


def test_the_form_upload_refuses_a_missing_file(as_alice, phase) -> None:
    response = as_alice.post(upload_url(phase), {"kind": "predictions"}, follow=True)

    assert "Choose a file to upload." in response.content.decode()
    assert not Submission.objects.exists()


def test_the_form_upload_needs_a_login(client, phase) -> None:
    response = client.post(upload_url(phase), {
        "kind": "predictions", "file": SimpleUploadedFile("p.csv", CSV)})

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))
    assert not Submission.objects.exists()


# --- the resumable chunked upload of the API, as the browser uses it --------------------


def start(client: Client, phase: Phase, *, size: int, kind: str = "predictions",
          filename: str = "predictions.csv") -> Any:
    return client.post(
        reverse("api:upload-start", args=[phase.challenge.slug, phase.slug]),
        data=json.dumps({"kind": kind, "filename": filename, "size": size}),
        content_type="application/json")


def chunk_url(uid: str, offset: int | None = None) -> str:
    url = reverse("api:upload-detail", args=[uid])
    return url if offset is None else f"{url}?offset={offset}"


def put(client: Client, uid: str, offset: int, data: bytes) -> Any:
    return client.put(chunk_url(uid, offset), data=data,
                      content_type="application/octet-stream")


def finish(client: Client, uid: str) -> Any:
    return client.post(reverse("api:upload-finish", args=[uid]))


def received(client: Client, uid: str) -> int:
    response = client.get(chunk_url(uid))
    assert response.status_code == 200
    return int(response.json()["received"])


def test_a_chunked_upload_becomes_a_submission(
    as_alice, phase, alice, enqueue, django_capture_on_commit_callbacks
) -> None:
    content = image_tar()
    begun = start(as_alice, phase, size=len(content), kind="image", filename="model.tar")
    assert begun.status_code == 201
    uid = begun.json()["id"]
    assert (begun.json()["received"], begun.json()["size"]) == (0, len(content))

    for offset in range(0, len(content), 4096):
        answer = put(as_alice, uid, offset, content[offset:offset + 4096])
        assert answer.status_code == 200
        assert answer.json()["received"] == min(offset + 4096, len(content))
    with django_capture_on_commit_callbacks(execute=True):
        done = finish(as_alice, uid)

    assert done.status_code == 202
    submission = Submission.objects.get()
    assert done.json()["id"] == str(submission.uid)
    assert done.json()["url"] == "http://testserver" + submission.get_absolute_url()
    assert (submission.kind, submission.filename, submission.created_by) == (
        "image", "model.tar", alice)
    assert submission.sha256 == hashlib.sha256(content).hexdigest()
    assert private_path(submission.file_path).read_bytes() == content
    assert not chunk_path(UploadSession.objects.get().uid).exists()
    enqueue.assert_called_once_with(submission.pk)


def test_a_put_at_the_wrong_offset_tells_where_to_resume(as_alice, phase) -> None:
    uid = start(as_alice, phase, size=len(CSV)).json()["id"]
    put(as_alice, uid, 0, CSV[:10])

    for offset in (0, 5, 11, 40):
        wrong = put(as_alice, uid, offset, CSV[offset:])
        assert wrong.status_code == 409
        assert wrong.json()["received"] == 10
        assert wrong.json()["code"] == "invalid_upload"

    assert received(as_alice, uid) == 10
    assert chunk_path(UploadSession.objects.get().uid).read_bytes() == CSV[:10]


def test_a_put_without_a_numeric_offset_is_refused(as_alice, phase) -> None:
    uid = start(as_alice, phase, size=len(CSV)).json()["id"]

    response = as_alice.put(chunk_url(uid) + "?offset=abc", data=CSV,
                            content_type="application/octet-stream")

    assert response.status_code == 400
    assert received(as_alice, uid) == 0


class _Connection(io.RawIOBase):
    """A request body that stops early: the client's connection dropped mid-chunk."""

    def __init__(self, data: bytes, *, reset: bool) -> None:
        self._data, self._reset = io.BytesIO(data), reset

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        block = self._data.read(size)
        if not block and self._reset:
            raise ConnectionResetError("connection reset by peer")
        return block


def put_dropped(client: Client, uid: str, offset: int, chunk: bytes, *, reset: bool) -> Any:
    """Declare the whole chunk but deliver only its first half."""
    return client.generic("PUT", chunk_url(uid, offset), content_type="application/octet-stream",
                          CONTENT_LENGTH=str(len(chunk)),
                          **{"wsgi.input": _Connection(chunk[:len(chunk) // 2], reset=reset)})


def test_after_a_connection_ends_early_the_client_resumes_from_what_arrived(
    as_alice, phase
) -> None:
    content = LONG_CSV
    uid = start(as_alice, phase, size=len(content)).json()["id"]
    put(as_alice, uid, 0, content[:1000])

    put_dropped(as_alice, uid, 1000, content[1000:], reset=False)
    resume = received(as_alice, uid)
    assert 1000 < resume < len(content)
    assert put(as_alice, uid, resume, content[resume:]).status_code == 200

    assert finish(as_alice, uid).status_code == 202
    assert private_path(Submission.objects.get().file_path).read_bytes() == content


def test_after_a_connection_reset_the_unacknowledged_bytes_are_resent(as_alice, phase) -> None:
    content = LONG_CSV
    uid = start(as_alice, phase, size=len(content)).json()["id"]
    put(as_alice, uid, 0, content[:1000])

    broken = put_dropped(as_alice, uid, 1000, b"X" * (len(content) - 1000), reset=True)
    assert (broken.status_code, broken.json()["received"]) == (409, 1000)
    resume = received(as_alice, uid)
    assert resume == 1000  # nothing of the broken request was acknowledged
    assert put(as_alice, uid, resume, content[resume:]).status_code == 200

    assert finish(as_alice, uid).status_code == 202
    assert private_path(Submission.objects.get().file_path).read_bytes() == content


def test_bytes_beyond_the_declared_size_are_refused_and_not_kept(as_alice, phase) -> None:
    uid = start(as_alice, phase, size=len(CSV)).json()["id"]
    put(as_alice, uid, 0, CSV[:20])

    too_much = put(as_alice, uid, 20, CSV[20:] + b"c999,0.5\n")

    assert too_much.status_code == 409
    assert too_much.json()["received"] == 20
    assert "More bytes" in too_much.json()["detail"]
    assert received(as_alice, uid) == 20
    assert chunk_path(UploadSession.objects.get().uid).read_bytes() == CSV[:20]
    assert put(as_alice, uid, 20, CSV[20:]).status_code == 200
    assert finish(as_alice, uid).status_code == 202


def test_finishing_an_incomplete_upload_is_refused(as_alice, phase) -> None:
    uid = start(as_alice, phase, size=len(CSV)).json()["id"]
    put(as_alice, uid, 0, CSV[:10])

    response = finish(as_alice, uid)

    assert response.status_code == 400
    assert "incomplete" in response.json()["detail"]
    assert not Submission.objects.exists()
    assert received(as_alice, uid) == 10  # the client can still complete it


def test_finishing_twice_returns_the_same_submission(as_alice, phase, enqueue) -> None:
    uid = start(as_alice, phase, size=len(CSV)).json()["id"]
    put(as_alice, uid, 0, CSV)

    first, second = finish(as_alice, uid), finish(as_alice, uid)

    assert (first.status_code, second.status_code) == (202, 202)
    assert first.json() == second.json()
    assert Submission.objects.count() == 1 and len(stored_files()) == 1


def test_a_put_after_finishing_is_refused(as_alice, phase) -> None:
    uid = start(as_alice, phase, size=len(CSV)).json()["id"]
    put(as_alice, uid, 0, CSV)
    finish(as_alice, uid)

    late = put(as_alice, uid, len(CSV), b"c999,0.5\n")

    assert late.status_code == 409
    assert late.json()["received"] == len(CSV)
    assert private_path(Submission.objects.get().file_path).read_bytes() == CSV


@pytest.mark.django_db(transaction=True)
def test_two_finishes_at_once_return_the_same_submission(phase, team_a, alice) -> None:
    session = services.upload_session_start(phase=phase, user=alice, kind="predictions",
                                            filename="p.csv", total_size=len(CSV))
    services.upload_session_append(session=session, offset=0, chunks=[CSV])
    barrier, outcomes = threading.Barrier(2), [None, None]

    def finish_in_thread(i: int) -> None:
        try:
            barrier.wait(timeout=30)
            outcomes[i] = services.upload_session_finish(
                session=UploadSession.objects.get(pk=session.pk), team=team_a)
        except Exception as error:  # noqa: BLE001 - asserted below
            outcomes[i] = error
        finally:
            connection.close()

    threads = [threading.Thread(target=finish_in_thread, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    created = Submission.objects.get()
    assert len(stored_files()) == 1
    for outcome in outcomes:  # the second waited on the upload's row, then found the first's
        assert isinstance(outcome, Submission) and outcome.pk == created.pk, outcomes
    assert UploadSession.objects.get().submission_id == created.pk


def test_finishing_a_refused_upload_again_is_refused_again(as_alice, phase) -> None:
    uid = start(as_alice, phase, size=len(BAD_CSV)).json()["id"]
    put(as_alice, uid, 0, BAD_CSV)

    first, again = finish(as_alice, uid), finish(as_alice, uid)

    assert first.status_code == 400 and first.json()["code"] == "invalid_upload"
    assert again.status_code == 400 and again.json()["code"] == "invalid_upload"
    assert not Submission.objects.exists()
    assert not chunk_path(UploadSession.objects.get().uid).exists()


def test_a_file_above_the_kinds_limit_is_refused_at_start(as_alice, phase, settings) -> None:
    settings.HELDOUT_MAX_IMAGE_BYTES = 5 * 1024**2

    refused = start(as_alice, phase, size=5 * 1024**2 + 1, kind="image")
    allowed = start(as_alice, phase, size=5 * 1024**2, kind="image")
    too_big_csv = start(as_alice, phase, size=200 * 1024**2 + 1, kind="predictions")

    assert refused.status_code == 400
    assert "larger than the limit of 5 MB" in refused.json()["detail"]
    assert too_big_csv.status_code == 400
    assert allowed.status_code == 201
    assert UploadSession.objects.count() == 1


@pytest.mark.parametrize("body", [
    pytest.param({"kind": "predictions", "filename": "p.csv", "size": 0}, id="empty"),
    pytest.param({"kind": "predictions", "filename": "p.csv", "size": "many"}, id="not-a-size"),
    pytest.param("not json", id="not-json"),
])
def test_a_start_without_a_usable_size_is_refused(as_alice, phase, body) -> None:
    response = as_alice.post(
        reverse("api:upload-start", args=[phase.challenge.slug, phase.slug]),
        data=body if isinstance(body, str) else json.dumps(body),
        content_type="application/json")

    assert response.status_code == 400
    assert not UploadSession.objects.exists()


def test_a_kind_the_phase_does_not_accept_is_refused_at_start(as_alice, phase) -> None:
    Phase.objects.filter(pk=phase.pk).update(submission_kinds=["predictions"])

    response = start(as_alice, phase, size=1024**2, kind="image", filename="model.tar")

    assert response.status_code == 400
    assert response.json()["code"] == "kind_not_allowed"
    assert not UploadSession.objects.exists()


def test_an_upload_to_a_closed_phase_is_refused_at_start(as_alice, phase) -> None:
    Phase.objects.filter(pk=phase.pk).update(closes_at=timezone.now() - timedelta(minutes=1))

    response = start(as_alice, phase, size=1024**2, kind="image", filename="model.tar")

    assert response.status_code == 409  # the same code and status as everywhere else
    assert response.json()["code"] == "phase_closed"
    assert not UploadSession.objects.exists()


def test_another_user_cannot_touch_alices_upload(as_alice, phase, bob, carol) -> None:
    uid = start(as_alice, phase, size=len(CSV)).json()["id"]
    put(as_alice, uid, 0, CSV[:10])

    for intruder in (login(bob), login(carol)):
        assert intruder.get(chunk_url(uid)).status_code == 404
        assert put(intruder, uid, 10, CSV[10:]).status_code == 404
        assert finish(intruder, uid).status_code == 404

    assert received(as_alice, uid) == 10
    assert not Submission.objects.exists()


def test_the_chunked_api_needs_a_login(client, as_alice, phase) -> None:
    uid = start(as_alice, phase, size=len(CSV)).json()["id"]
    anonymous = Client()

    assert anonymous.get(chunk_url(uid)).status_code == 401
    assert put(anonymous, uid, 0, CSV).status_code == 401
    assert start(anonymous, phase, size=10).status_code == 401
    assert received(as_alice, uid) == 0


# --- the submission page -------------------------------------------------------------------


@pytest.fixture
def submission(phase, team_a, alice) -> Submission:
    staged = stage_chunks([CSV], filename="predictions.csv", max_bytes=1024**2)
    return services.submission_create(phase=phase, team=team_a, user=alice, kind="predictions",
                             staged=staged)


def detail(client: Client, submission: Submission) -> Any:
    return client.get(submission.get_absolute_url())


def test_the_page_is_visible_to_the_team_and_organisers(submission, alice, bob, olga) -> None:
    for user in (alice, bob, olga):
        page = detail(login(user), submission)
        assert page.status_code == 200
        assert "Submission #1 of Team A" in page.content.decode()


def test_the_page_is_hidden_from_other_teams(submission, team_c, carol, dave) -> None:
    assert detail(login(carol), submission).status_code == 404
    assert detail(login(dave), submission).status_code == 404
    status = login(carol).get(reverse("submissions:status", args=[submission.uid]))
    assert status.status_code == 404


def test_anonymous_visitors_are_sent_to_log_in(client, submission) -> None:
    response = detail(client, submission)

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))


def test_the_status_partial_renders(submission, alice) -> None:
    response = login(alice).get(reverse("submissions:status", args=[submission.uid]))

    assert response.status_code == 200
    text = response.content.decode()
    assert 'id="submission-status"' in text and "Queued" in text
    assert "<html" not in text  # a fragment for the live page, not a whole page


def add_runs(submission: Submission) -> None:
    for lane in (Run.Lane.SANITY, Run.Lane.HIDDEN):
        RunFactory(submission=submission, lane=lane, exit_code=1, error_class="nonzero_exit",
                   log_tail=f"LOG-OF-{lane.upper()}-LANE", finished_at=told_finish())


def test_hidden_run_logs_are_shown_to_organisers_only(submission, alice, olga) -> None:
    add_runs(submission)

    for url in (submission.get_absolute_url(),
                reverse("submissions:status", args=[submission.uid])):
        as_team = login(alice).get(url).content.decode()
        as_organiser = login(olga).get(url).content.decode()
        assert "LOG-OF-SANITY-LANE" in as_team
        assert "LOG-OF-HIDDEN-LANE" not in as_team
        assert "not shown in this phase" in as_team
        assert "LOG-OF-SANITY-LANE" in as_organiser and "LOG-OF-HIDDEN-LANE" in as_organiser


def test_hidden_run_logs_are_shown_when_the_phase_allows(submission, phase, alice) -> None:
    Phase.objects.filter(pk=phase.pk).update(show_logs=True)
    add_runs(submission)

    page = detail(login(alice), submission).content.decode()

    assert "LOG-OF-SANITY-LANE" in page and "LOG-OF-HIDDEN-LANE" in page


def add_result(submission: Submission) -> None:
    Submission.objects.filter(pk=submission.pk).update(
        status=Submission.Status.SUCCEEDED, finished_at=told_finish())
    ResultFactory(submission=submission, metrics={"all": {"auroc": 0.8123}})


def test_scores_after_close_are_hidden_from_participants_while_open(
    submission, phase, alice, olga
) -> None:
    Phase.objects.filter(pk=phase.pk).update(score_visibility="after-close")
    add_result(submission)

    as_team = detail(login(alice), submission).content.decode()
    as_organiser = detail(login(olga), submission).content.decode()

    assert "0.8123" not in as_team
    assert "shown after it closes" in as_team
    assert "0.8123" in as_organiser


def test_scores_after_close_are_shown_once_the_phase_closed(submission, phase, alice) -> None:
    Phase.objects.filter(pk=phase.pk).update(
        score_visibility="after-close", closes_at=timezone.now() - timedelta(seconds=1))
    add_result(submission)

    assert "0.8123" in detail(login(alice), submission).content.decode()


def test_live_scores_are_shown_to_the_team(submission, alice) -> None:
    add_result(submission)

    assert "0.8123" in detail(login(alice), submission).content.decode()


# --- abandoned uploads ---------------------------------------------------------------------


def idle_upload(phase: Phase, user: Any, *, hours: float) -> UploadSession:
    session = services.upload_session_start(phase=phase, user=user, kind="predictions",
                                            filename="p.csv", total_size=len(CSV))
    services.upload_session_append(session=session, offset=0, chunks=[CSV[:10]])
    UploadSession.objects.filter(pk=session.pk).update(
        touched_at=timezone.now() - timedelta(hours=hours))
    return session


def test_an_abandoned_upload_expires_with_its_bytes(phase, team_a, alice, bob, settings) -> None:
    settings.HELDOUT_UPLOAD_EXPIRY_HOURS = 24
    abandoned = idle_upload(phase, alice, hours=25)
    paused = idle_upload(phase, bob, hours=23)

    assert services.uploads_expire() == 1

    assert list(UploadSession.objects.all()) == [paused]
    assert not chunk_path(abandoned.uid).exists()
    assert chunk_path(paused.uid).read_bytes() == CSV[:10]


def test_a_chunk_keeps_an_old_upload_alive(phase, team_a, alice, settings) -> None:
    settings.HELDOUT_UPLOAD_EXPIRY_HOURS = 24
    session = idle_upload(phase, alice, hours=30)

    services.upload_session_append(session=session, offset=10, chunks=[CSV[10:]])

    assert services.uploads_expire() == 0
    assert chunk_path(session.uid).read_bytes() == CSV


def test_a_finished_upload_never_expires(phase, alice, team_a, enqueue) -> None:
    session = idle_upload(phase, alice, hours=10)
    services.upload_session_append(session=session, offset=10, chunks=[CSV[10:]])
    submission = services.upload_session_finish(session=session, team=team_a)
    UploadSession.objects.update(touched_at=timezone.now() - timedelta(days=30))

    assert services.uploads_expire() == 0

    assert UploadSession.objects.get().submission == submission
    assert private_path(submission.file_path).read_bytes() == CSV


def test_a_chunk_for_an_expired_upload_is_refused_clearly(as_alice, phase, alice) -> None:
    session = idle_upload(phase, alice, hours=48)
    services.uploads_expire()

    with pytest.raises(InvalidUpload, match="expired"):
        services.upload_session_append(session=session, offset=10, chunks=[CSV[10:]])
    assert put(as_alice, str(session.uid), 10, CSV[10:]).status_code == 404


def test_stale_staging_files_nothing_refers_to_are_removed(phase, team_a, alice, settings) -> None:
    settings.HELDOUT_UPLOAD_EXPIRY_HOURS = 24
    live = idle_upload(phase, alice, hours=1)
    os.utime(chunk_path(live.uid), (0, 0))  # an old file of a live upload stays
    staging = Path(settings.PRIVATE_ROOT) / "staging"
    orphan, fresh = staging / "orphan.part", staging / "fresh.part"
    orphan.write_bytes(b"left by a crashed web process")
    fresh.write_bytes(b"being received right now")
    old = (timezone.now() - timedelta(hours=25)).timestamp()
    os.utime(orphan, (old, old))

    services.uploads_expire()

    assert not orphan.exists()
    assert fresh.exists() and chunk_path(live.uid).exists()


def test_the_beat_schedule_expires_uploads_with_a_registered_task(settings) -> None:
    from heldout.celery import app

    app.loader.import_default_modules()
    scheduled = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}

    assert "submissions.tasks.expire_uploads" in scheduled
    assert scheduled <= set(app.tasks)


def test_a_long_paused_upload_being_finished_keeps_its_bytes(
    phase, team_a, alice, settings
) -> None:
    settings.HELDOUT_UPLOAD_EXPIRY_HOURS = 24
    session = idle_upload(phase, alice, hours=1)
    services.upload_session_append(session=session, offset=10, chunks=[CSV[10:]])
    old = (timezone.now() - timedelta(hours=30)).timestamp()
    os.utime(chunk_path(session.uid), (old, old))  # the last chunk came long ago

    staged = services._claim_chunks(session)  # finishing: the bytes now sit under a new name
    services.uploads_expire()  # an expiry sweep runs meanwhile

    assert staged.path.read_bytes() == CSV
