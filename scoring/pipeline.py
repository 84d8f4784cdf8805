"""Evaluating one submission: claim it, run the sanity lane then the hidden lane in the
sandbox, validate the output with trusted code, score it against the hidden labels.

Runs happen outside any database transaction. Every outcome ends in a final status: a
model's failure gets its error class and a message the team understands; anything
unexpected becomes `internal_error` with details only in the server log.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.module_loading import import_string

from challenges.models import EvaluationSet, Phase, Team
from core import dispatch
from core.services import audit_record
from core.storage import private_path
from heldout_kernel import contract, validation
from heldout_kernel.contract import (
    HIDDEN_DETECTION_MESSAGES,
    HIDDEN_LANE_MESSAGES,
    INTERNAL_MESSAGE,
)
from heldout_kernel.judge import ModelOutput, judge, matched_evidence, overlay_detections
from heldout_kernel.lesions import image_sizes
from heldout_kernel.runtime_image import ensure_runtime_image
from heldout_kernel.sandbox.base import (
    Backend,
    BackendError,
    InvalidImage,
    Limits,
    RunResult,
    RunSpec,
)
from heldout_kernel.scores import score_predictions
from scoring import collusion, outcome, station_jobs, vectors
from scoring import labels as labels_io
from scoring import release as score_release
from scoring.arrays import to_bytes
from scoring.models import Result, Run
from submissions.exceptions import InvalidPredictions, InvalidUpload
from submissions.models import Submission
from submissions.services import upload_limits

logger = logging.getLogger(__name__)
Status = Submission.Status
UPLOAD = "upload"  # failed before any run: the upload itself cannot be used
ENGINE_BACKOFF_S = 0.5
Error = Submission.ErrorClass


@dataclass(frozen=True)
class Runnable:
    image: str
    command: tuple[str, ...] | None
    submission_dir: Path | None


class RunFailed(Exception):
    """A model's failure: its error class, the message its team sees, and where it failed
    ("upload", "sanity" or "hidden": hidden-data failures always count against quotas)."""

    def __init__(self, error_class: str, message: str, lane: str) -> None:
        super().__init__(message)
        self.error_class = error_class
        self.message = message
        self.lane = lane


def get_backend() -> Backend:
    backend_class = import_string(settings.HELDOUT_BACKEND)
    return backend_class()  # type: ignore[no-any-return]


def claim(submission_pk: int) -> Submission | None:
    """Move queued -> running in one conditional UPDATE, starting a new attempt with its
    lease; a redelivered task gets None."""
    claimed = Submission.update_status(
        submission_pk, to=Status.RUNNING, from_=[Status.QUEUED], started_at=timezone.now(),
        attempts=F("attempts") + 1, error_class="", error_message="", failed_lane="",
        lease_until=outcome.lease_until(),
    )
    if not claimed:
        return None
    return Submission.objects.select_related(
        "phase__challenge", "phase__evaluation_set", "phase__sanity_set", "team"
    ).get(pk=submission_pk)


def evaluate(submission_pk: int, *, backend: Backend | None = None) -> Submission | None:
    submission = claim(submission_pk)
    if submission is None:
        logger.info("submission %s is not queued; nothing to do", submission_pk)
        return None
    workdir = Path(tempfile.mkdtemp(prefix=workdir_prefix(submission.pk, submission.attempts)))
    backend = backend or get_backend()
    try:
        with outcome.Heartbeat(submission.pk, submission.attempts):
            _attempt(submission, backend, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        backend.wait_for_cleanup()  # the outcome is stored already; containers go now
    submission.refresh_from_db()
    return submission


def workdir_prefix(submission_pk: int, attempt: int) -> str:
    """Work folders are named by attempt, so the sweeper can remove a dead attempt's, and
    carry the container prefix, so two platforms (a demo and a test run) on one machine
    never take each other's folders for leftovers."""
    return f"{settings.HELDOUT_CONTAINER_PREFIX}{submission_pk}-a{attempt}-"


def _attempt(submission: Submission, backend: Backend, workdir: Path) -> None:
    """Run one attempt to its outcome; a stale attempt stops without writing anything."""
    attempt = submission.attempts
    try:
        _evaluate(submission, backend, workdir)
    except outcome.StaleAttempt:
        logger.warning("submission %s attempt %s was taken over; stopping", submission.pk,
                       attempt)
    except RunFailed as failure:
        outcome.finish(submission=submission, attempt=attempt, status=Status.FAILED,
                       error_class=failure.error_class, message=failure.message,
                       lane=failure.lane)
    except Exception:
        logger.exception("internal error while evaluating submission %s", submission.pk)
        outcome.finish(submission=submission, attempt=attempt, status=Status.FAILED,
                       error_class=Error.INTERNAL_ERROR, message=INTERNAL_MESSAGE)


