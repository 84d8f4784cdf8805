"""Writes for submissions: create (window, kind, membership, terms, quota under a row lock),
cancel, final-entry selection, the team's notes and resumable uploads.

Quotas are checked and the per-team number assigned while holding a lock on the team row,
so concurrent uploads by team-mates are serialised and can never exceed a quota; the
UniqueConstraint on (phase, team, number) backs the numbering up.
"""

from __future__ import annotations

import logging
import os
import shutil
import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F, Max, Q
from django.utils import timezone

from challenges import selectors as challenge_selectors
from challenges.exceptions import TermsNotAccepted
from challenges.models import PREDICTIONS_NEED_PUBLIC_INPUTS, Phase, Team
from challenges.visibility import phase_rights
from core import dispatch
from core.exceptions import DomainError, RequestTooLarge
from core.services import audit_record
from core.storage import private_root, sha256_file
from heldout_kernel import validation
from submissions import selectors
from submissions.exceptions import (
    InvalidUpload,
    KindNotAllowed,
    NotAMember,
    NoteTooLong,
    PhaseClosed,
    QuotaExceeded,
    StorageFull,
    SubmissionError,
    UploadLimit,
)
from submissions.models import NOTE_MAX_LENGTH, Submission, UploadSession
from submissions.uploads import StagedUpload, chunk_path, safe_filename, staging_dir

logger = logging.getLogger(__name__)


def upload_limits() -> validation.UploadLimits:
    return validation.UploadLimits(
        max_image_bytes=settings.HELDOUT_MAX_IMAGE_BYTES,
        max_image_unpacked=settings.HELDOUT_MAX_IMAGE_UNPACKED_BYTES,
        max_image_ratio=settings.HELDOUT_MAX_IMAGE_RATIO,
    )


def max_upload_bytes(kind: str) -> int:
    limits = upload_limits()
    return {
        Phase.Kind.PREDICTIONS: limits.max_predictions_bytes,
        Phase.Kind.BUNDLE: limits.max_bundle_bytes,
        Phase.Kind.IMAGE: limits.max_image_bytes,
    }.get(kind, limits.max_bundle_bytes)


def check_upload_content(*, kind: str, path: Path) -> None:
    """Shape checks that need no hidden data and are quick enough for a web request; raise
    InvalidUpload. Image archives are unpacked by the worker instead (scoring checks them
    with streaming size and compression limits before loading), so a compressed bomb never
    ties up a web process."""
    limits = upload_limits()
    if kind == Phase.Kind.PREDICTIONS:
        validation.check_predictions_upload(path, limits=limits)
    elif kind == Phase.Kind.BUNDLE:
        validation.check_bundle(path, limits=limits)
    elif kind == Phase.Kind.IMAGE:
        validation.check_image_header(path)  # the first block only; the worker reads the rest
    else:
        raise InvalidUpload(f"Unknown submission kind {kind!r}.")


def _check_kind(*, phase: Phase, kind: str) -> None:
    if kind not in phase.submission_kinds:
        allowed = ", ".join(phase.submission_kinds) or "none"
        raise KindNotAllowed(
            f"This phase does not accept {kind} submissions (it accepts {allowed})."
        )
    # Checked here too, not only at import and in the admin: a predictions file scored on
    # hidden inputs would be an oracle for the hidden labels.
    if kind == Phase.Kind.PREDICTIONS and phase.evaluation_set and not phase.inputs_published:
        raise KindNotAllowed(PREDICTIONS_NEED_PUBLIC_INPUTS)


def _check_window(phase: Phase) -> None:
    if not phase.is_open():
        raise PhaseClosed(
            f"“{phase.title}” accepts submissions from {phase.opens_at:%Y-%m-%d %H:%M} "
            f"to {phase.closes_at:%Y-%m-%d %H:%M} UTC."
        )


def _check_rules(*, phase: Phase, team: Team, user: Any, kind: str, is_baseline: bool) -> None:
    if team.challenge_id != phase.challenge_id:
        raise NotAMember("That team is not part of this challenge.")
    if not team.memberships.filter(user=user).exists():
        raise NotAMember("Only members of the team can submit for it.")
    _check_kind(phase=phase, kind=kind)
    if is_baseline:
        if not challenge_selectors.is_organiser(challenge=phase.challenge, user=user):
            raise NotAMember("Only organisers of the challenge can add baselines.")
        return  # organisers may add baselines outside the window and quotas
    _check_window(phase)
    if not challenge_selectors.has_accepted_terms(challenge=phase.challenge, user=user):
        raise TermsNotAccepted("Accept the challenge's data-use terms before submitting.")


