"""Resource caps: nobody can fill the disk through resumable uploads (a start needs a team,
accepted terms and an open phase; caps per person and per team on what is open; a free-disk
floor), image archives are unpacked by the worker with a compression-ratio limit, and
leaving a team to form a new one does not reset a member's quota."""

from __future__ import annotations

import gzip
import io
import tarfile
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from challenges.exceptions import TermsNotAccepted
from challenges.models import Phase
from challenges.services import team_create, team_leave
from heldout_kernel.validation import UploadLimits, check_image_archive
from submissions.exceptions import (
    InvalidUpload,
    NotAMember,
    PhaseClosed,
    QuotaExceeded,
    StorageFull,
    UploadLimit,
)
from submissions.models import Submission, UploadSession
from submissions.services import submission_create, upload_session_start
from submissions.uploads import stage_chunks
from tests.factories import PhaseFactory, accept_terms

pytestmark = pytest.mark.django_db
GB = 1024**3


@pytest.fixture
def phase(challenge) -> Phase:  # type: ignore[no-untyped-def]
    return PhaseFactory(challenge=challenge, slug="leaderboard", quota_per_day=2,
                        quota_concurrent=10)


def start(phase: Phase, user, size: int = 10 * 1024**2):  # type: ignore[no-untyped-def]
    return upload_session_start(phase=phase, user=user, kind="image", filename="m.tar",
                                total_size=size)


def test_someone_without_a_team_cannot_fill_the_disk(phase, dave) -> None:
    client = APIClient()
    client.force_authenticate(dave)
    url = f"/api/v1/challenges/{phase.challenge.slug}/phases/{phase.slug}/uploads/"
    answers = [client.post(url, {"kind": "image", "filename": "m.tar", "size": 4 * GB},
                           format="json") for _ in range(20)]

    assert {a.status_code for a in answers} == {403}
    assert {a.json()["code"] for a in answers} == {"not_a_member"}
    assert not UploadSession.objects.exists()


def test_a_start_needs_accepted_terms_and_an_open_phase(phase, team_a, alice, bob) -> None:
    phase.challenge.terms_version = 2  # new terms nobody has accepted yet
    phase.challenge.save()
    with pytest.raises(TermsNotAccepted):
        start(phase, bob)
    accept_terms(phase.challenge, bob)
    Phase.objects.filter(pk=phase.pk).update(closes_at=timezone.now() - timedelta(minutes=1),
                                             opens_at=timezone.now() - timedelta(days=1))
    phase.refresh_from_db()
    with pytest.raises(PhaseClosed):
        start(phase, bob)
    assert not UploadSession.objects.exists()


def test_open_uploads_are_capped_per_person_and_per_team(
    phase, team_a, alice, bob, settings
) -> None:
    settings.HELDOUT_MAX_OPEN_UPLOADS_PER_USER = 2
    settings.HELDOUT_MAX_OPEN_UPLOADS_PER_TEAM = 3
    start(phase, alice)
    start(phase, alice)
    with pytest.raises(UploadLimit, match="You already have 2 unfinished uploads"):
        start(phase, alice)
    start(phase, bob)
    with pytest.raises(UploadLimit, match="Your team already has|Your team already have"):
        start(phase, bob)
    assert UploadSession.objects.count() == 3


def test_declared_bytes_are_capped_and_a_disk_floor_is_kept(
    phase, team_a, alice, settings
) -> None:
    settings.HELDOUT_MAX_STAGED_BYTES_PER_USER = 3 * GB
    start(phase, alice, size=2 * GB)
    with pytest.raises(UploadLimit, match="unfinished uploads"):
        start(phase, alice, size=2 * GB)
    settings.HELDOUT_MIN_FREE_DISK_BYTES = 10**18  # more than any disk has
    with pytest.raises(StorageFull):
        start(phase, alice, size=1024)
    client = APIClient()
    client.force_authenticate(alice)
    answer = client.post(f"/api/v1/challenges/{phase.challenge.slug}/phases/{phase.slug}"
                         "/uploads/", {"kind": "image", "filename": "m.tar", "size": 1024},
                         format="json")
    assert (answer.status_code, answer.json()["code"]) == (507, "insufficient_storage")


def gzip_bomb(path: Path, unpacked: int) -> Path:
    """A gzipped tar whose one member is `unpacked` bytes of zeros."""
    with gzip.open(path, "wb", compresslevel=1) as raw, tarfile.open(fileobj=raw, mode="w|") as tar:
        info = tarfile.TarInfo("layer.tar")
        info.size = unpacked
        tar.addfile(info, io.BufferedReader(_Zeros(unpacked)))
    return path


class _Zeros(io.RawIOBase):
    def __init__(self, size: int) -> None:
        self.left = size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def]
        n = min(len(buffer), self.left)
        buffer[:n] = bytes(n)
        self.left -= n
        return n


def test_a_gzip_bomb_is_refused_at_its_first_header(tmp_path: Path) -> None:
    bomb = gzip_bomb(tmp_path / "bomb.tar.gz", 300 * 1024**2)
    assert bomb.stat().st_size < 3 * 1024**2

    with pytest.raises(InvalidUpload, match="uncompressed"):
        check_image_archive(bomb, limits=UploadLimits(max_image_ratio=50))


def test_the_web_request_does_not_unpack_image_archives(phase, team_a, alice, tmp_path) -> None:
    bomb = gzip_bomb(tmp_path / "bomb.tar.gz", 300 * 1024**2)
    staged = stage_chunks([bomb.read_bytes()], filename="bomb.tar.gz", max_bytes=10**9)

    submission = submission_create(phase=phase, team=team_a, user=alice, kind="image",
                                   staged=staged)

    assert submission.status == Submission.Status.QUEUED  # the worker checks it


def test_leaving_and_forming_a_new_team_does_not_reset_a_members_quota(
    phase, team_a, alice, bob
) -> None:
    def submit(team) -> Submission:  # type: ignore[no-untyped-def]
        staged = stage_chunks([b"id,score\nc1,0.5\n"], filename="p.csv", max_bytes=10**6)
        return submission_create(phase=phase, team=team, user=bob, kind="predictions",
                                 staged=staged)

    submit(team_a)
    submit(team_a)
    team_leave(team=team_a, user=bob)
    mine = team_create(challenge=phase.challenge, user=bob, name="Bob's own")

    with pytest.raises(QuotaExceeded):
        submit(mine)
    assert Submission.objects.filter(created_by=bob).count() == 2


def test_a_start_for_someone_else_s_team_phase_is_refused(phase, team_c, alice) -> None:
    with pytest.raises(NotAMember):
        start(PhaseFactory(slug="elsewhere"), alice)