def _evaluate(submission: Submission, backend: Backend, workdir: Path) -> None:
    phase = submission.phase
    if phase.evaluation_set is None:
        raise RuntimeError(f"phase {phase} has no evaluation set")
    runnable = _prepare(submission, backend, workdir)
    if phase.evaluation_set.is_remote:
        _hand_to_stations(submission, backend, runnable, workdir)
        return
    table = labels_io.load_labels(phase.evaluation_set)
    if runnable is None:
        output = ModelOutput(_read_uploaded_predictions(submission, table))
    else:
        if phase.sanity_set is not None and not _sanity_passed_before(submission):
            sanity_ids = labels_io.load_labels(phase.sanity_set).ids
            _run_lane(submission, backend, runnable, phase.sanity_set, sanity_ids,
                      Run.Lane.SANITY, workdir)
        output = _run_lane(submission, backend, runnable, phase.evaluation_set,
                           table.ids, Run.Lane.HIDDEN, workdir)
    if not Submission.update_status(submission.pk, to=Status.SCORING,
                                    attempt=submission.attempts):
        raise outcome.StaleAttempt
    _audit_hidden_access(submission, phase.evaluation_set, "hidden_labels.scored",
                         _what_ran(submission, runnable))
    _store_result(submission, phase.evaluation_set, table, output)


def _hand_to_stations(submission: Submission, backend: Backend, runnable: Runnable | None,
                      workdir: Path) -> None:
    """Hidden cases at data stations: the public sanity lane runs here, then each station
    gets a job for its part (scoring.station_jobs) and the attempt waits for them."""
    phase = submission.phase
    assert runnable is not None  # phases at stations take models only
    if phase.sanity_set is not None and not _sanity_passed_before(submission):
        sanity_ids = labels_io.load_labels(phase.sanity_set).ids
        _run_lane(submission, backend, runnable, phase.sanity_set, sanity_ids,
                  Run.Lane.SANITY, workdir)
    station_jobs.offer(submission)


def _sanity_passed_before(submission: Submission) -> bool:
    """The same file (sha256) already passed this phase's sanity lane: a re-score, or the
    same model again, goes straight to the hidden lane (the sanity set is public and fixed)."""
    return Run.objects.filter(
        submission__phase_id=submission.phase_id, submission__sha256=submission.sha256,
        lane=Run.Lane.SANITY, error_class="", finished_at__isnull=False,
    ).exists()


def _prepare(submission: Submission, backend: Backend, workdir: Path) -> Runnable | None:
    upload = private_path(submission.file_path)
    if submission.kind == "predictions":
        return None
    if submission.kind == "bundle":
        folder = workdir / "submission"
        try:
            validation.extract_bundle(upload, folder)
        except InvalidUpload as error:
            raise RunFailed(Error.INVALID_UPLOAD, error.message, UPLOAD) from None
        return Runnable(ensure_runtime_image(), ("python3", "predict.py"), folder)
    image = _load_image(submission, backend, upload)  # checks the archive before the engine
    ensure_runtime_image()  # the /output keeper container runs from it for images too
    return Runnable(image, None, None)


def _load_image(submission: Submission, backend: Backend, upload: Path) -> str:
    if submission.image_id:
        return submission.image_id
    try:
        # Unpacked here in the worker, never in a web request, with streaming size and
        # compression-ratio limits (a compressed bomb is refused at its first header).
        validation.check_image_archive(upload, limits=upload_limits())
    except InvalidUpload as error:
        raise RunFailed(Error.INVALID_UPLOAD, error.message, UPLOAD) from None
    try:
        image_id = backend.load_image(upload)
    except InvalidImage as error:
        raise RunFailed(Error.INVALID_UPLOAD, str(error), UPLOAD) from None
    Submission.objects.filter(pk=submission.pk).update(image_id=image_id)
    return image_id


def _read_uploaded_predictions(
    submission: Submission, table: labels_io.LabelTable
) -> validation.Predictions:
    try:
        return validation.read_predictions(
            private_path(submission.file_path), expected_ids=table.ids
        )
    except InvalidPredictions as error:
        # predictions kind: only for phases whose inputs are public, so ids may be named
        raise RunFailed(Error.INVALID_OUTPUT, error.message, Run.Lane.HIDDEN) from None


