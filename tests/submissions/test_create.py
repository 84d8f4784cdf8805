"""submission_create: what a valid upload creates, and refusals that change nothing else.

Also: idempotency keys, organiser baselines, final-entry selection and cancelling.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import threading
import zipfile
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from challenges.exceptions import TermsNotAccepted
from challenges.models import Phase, Team
from core.models import AuditEvent
from core.storage import private_path, sha256_file
from submissions.exceptions import (
    InvalidUpload,
    KindNotAllowed,
    NotAMember,
    PhaseClosed,
    QuotaExceeded,
    SubmissionError,
)
from submissions.models import Submission
from submissions.services import submission_cancel, submission_create, submission_select
from submissions.uploads import StagedUpload, stage_chunks
from tests.factories import PhaseFactory, TeamFactory

VALID_CSV = b"id,score\nc001,0.9\nc002,0.1\nc003,0.5\n"


def bundle_zip(members: dict[str, str] | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        members = members or {"predict.py": "print('hi')\n", "model.txt": "w=1\n"}
        for name, text in members.items():
            archive.writestr(name, text)
    return buffer.getvalue()


def image_tar() -> bytes:
    """The smallest archive shaped like `docker save` output: a manifest naming one config."""
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {}}).encode()
    digest = hashlib.sha256(config).hexdigest()
    manifest = json.dumps(
        [{"Config": f"{digest}.json", "RepoTags": ["team-a/model:1"], "Layers": []}]
    ).encode()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in ((f"{digest}.json", config), ("manifest.json", manifest)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


UPLOADS = {
    "predictions": ("predictions.csv", VALID_CSV),
    "bundle": ("model.zip", bundle_zip()),
    "image": ("image.tar", image_tar()),
}


def stage(content: bytes, filename: str = "upload.bin") -> StagedUpload:
    return stage_chunks([content], filename=filename, max_bytes=10 * 1024**2)


def create(phase: Phase, team: Team, user: Any, kind: str = "predictions",
           content: bytes | None = None, **kwargs: Any) -> Submission:
    filename, default = UPLOADS[kind]
    staged = stage(default if content is None else content, filename)
    return submission_create(phase=phase, team=team, user=user, kind=kind, staged=staged,
                             **kwargs)


def stored_files() -> list[Path]:
    folder = Path(settings.PRIVATE_ROOT) / "submissions"
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def staged_files() -> list[Path]:
    folder = Path(settings.PRIVATE_ROOT) / "staging"
    return sorted(folder.iterdir()) if folder.exists() else []


@pytest.fixture
def phase(challenge) -> Phase:
    """Quotas are test_quota.py's subject; here they leave room for several uploads."""
    return PhaseFactory(challenge=challenge, slug="leaderboard", quota_per_day=20,
                        quota_concurrent=20)


@pytest.fixture
def enqueue() -> Iterator[mock.MagicMock]:
    with mock.patch("core.dispatch.evaluate_submission", autospec=True) as patched:
        yield patched


# --- what a valid upload creates ------------------------------------------------------------


@pytest.mark.parametrize("kind", ["predictions", "bundle", "image"])
def test_it_creates_a_queued_submission_stored_privately(
    kind, phase, team_a, alice, enqueue, django_capture_on_commit_callbacks
) -> None:
    filename, content = UPLOADS[kind]

    with django_capture_on_commit_callbacks(execute=True):
        submission = create(phase, team_a, alice, kind)
        enqueue.assert_not_called()  # only once the row is committed

    enqueue.assert_called_once_with(submission.pk)
    submission.refresh_from_db()
    assert submission.status == Submission.Status.QUEUED
    assert (submission.number, submission.kind, submission.filename) == (1, kind, filename)
    assert submission.created_by == alice and submission.team == team_a
    stored = private_path(submission.file_path)
    assert stored.is_file()
    assert Path(settings.PRIVATE_ROOT).resolve() in stored.parents
    assert submission.sha256 == hashlib.sha256(content).hexdigest() == sha256_file(stored)
    assert submission.size == len(content) == stored.stat().st_size
    assert staged_files() == []