def _check_quota(*, phase: Phase, team: Team) -> None:
    quota = selectors.quota_status(phase=phase, team=team)
    if quota.running >= phase.quota_concurrent:
        raise QuotaExceeded(
            f"Your team already has {quota.running} submission(s) being evaluated; the limit "
            f"is {phase.quota_concurrent} at a time."
        )
    if quota.used_today >= phase.quota_per_day:
        raise QuotaExceeded(
            f"Your team has used all {phase.quota_per_day} submissions for today; "
            f"the quota resets at {quota.resets_at:%H:%M} UTC."
        )
    if quota.used_total >= phase.quota_total:
        raise QuotaExceeded(
            f"Your team has used all {phase.quota_total} submissions for this phase."
        )


def submission_precheck(*, phase: Phase, user: Any, size: int) -> Team:
    """Every rule that can refuse a direct upload and needs none of its bytes, checked before
    the body is read (a request's Content-Length is `size`): a stranger, a team without
    submissions left or a closed phase costs the platform no disk. Files above
    HELDOUT_MAX_DIRECT_UPLOAD_BYTES go through the resumable upload, which checks all this
    when it starts. `submission_create` checks the rules again, under the team's lock."""
    team = selectors.require_team(phase=phase, user=user)
    _check_window(phase)
    if not challenge_selectors.has_accepted_terms(challenge=phase.challenge, user=user):
        raise TermsNotAccepted("Accept the challenge's data-use terms before submitting.")
    _check_quota(phase=phase, team=team)
    limit = settings.HELDOUT_MAX_DIRECT_UPLOAD_BYTES
    if size > limit:
        raise RequestTooLarge(
            f"Files above {limit // 1024**2} MB go through the resumable upload (POST "
            ".../uploads/, then the chunks; the heldout CLI and the page do this for you).")
    _check_free_disk(size)
    return team


def _check_free_disk(size: int) -> None:
    free = shutil.disk_usage(staging_dir()).free
    if free - size < settings.HELDOUT_MIN_FREE_DISK_BYTES:
        raise StorageFull("The platform is short of disk space and accepts no new uploads "
                          "right now; the organisers have been told. Try again later.")


def _storage_path(staged: StagedUpload, *, phase: Phase, team: Team) -> str:
    folder = f"submissions/{phase.pk}/{team.pk}/{staged.sha256[:12]}-{staged.path.stem}"
    return f"{folder}/{staged.filename}"


def _store_file(staged: StagedUpload, relative: str) -> None:
    target = private_root() / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(staged.path, target)


def submission_by_key(*, user: Any, idempotency_key: str | None) -> Submission | None:
    """The submission `user` already made with this Idempotency-Key, if any."""
    return _existing(user=user, idempotency_key=idempotency_key)


def _existing(*, user: Any, idempotency_key: str | None) -> Submission | None:
    if not idempotency_key:
        return None
    return Submission.objects.filter(created_by=user, idempotency_key=idempotency_key).first()


def submission_create(
    *, phase: Phase, team: Team, user: Any, kind: str, staged: StagedUpload,
    idempotency_key: str | None = None, is_baseline: bool = False,
) -> Submission:
    """Create a queued submission from a staged upload and schedule its evaluation.

    On any refusal the staged file is removed and nothing else changes.
    """
    if (found := _existing(user=user, idempotency_key=idempotency_key)) is not None:
        staged.path.unlink(missing_ok=True)
        return found
    try:
        check_upload_content(kind=kind, path=staged.path)
        submission = _create_locked(
            phase=phase, team=team, user=user, kind=kind, staged=staged,
            idempotency_key=idempotency_key, is_baseline=is_baseline,
        )
    except DomainError:
        staged.path.unlink(missing_ok=True)
        raise
    return submission