def container_name(submission: Submission, lane: str) -> str:
    return f"{settings.HELDOUT_CONTAINER_PREFIX}{submission.pk}-a{submission.attempts}-{lane}"


def hidden_files_digest(evaluation_set: EvaluationSet) -> str:
    """One sha256 naming every hidden file of a set: over its sorted `path sha256` lines."""
    lines = "".join(f"{path} {digest}\n" for path, digest in sorted(
        evaluation_set.checksums.items()))
    return hashlib.sha256(lines.encode()).hexdigest()


def _audit_hidden_access(
    submission: Submission, evaluation_set: EvaluationSet, verb: str, ran: dict[str, str],
) -> None:
    """Every use of hidden data is an event naming the data and what used it."""
    audit_record(
        verb=verb, challenge=submission.phase.challenge, target=f"submission:{submission.pk}",
        data={"evaluation_set": evaluation_set.name, "attempt": submission.attempts,
              "hidden_files_sha256": hidden_files_digest(evaluation_set),
              "labels_sha256": evaluation_set.checksums.get("labels.csv", ""), **ran},
    )


def _what_ran(submission: Submission, runnable: Runnable | None) -> dict[str, str]:
    if runnable is not None and submission.kind == "image":
        return {"image": runnable.image}
    return {f"{submission.kind}_sha256": submission.sha256}


def _run_lane(
    submission: Submission, backend: Backend, runnable: Runnable,
    evaluation_set: EvaluationSet, expected: tuple[str, ...], lane: str, workdir: Path,
) -> ModelOutput:
    labels_io.verify_checksums(evaluation_set)
    if lane == Run.Lane.HIDDEN:
        _audit_hidden_access(submission, evaluation_set, "hidden_data.run",
                             _what_ran(submission, runnable))
    output = workdir / lane / "output"
    output.mkdir(parents=True)
    phase = submission.phase
    spec = RunSpec(
        name=container_name(submission, lane), image=runnable.image,
        input_dir=private_path(evaluation_set.inputs_dir), output_dir=output,
        limits=_limits(phase),
        env=_environment(phase), command=runnable.command,
        submission_dir=runnable.submission_dir,
    )
    run = start_run(submission, lane, spec.name)
    try:
        result = _run_retrying(backend, spec, submission)
    except BackendError:
        logger.exception("engine failure in %s", spec.name)
        _save_run(run, None, Error.INTERNAL_ERROR, "The sandbox failed to run your model.")
        raise
    sizes = _image_sizes(evaluation_set, expected) if phase.is_detection else None
    error_class, message, written = judge(result, output, expected, phase.limit_seconds, sizes)
    if written is not None and written.detections is not None and lane == Run.Lane.SANITY:
        run.detections = overlay_detections(written.detections, expected)
    _save_run(run, result, error_class, message)
    if error_class:
        if lane == Run.Lane.SANITY:
            raise RunFailed(error_class, f"Sanity run on public data: {message}", lane)
        messages = HIDDEN_DETECTION_MESSAGES if phase.is_detection else HIDDEN_LANE_MESSAGES
        raise RunFailed(error_class, messages[error_class], lane)
    assert written is not None
    return written


LANE_WAIT_POLL_S = 1.0


def start_run(submission: Submission, lane: str, name: str) -> Run:
    """The Run row of a lane, created once no other submission of the team runs a lane of
    the other kind: a team's public run (whose log the team reads) never overlaps one of its
    runs on hidden data, which could otherwise signal into it through shared CPU time.
    Checked and created under the team's row lock; the attempt keeps its lease meanwhile."""
    while True:
        with transaction.atomic():
            Team.objects.select_for_update().filter(pk=submission.team_id).first()
            if not _other_lane_running(submission, lane):
                return Run.objects.create(submission=submission, lane=lane,
                                          attempt=submission.attempts, container_name=name)
        if not outcome.is_current(submission.pk, submission.attempts):
            raise outcome.StaleAttempt
        time.sleep(LANE_WAIT_POLL_S)


def _other_lane_running(submission: Submission, lane: str) -> bool:
    other = Run.Lane.HIDDEN if lane == Run.Lane.SANITY else Run.Lane.SANITY
    return Run.objects.filter(
        submission__team_id=submission.team_id, lane=other, finished_at__isnull=True,
        attempt=F("submission__attempts"), submission__lease_until__gt=timezone.now(),
        submission__status__in=(Status.RUNNING, Status.SCORING),
    ).exclude(submission_id=submission.pk).exists()