def test_it_numbers_submissions_per_team_and_phase(
    phase, challenge, team_a, team_c, alice, bob, carol, enqueue
) -> None:
    other_phase = Phase.objects.create(
        challenge=challenge, slug="final", title="Final", opens_at=phase.opens_at,
        closes_at=phase.closes_at, submission_kinds=["predictions"])

    numbers = [create(phase, team_a, user).number for user in (alice, bob, alice)]

    assert numbers == [1, 2, 3]
    assert create(phase, team_c, carol).number == 1
    assert create(other_phase, team_a, bob).number == 1
    assert create(phase, team_a, bob).number == 4


def test_it_writes_an_audit_event(phase, team_a, bob, enqueue) -> None:
    submission = create(phase, team_a, bob)

    event = AuditEvent.objects.get(verb="submission.created")
    assert (event.actor_id, event.challenge_id) == (bob.pk, phase.challenge.pk)
    assert event.target == f"submission:{submission.pk}"
    assert event.data == {"kind": "predictions", "sha256": submission.sha256,
                          "size": submission.size}


# --- refusals that change nothing else ------------------------------------------------------


def assert_nothing_changed(enqueue: mock.MagicMock) -> None:
    assert not Submission.objects.exists()
    assert stored_files() == []
    assert staged_files() == []
    assert not AuditEvent.objects.filter(verb="submission.created").exists()
    enqueue.assert_not_called()


def refuse(error: type[SubmissionError], phase: Phase, team: Team, user: Any, enqueue: Any,
           django_capture_on_commit_callbacks: Any, kind: str = "predictions",
           content: bytes | None = None) -> SubmissionError:
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(error) as caught:
        create(phase, team, user, kind, content)
    assert_nothing_changed(enqueue)
    assert caught.value.message  # safe text for the participant
    return caught.value


@pytest.mark.parametrize("window", [
    pytest.param((timedelta(days=1), timedelta(days=5)), id="not-yet-open"),
    pytest.param((timedelta(days=-5), timedelta(days=-1)), id="closed"),
])
def test_it_refuses_outside_the_window(
    window, phase, team_a, alice, enqueue, django_capture_on_commit_callbacks
) -> None:
    now = timezone.now()
    Phase.objects.filter(pk=phase.pk).update(opens_at=now + window[0], closes_at=now + window[1])
    phase.refresh_from_db()

    refuse(PhaseClosed, phase, team_a, alice, enqueue, django_capture_on_commit_callbacks)


def test_it_refuses_a_user_without_a_team(
    phase, team_a, dave, enqueue, django_capture_on_commit_callbacks
) -> None:
    refuse(NotAMember, phase, team_a, dave, enqueue, django_capture_on_commit_callbacks)


def test_it_refuses_a_member_of_another_team(
    phase, team_a, team_c, carol, enqueue, django_capture_on_commit_callbacks
) -> None:
    refuse(NotAMember, phase, team_a, carol, enqueue, django_capture_on_commit_callbacks)


def test_it_refuses_a_team_of_another_challenge(
    phase, alice, enqueue, django_capture_on_commit_callbacks
) -> None:
    elsewhere = TeamFactory(captain=alice)  # alice's team in some other challenge

    refuse(NotAMember, phase, elsewhere, alice, enqueue, django_capture_on_commit_callbacks)


def test_it_refuses_a_kind_the_phase_does_not_accept(
    phase, team_a, alice, enqueue, django_capture_on_commit_callbacks
) -> None:
    Phase.objects.filter(pk=phase.pk).update(submission_kinds=["predictions"])
    phase.refresh_from_db()

    error = refuse(KindNotAllowed, phase, team_a, alice, enqueue,
                   django_capture_on_commit_callbacks, kind="bundle")
    assert "predictions" in error.message