@transaction.atomic
def _create_locked(
    *, phase: Phase, team: Team, user: Any, kind: str, staged: StagedUpload,
    idempotency_key: str | None, is_baseline: bool,
) -> Submission:
    team = Team.objects.select_for_update().get(pk=team.pk)
    # A retry that raced its first request waited on the lock above; it gets that submission.
    if (found := _existing(user=user, idempotency_key=idempotency_key)) is not None:
        staged.path.unlink(missing_ok=True)
        return found
    _check_rules(phase=phase, team=team, user=user, kind=kind, is_baseline=is_baseline)
    if not is_baseline:
        _check_quota(phase=phase, team=team)
    last = team.submissions.filter(phase=phase).aggregate(n=Max("number"))["n"] or 0
    submission = Submission(
        phase=phase, team=team, created_by=user, number=last + 1, kind=kind,
        filename=staged.filename, file_path=_storage_path(staged, phase=phase, team=team),
        sha256=staged.sha256, size=staged.size,
        idempotency_key=idempotency_key or None, is_baseline=is_baseline,
    )
    submission.full_clean()
    submission.save()
    # Moved only once the row is valid and saved, so a refused row leaves no stored file.
    _store_file(staged, submission.file_path)
    audit_record(verb="submission.created", actor=user, challenge=phase.challenge,
                 target=f"submission:{submission.pk}",
                 data={"kind": kind, "sha256": staged.sha256, "size": staged.size})
    transaction.on_commit(lambda: evaluation_dispatch(submission_pk=submission.pk))
    return submission


def evaluation_dispatch(*, submission_pk: int) -> bool:
    """Hand a queued submission's evaluation to the broker and note it (the outbox). A broker
    that is down leaves the submission queued and undispatched, never lost: the sweeper
    hands it over again (`evaluations_redispatch`). Returns whether the hand-over worked."""
    try:
        dispatch.evaluate_submission(submission_pk)
    except Exception:  # any broker failure: the row is committed; the sweeper retries
        logger.warning("could not queue the evaluation of submission %s; the sweeper will",
                       submission_pk, exc_info=True)
        return False
    Submission.objects.filter(pk=submission_pk, status=Submission.Status.QUEUED).update(
        dispatched_at=timezone.now())
    return True


def evaluations_redispatch(*, now: datetime | None = None) -> list[int]:
    """Queued submissions whose evaluation never reached the broker (it was down) for a
    minute, or reached it so long ago that its message must be lost (a broker restart),
    handed over again. A second message for one submission is harmless: only one claim
    can win (scoring.pipeline.claim)."""
    now = now or timezone.now()
    waiting = Submission.objects.filter(
        Q(dispatched_at__isnull=True, created_at__lt=now - timedelta(minutes=1))
        | Q(dispatched_at__lt=now - timedelta(seconds=settings.HELDOUT_REDISPATCH_SECONDS)),
        status=Submission.Status.QUEUED)
    pks = list(waiting.values_list("pk", flat=True))
    return [pk for pk in pks if evaluation_dispatch(submission_pk=pk)]


@transaction.atomic
def submission_select(*, submission: Submission, user: Any, selected: bool) -> Submission:
    """Mark or unmark a final entry; at most `phase.selection_limit` per team."""
    phase = submission.phase
    team = Team.objects.select_for_update().get(pk=submission.team_id)
    if not team.memberships.filter(user=user).exists():
        raise NotAMember("Only members of the team can select its entries.")
    if phase.has_closed():
        raise PhaseClosed("Final entries can only be changed while the phase is open.")
    if selected and submission.status != Submission.Status.SUCCEEDED:
        raise SubmissionError("Only a successfully scored submission can be selected.")
    if selected and not submission.selected:
        chosen = team.submissions.filter(phase=phase, selected=True).count()
        if chosen >= max(phase.selection_limit, 1):
            raise QuotaExceeded(
                f"Your team has already selected {chosen} final entries (the limit)."
            )
    Submission.objects.filter(pk=submission.pk).update(selected=selected)
    submission.refresh_from_db()
    if phase.selection_limit:  # selected entries are what the board ranks
        transaction.on_commit(lambda: dispatch.refresh_leaderboard(phase.pk))
    audit_record(verb="submission.selected" if selected else "submission.unselected",
                 actor=user, challenge=phase.challenge, target=f"submission:{submission.pk}")
    return submission