def _image_sizes(evaluation_set: EvaluationSet, ids: tuple[str, ...]) -> dict[str, tuple[int, int]]:
    """Each film's image size, for checking detection coordinates (PNG headers only)."""
    return image_sizes(private_path(evaluation_set.inputs_dir), ids)


def _run_retrying(backend: Backend, spec: RunSpec, submission: Submission) -> RunResult:
    """Run, retrying engine failures (e.g. Docker restarting) with backoff; the backend
    removes a failed run's resources, so the same name is free again. A retry is only made
    while this attempt is still the current one."""
    for retry in range(settings.HELDOUT_ENGINE_RETRIES + 1):
        try:
            return backend.run(spec)
        except BackendError:
            if retry == settings.HELDOUT_ENGINE_RETRIES:
                raise
            if not outcome.is_current(submission.pk, submission.attempts):
                raise outcome.StaleAttempt from None
            logger.warning("engine failure in %s; retrying", spec.name, exc_info=True)
            time.sleep(min(ENGINE_BACKOFF_S * 2**retry, 30))
    raise AssertionError("unreachable")


def _environment(phase: Phase) -> dict[str, str]:
    return contract.environment(task=phase.task_name, cpus=phase.limit_cpus)


def _limits(phase: Phase) -> Limits:
    return contract.limits(cpus=phase.limit_cpus, memory_mb=phase.limit_memory_mb,
                           seconds=phase.limit_seconds)


def _save_run(run: Run, result: RunResult | None, error_class: str, message: str) -> None:
    if result is not None:
        run.exit_code, run.timed_out = result.exit_code, result.timed_out
        run.oom_killed, run.duration_s = result.oom_killed, result.duration_s
        run.log_tail = result.log_tail
    run.error_class, run.error_message = error_class, message
    run.finished_at = timezone.now()
    run.save()


def _store_result(
    submission: Submission, evaluation_set: EvaluationSet, table: labels_io.LabelTable,
    output: ModelOutput,
) -> None:
    """Score, then write the result and the success in one transaction that holds the
    submission's row and proves this attempt is still the current one."""
    phase = submission.phase
    predictions = output.predictions
    evidence = matched_evidence(table, output.detections)
    if phase.is_detection and evidence is None:
        raise RuntimeError(f"detection phase {phase} has no lesions or no detections")
    scored = score_predictions(
        table, predictions.scores, predictions.labels,
        metrics=[phase.primary_metric, *phase.secondary_metrics], primary=phase.primary_metric,
        evidence=evidence,
    )
    released, source = score_release.release(
        submission=submission, table=table, exact=scored.metrics, scores=predictions.scores,
        labels=predictions.labels)
    with transaction.atomic():
        if not Submission.objects.select_for_update().filter(
                pk=submission.pk, attempts=submission.attempts, status=Status.SCORING).exists():
            raise outcome.StaleAttempt
        Result.objects.update_or_create(submission=submission, defaults={
            "evaluation_set": evaluation_set, "metrics": scored.metrics,
            "subgroups": scored.subgroups, "case_scores": to_bytes(predictions.scores),
            "case_labels": None if predictions.labels is None else to_bytes(predictions.labels),
            "case_detections": None if evidence is None else evidence.to_bytes(),
            "released": released, "released_from": source,
            "resamples": None, "part_subgroups": {}, "resample_key": "",
            "scored_with": vectors.scored_key(phase),
        })
        audit_record(verb="score.released", challenge=phase.challenge,
                     target=f"submission:{submission.pk}",
                     data={"policy": phase.score_release, "released": released, "from": source})
        outcome.finish(submission=submission, attempt=submission.attempts,
                       status=Status.SUCCEEDED, refresh_board=False)
    # After the team has its result: the board's statistics for it, once, here where the
    # per-case scores live; then the board, here too (no queue hop).
    try:
        _store_vectors(submission, vectors.compute(phase, table, predictions.scores,
                                                   predictions.labels, evidence))
    except Exception:  # the result stands; the board computes them itself (vectors.of_result)
        logger.exception("could not store the board statistics of submission %s", submission.pk)
    dispatch.refresh_leaderboard_here(phase.pk)
    collusion.flag_submission(submission, predictions.scores)


def _store_vectors(submission: Submission, statistics: dict[str, vectors.PartStats]) -> None:
    phase = submission.phase
    resamples, part_subgroups = vectors.pack(phase, statistics)
    Result.objects.filter(submission=submission).update(
        resamples=resamples, part_subgroups=part_subgroups,
        resample_key=vectors.stats_key(phase))