def test_it_refuses_when_the_terms_are_not_accepted(
    phase, challenge, team_a, alice, enqueue, django_capture_on_commit_callbacks
) -> None:
    challenge.terms_version += 1  # new terms: the earlier acceptance no longer counts
    challenge.save()
    phase.refresh_from_db()

    refuse(TermsNotAccepted, phase, team_a, alice, enqueue, django_capture_on_commit_callbacks)


@pytest.mark.parametrize("content", [
    pytest.param(b"ident,prob\nc1,0.5\n", id="wrong-header"),
    pytest.param(b"id,score\nc1,NaN\n", id="nan"),
    pytest.param(b"id,score\nc1,1.5\n", id="above-one"),
    pytest.param(b"id,score\nc1,high\n", id="text"),
    pytest.param(b"\xef\xbb\xbf", id="empty"),  # a BOM only: non-empty bytes, no header
    pytest.param(b"id,score\n", id="header-only"),
])
def test_it_refuses_a_bad_predictions_csv(
    content, phase, team_a, alice, enqueue, django_capture_on_commit_callbacks
) -> None:
    refuse(InvalidUpload, phase, team_a, alice, enqueue, django_capture_on_commit_callbacks,
           content=content)


def test_it_refuses_an_empty_file_when_staging(phase) -> None:
    with pytest.raises(InvalidUpload, match="empty"):
        stage(b"")
    assert staged_files() == []


@pytest.mark.parametrize("members", [
    pytest.param({"model.txt": "w=1\n"}, id="no-predict-py"),
    pytest.param({"model/predict.py": "print(1)\n"}, id="predict-py-in-a-folder"),
    pytest.param({"predict.py": "print(1)\n", "../evil.py": "x\n"}, id="path-traversal"),
    pytest.param({"predict.py": "print(1)\n", "/etc/cron.d/x": "x\n"}, id="absolute-path"),
])
def test_it_refuses_a_bad_bundle(
    members, phase, team_a, alice, enqueue, django_capture_on_commit_callbacks
) -> None:
    refuse(InvalidUpload, phase, team_a, alice, enqueue, django_capture_on_commit_callbacks,
           kind="bundle", content=bundle_zip(members))


@pytest.mark.parametrize("content", [
    pytest.param(b"this is not a tar archive at all\n" * 40, id="text"),
    pytest.param(bundle_zip(), id="a-zip"),
    pytest.param(b"\x00" * 10240, id="zeros"),
])
def test_it_refuses_an_image_that_is_not_a_docker_archive(
    content, phase, team_a, alice, enqueue, django_capture_on_commit_callbacks
) -> None:
    refuse(InvalidUpload, phase, team_a, alice, enqueue, django_capture_on_commit_callbacks,
           kind="image", content=content)


def test_a_refusal_keeps_earlier_submissions_and_numbers(
    phase, team_a, alice, enqueue
) -> None:
    first = create(phase, team_a, alice)

    with pytest.raises(InvalidUpload):
        create(phase, team_a, alice, content=b"id,score\nc1,2\n")

    assert list(Submission.objects.all()) == [first]
    assert stored_files() == [private_path(first.file_path)]
    assert create(phase, team_a, alice).number == 2


# --- idempotency ------------------------------------------------------------------------