def submission_note(*, submission: Submission, user: Any, note: str) -> Submission:
    """Set (or, with an empty string, clear) the team's note on one of its submissions.
    Members only: organisers read notes but the words are the team's."""
    if not submission.team.memberships.filter(user=user).exists():
        raise NotAMember("Only members of the team can write notes on its submissions.")
    note = note.strip()
    if len(note) > NOTE_MAX_LENGTH:
        raise NoteTooLong(f"A note holds at most {NOTE_MAX_LENGTH} characters "
                          f"(this one has {len(note)}).")
    Submission.objects.filter(pk=submission.pk).update(note=note)
    submission.note = note
    return submission


@transaction.atomic
def submission_cancel(*, submission: Submission, user: Any) -> Submission:
    if not phase_rights(phase=submission.phase, user=user).can_view_submission(submission):
        raise NotAMember("Only members of the team or organisers can cancel its submissions.")
    cancelled = Submission.update_status(
        submission.pk, to=Submission.Status.CANCELLED, finished_at=timezone.now())
    if not cancelled:
        raise SubmissionError("Only a submission still waiting in the queue can be cancelled.")
    audit_record(verb="submission.cancelled", actor=user, challenge=submission.phase.challenge,
                 target=f"submission:{submission.pk}")
    submission.refresh_from_db()
    return submission


# --- resumable uploads -------------------------------------------------------------------


def upload_session_start(
    *, phase: Phase, user: Any, kind: str, filename: str, total_size: int
) -> UploadSession:
    """Open a resumable upload. Everything that would refuse the finished file is checked
    first (before gigabytes are sent), plus caps on what one person and one team may hold
    open at once and a floor of free disk; submission_create checks the rules again."""
    team = selectors.require_team(phase=phase, user=user)
    _check_kind(phase=phase, kind=kind)
    _check_window(phase)
    if not challenge_selectors.has_accepted_terms(challenge=phase.challenge, user=user):
        raise TermsNotAccepted("Accept the challenge's data-use terms before submitting.")
    _check_quota(phase=phase, team=team)  # the same rule as at the finish, before any byte
    if total_size <= 0:
        raise InvalidUpload("The file is empty.")
    if total_size > max_upload_bytes(kind):
        raise InvalidUpload(
            f"The file is larger than the limit of {max_upload_bytes(kind) // 1024**2} MB."
        )
    with transaction.atomic():
        # The team row lock serialises team-mates' starts, so the caps hold under races.
        Team.objects.select_for_update().get(pk=team.pk)
        _check_upload_caps(phase=phase, user=user, team=team, total_size=total_size)
        session = UploadSession.objects.create(
            user=user, phase=phase, kind=kind, filename=filename, total_size=total_size
        )
    chunk_path(session.uid).touch()
    return session


def _check_upload_caps(*, phase: Phase, user: Any, team: Team, total_size: int) -> None:
    caps = (
        ("You", "have", selectors.open_uploads(user=user),
         settings.HELDOUT_MAX_OPEN_UPLOADS_PER_USER, settings.HELDOUT_MAX_STAGED_BYTES_PER_USER),
        ("Your team", "has", selectors.open_uploads(team=team, phase=phase),
         settings.HELDOUT_MAX_OPEN_UPLOADS_PER_TEAM, settings.HELDOUT_MAX_STAGED_BYTES_PER_TEAM),
    )
    for owner, has, (count, size), cap, byte_cap in caps:
        if count >= cap:
            raise UploadLimit(f"{owner} already {has} {count} unfinished uploads (the limit); "
                              "finish or let one expire first.")
        if size + total_size > byte_cap:
            raise UploadLimit(f"{owner} would hold more than {byte_cap // 1024**2} MB in "
                              "unfinished uploads; finish or let one expire first.")
    _check_free_disk(total_size)


def upload_session_append(
    *, session: UploadSession, offset: int, chunks: Iterable[bytes]
) -> UploadSession:
    """Append bytes at `offset`, which must equal what the server already holds."""
    with transaction.atomic():
        locked = UploadSession.objects.select_for_update().filter(pk=session.pk).first()
        if locked is None:
            raise InvalidUpload("This upload expired after a long pause; start a new upload.")
        if offset != locked.received:
            raise InvalidUpload(f"Resume from byte {locked.received}, not {offset}.")
        written = _append(locked, chunks)
        UploadSession.objects.filter(pk=locked.pk).update(
            received=F("received") + written, touched_at=timezone.now()
        )
    session.refresh_from_db()
    return session