def test_the_same_idempotency_key_returns_the_same_submission(
    phase, team_a, alice, enqueue, django_capture_on_commit_callbacks
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        first = create(phase, team_a, alice, idempotency_key="run-42")
    with django_capture_on_commit_callbacks(execute=True):
        again = create(phase, team_a, alice, content=b"id,score\nc9,0.3\n",
                       idempotency_key="run-42")

    assert again.pk == first.pk
    assert Submission.objects.count() == 1
    assert stored_files() == [private_path(first.file_path)]
    assert staged_files() == []
    enqueue.assert_called_once_with(first.pk)


def test_idempotency_keys_belong_to_one_user(phase, team_a, alice, bob, enqueue) -> None:
    first = create(phase, team_a, alice, idempotency_key="run-42")

    other = create(phase, team_a, bob, idempotency_key="run-42")

    assert other.pk != first.pk and other.number == 2
    assert len(stored_files()) == 2


@pytest.mark.django_db(transaction=True)
def test_a_retry_racing_the_first_request_gets_the_same_submission(
    phase, team_a, alice, enqueue
) -> None:
    """A client that times out and retries while its first request is still being stored."""
    staged = [stage(VALID_CSV, "predictions.csv") for _ in range(2)]
    barrier = threading.Barrier(2)
    results: list[Any] = [None, None]

    def submit(i: int) -> None:
        try:
            barrier.wait()
            results[i] = submission_create(
                phase=Phase.objects.get(pk=phase.pk), team=Team.objects.get(pk=team_a.pk),
                user=alice, kind="predictions", staged=staged[i], idempotency_key="retry-1")
        except Exception as error:  # noqa: BLE001 - reported by the assertion below
            results[i] = error
        finally:
            connection.close()

    threads = [threading.Thread(target=submit, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert all(isinstance(r, Submission) for r in results), results
    assert results[0].pk == results[1].pk
    assert Submission.objects.count() == 1
    assert len(stored_files()) == 1
    assert staged_files() == []
    enqueue.assert_called_once_with(results[0].pk)


# --- organiser baselines ----------------------------------------------------------------


@pytest.fixture
def organisers_team(challenge, olga) -> Team:
    return TeamFactory(challenge=challenge, name="Organisers", captain=olga,
                       is_organiser_team=True)


def test_organisers_add_baselines_outside_the_window_and_quota(
    phase, organisers_team, olga, enqueue
) -> None:
    now = timezone.now()
    Phase.objects.filter(pk=phase.pk).update(
        opens_at=now - timedelta(days=9), closes_at=now - timedelta(days=1),
        quota_per_day=1, quota_total=1, quota_concurrent=1)
    phase.refresh_from_db()

    baselines = [create(phase, organisers_team, olga, is_baseline=True) for _ in range(3)]

    assert [b.number for b in baselines] == [1, 2, 3]
    assert all(b.is_baseline and b.status == Submission.Status.QUEUED for b in baselines)


def test_only_organisers_add_baselines(
    phase, team_a, alice, enqueue, django_capture_on_commit_callbacks
) -> None:
    Phase.objects.filter(pk=phase.pk).update(closes_at=timezone.now() - timedelta(seconds=1),
                                             opens_at=timezone.now() - timedelta(days=2))
    phase.refresh_from_db()

    with pytest.raises(NotAMember):
        create(phase, team_a, alice, is_baseline=True)

    assert_nothing_changed(enqueue)


def test_baselines_still_respect_the_phase_kinds(phase, organisers_team, olga, enqueue) -> None:
    Phase.objects.filter(pk=phase.pk).update(submission_kinds=["image"])
    phase.refresh_from_db()

    with pytest.raises(KindNotAllowed):
        create(phase, organisers_team, olga, "predictions", is_baseline=True)


# --- final-entry selection ------------------------------------------------------------


def succeeded(submission: Submission) -> Submission:
    Submission.objects.filter(pk=submission.pk).update(status=Submission.Status.SUCCEEDED)
    submission.refresh_from_db()
    return submission


def test_a_team_selects_up_to_the_selection_limit(phase, team_a, alice, bob, enqueue) -> None:
    Phase.objects.filter(pk=phase.pk).update(selection_limit=2, quota_concurrent=10)
    phase.refresh_from_db()
    first, second, third = (succeeded(create(phase, team_a, alice)) for _ in range(3))

    submission_select(submission=first, user=alice, selected=True)
    submission_select(submission=second, user=bob, selected=True)
    with pytest.raises(QuotaExceeded):
        submission_select(submission=third, user=alice, selected=True)
    submission_select(submission=first, user=bob, selected=False)
    submission_select(submission=third, user=alice, selected=True)

    chosen = set(Submission.objects.filter(selected=True).values_list("pk", flat=True))
    assert chosen == {second.pk, third.pk}
    verbs = list(AuditEvent.objects.filter(verb__startswith="submission.").exclude(
        verb="submission.created").order_by("at", "pk").values_list("verb", flat=True))
    assert verbs == ["submission.selected", "submission.selected", "submission.unselected",
                     "submission.selected"]


def test_selecting_again_does_not_use_another_slot(phase, team_a, alice, enqueue) -> None:
    Phase.objects.filter(pk=phase.pk).update(selection_limit=1)
    phase.refresh_from_db()
    entry = succeeded(create(phase, team_a, alice))

    submission_select(submission=entry, user=alice, selected=True)
    submission_select(submission=entry, user=alice, selected=True)

    assert Submission.objects.get(pk=entry.pk).selected


def test_only_a_succeeded_submission_can_be_selected(phase, team_a, alice, enqueue) -> None:
    entry = create(phase, team_a, alice)

    with pytest.raises(SubmissionError, match="successfully scored"):
        submission_select(submission=entry, user=alice, selected=True)

    assert not Submission.objects.get(pk=entry.pk).selected


def test_only_team_members_select_entries(phase, team_a, team_c, alice, carol, enqueue) -> None:
    entry = succeeded(create(phase, team_a, alice))

    with pytest.raises(NotAMember):
        submission_select(submission=entry, user=carol, selected=True)

    assert not Submission.objects.get(pk=entry.pk).selected


def test_selection_is_frozen_once_the_phase_closes(phase, team_a, alice, enqueue) -> None:
    entry = succeeded(create(phase, team_a, alice))
    Phase.objects.filter(pk=phase.pk).update(closes_at=timezone.now() - timedelta(seconds=1))
    entry.refresh_from_db()

    with pytest.raises(PhaseClosed):
        submission_select(submission=entry, user=alice, selected=True)


# --- cancelling --------------------------------------------------------------------------


def test_a_queued_submission_can_be_cancelled(phase, team_a, alice, bob, enqueue) -> None:
    entry = create(phase, team_a, alice)

    cancelled = submission_cancel(submission=entry, user=bob)

    assert cancelled.status == Submission.Status.CANCELLED
    assert cancelled.finished_at is not None
    assert AuditEvent.objects.filter(verb="submission.cancelled", actor_id=bob.pk,
                                     target=f"submission:{entry.pk}").exists()


@pytest.mark.parametrize("status", [Submission.Status.RUNNING, Submission.Status.SCORING,
                                    Submission.Status.SUCCEEDED, Submission.Status.CANCELLED])
def test_a_submission_past_the_queue_cannot_be_cancelled(
    status, phase, team_a, alice, enqueue
) -> None:
    entry = create(phase, team_a, alice)
    Submission.objects.filter(pk=entry.pk).update(status=status)

    with pytest.raises(SubmissionError, match="waiting in the queue"):
        submission_cancel(submission=entry, user=alice)

    assert Submission.objects.get(pk=entry.pk).status == status
    assert not AuditEvent.objects.filter(verb="submission.cancelled").exists()


def test_only_the_team_or_organisers_cancel(
    phase, team_a, team_c, alice, carol, olga, enqueue
) -> None:
    entry = create(phase, team_a, alice)

    with pytest.raises(NotAMember):
        submission_cancel(submission=entry, user=carol)
    assert Submission.objects.get(pk=entry.pk).status == Submission.Status.QUEUED

    assert submission_cancel(submission=entry, user=olga).status == Submission.Status.CANCELLED