def _append(session: UploadSession, chunks: Iterable[bytes]) -> int:
    path, room, written = chunk_path(session.uid), session.total_size - session.received, 0
    if not path.exists():  # claimed by upload_session_finish
        raise InvalidUpload("This upload was already finished or refused; start a new upload.")
    with path.open("r+b") as handle:
        handle.seek(session.received)
        handle.truncate()
        for chunk in chunks:
            written += len(chunk)
            if written > room:
                handle.truncate(session.received)
                raise InvalidUpload("More bytes were sent than the declared file size.")
            handle.write(chunk)
    return written


def upload_session_finish(*, session: UploadSession, team: Team) -> Submission:
    """Turn a complete upload into a submission; finishing it again returns the same one.

    The session itself is the idempotency key, so no other key is taken: a key shared with
    another upload would hand back that upload's submission.
    """
    with transaction.atomic():
        # Concurrent finishes of one upload queue on its row: the first creates the
        # submission, the others then find and return it.
        session = UploadSession.objects.select_for_update(of=("self",)).select_related(
            "phase__challenge").get(pk=session.pk)
        if session.submission_id:
            # Read anew: a row read while waiting on the lock would carry a stale join.
            return Submission.objects.get(pk=session.submission_id)
        if session.received != session.total_size:
            raise InvalidUpload(
                f"The upload is incomplete ({session.received} of {session.total_size} bytes)."
            )
        staged = _claim_chunks(session)
        submission = submission_create(
            phase=session.phase, team=team, user=session.user, kind=session.kind, staged=staged,
        )
        UploadSession.objects.filter(pk=session.pk).update(submission=submission)
    return submission


def _claim_chunks(session: UploadSession) -> StagedUpload:
    """Rename the assembled file to a staging name of its own, so that of two finishes only
    one gets it; hashing and content checks then run outside any transaction."""
    claimed = staging_dir() / f"{uuid.uuid4().hex}.part"
    try:
        chunk_path(session.uid).rename(claimed)
    except FileNotFoundError:
        raise InvalidUpload(
            "This upload was already finished or refused; start a new upload."
        ) from None
    # Fresh mtime: the expiry sweep must not take a claimed file of a long-paused upload.
    os.utime(claimed)
    return StagedUpload(path=claimed, filename=safe_filename(session.filename),
                        size=session.total_size, sha256=sha256_file(claimed))


def uploads_expire(*, now: datetime | None = None) -> int:
    """Remove unfinished uploads idle for longer than the expiry, and their staged bytes.

    Also removes staging files nothing refers to any more (a web process that died between
    receiving a file and storing it), once they are as old as the expiry. Returns how many
    upload sessions went.
    """
    cutoff = (now or timezone.now()) - timedelta(hours=settings.HELDOUT_UPLOAD_EXPIRY_HOURS)
    stale = UploadSession.objects.filter(submission__isnull=True, touched_at__lt=cutoff)
    removed = 0
    for uid in stale.values_list("uid", flat=True).iterator():
        # The conditions are checked again by the DELETE itself: a chunk being appended now
        # holds the row lock and moves `touched_at`, so that upload lives on.
        deleted, _ = UploadSession.objects.filter(
            uid=uid, submission__isnull=True, touched_at__lt=cutoff
        ).delete()
        if deleted:
            chunk_path(uid).unlink(missing_ok=True)
            removed += 1
    _remove_stale_staging_files(cutoff)
    return removed


def _remove_stale_staging_files(cutoff: datetime) -> None:
    # Finished uploads no longer hold a staging file; only the unfinished ones can.
    unfinished = UploadSession.objects.filter(submission__isnull=True).values_list("uid", flat=True)
    live = {chunk_path(uid).name for uid in unfinished}
    for path in staging_dir().glob("*.part"):
        if path.name not in live and path.stat().st_mtime < cutoff.timestamp():
            path.unlink(missing_ok=True)
