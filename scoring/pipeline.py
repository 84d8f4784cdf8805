"""Evaluating one submission: claim it, run the sanity lane then the hidden lane in the
sandbox, validate the output with trusted code, score it against the hidden labels.

Runs happen outside any database transaction. Every outcome ends in a final status: a
model's failure gets its error class and a message the team understands; anything
unexpected becomes `internal_error` with details only in the server log.
"""

from __future__ import annotations

import io
import logging
import math
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.module_loading import import_string

from challenges.models import EvaluationSet, Phase
from challenges.services import audit_record
from challenges.storage import private_path
from scoring import labels as labels_io
from scoring.backends.base import Backend, BackendError, InvalidImage, Limits, RunResult, RunSpec
from scoring.images import ensure_runtime_image
from scoring.models import Result, Run
from scoring.scores import score_predictions
from submissions import validation
from submissions.exceptions import InvalidPredictions, InvalidUpload
from submissions.models import Submission

logger = logging.getLogger(__name__)
Status = Submission.Status
Error = Submission.ErrorClass


@dataclass(frozen=True)
class Runnable:
    image: str
    command: tuple[str, ...] | None
    submission_dir: Path | None


class RunFailed(Exception):
    def __init__(self, error_class: str, message: str) -> None:
        super().__init__(message)
        self.error_class = error_class
        self.message = message


def get_backend() -> Backend:
    backend_class = import_string(settings.HELDOUT_BACKEND)
    return backend_class()  # type: ignore[no-any-return]


def claim(submission_pk: int) -> Submission | None:
    """Move queued -> running in one conditional UPDATE; a redelivered task gets None."""
    claimed = Submission.objects.filter(pk=submission_pk, status=Status.QUEUED).update(
        status=Status.RUNNING, started_at=timezone.now(), attempts=F("attempts") + 1,
        error_class="", error_message="",
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
    workdir = Path(tempfile.mkdtemp(prefix=f"heldout-{submission.pk}-"))
    try:
        _evaluate(submission, backend or get_backend(), workdir)
    except RunFailed as failure:
        _finish(submission, Status.FAILED, failure.error_class, failure.message)
    except Exception:
        logger.exception("internal error while evaluating submission %s", submission.pk)
        _finish(submission, Status.FAILED, Error.INTERNAL_ERROR,
                "Something went wrong on our side; the organisers have been told. "
                "This attempt does not count against your quota.")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    submission.refresh_from_db()
    return submission


def _evaluate(submission: Submission, backend: Backend, workdir: Path) -> None:
    phase = submission.phase
    if phase.evaluation_set is None:
        raise RuntimeError(f"phase {phase} has no evaluation set")
    runnable = _prepare(submission, backend, workdir)
    table = labels_io.load_labels(phase.evaluation_set)
    if runnable is None:
        predictions = _read_uploaded_predictions(submission, table)
    else:
        if phase.sanity_set is not None:
            sanity_ids = labels_io.load_labels(phase.sanity_set).ids
            _run_lane(submission, backend, runnable, phase.sanity_set, sanity_ids,
                      Run.Lane.SANITY, workdir)
        predictions = _run_lane(submission, backend, runnable, phase.evaluation_set,
                                table.ids, Run.Lane.HIDDEN, workdir)
    Submission.objects.filter(pk=submission.pk).update(status=Status.SCORING)
    _store_result(submission, phase.evaluation_set, table, predictions)
    _finish(submission, Status.SUCCEEDED, "", "")


def _prepare(submission: Submission, backend: Backend, workdir: Path) -> Runnable | None:
    upload = private_path(submission.file_path)
    if submission.kind == "predictions":
        return None
    if submission.kind == "bundle":
        folder = workdir / "submission"
        try:
            validation.extract_bundle(upload, folder)
        except InvalidUpload as error:
            raise RunFailed(Error.INVALID_UPLOAD, error.message) from None
        return Runnable(ensure_runtime_image(), ("python3", "predict.py"), folder)
    ensure_runtime_image()  # the /output keeper container runs from it for images too
    return Runnable(_load_image(submission, backend, upload), None, None)


def _load_image(submission: Submission, backend: Backend, upload: Path) -> str:
    if submission.image_id:
        return submission.image_id
    try:
        image_id = backend.load_image(upload)
    except InvalidImage as error:
        raise RunFailed(Error.INVALID_UPLOAD, str(error)) from None
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
        raise RunFailed(Error.INVALID_OUTPUT, error.message) from None


def container_name(submission: Submission, lane: str) -> str:
    return f"{settings.HELDOUT_CONTAINER_PREFIX}{submission.pk}-a{submission.attempts}-{lane}"


def _run_lane(
    submission: Submission, backend: Backend, runnable: Runnable,
    evaluation_set: EvaluationSet, expected: tuple[str, ...], lane: str, workdir: Path,
) -> validation.Predictions:
    labels_io.verify_checksums(evaluation_set)
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
    run = Run.objects.create(submission=submission, lane=lane, attempt=submission.attempts,
                             container_name=spec.name)
    try:
        result = backend.run(spec)
    except BackendError:
        logger.exception("engine failure in %s", spec.name)
        _save_run(run, None, Error.INTERNAL_ERROR, "The sandbox failed to run your model.")
        raise
    error_class, message, predictions = _judge(result, output, expected, lane, phase.limit_seconds)
    _save_run(run, result, error_class, message)
    if error_class:
        prefix = "Sanity run on public data: " if lane == Run.Lane.SANITY else ""
        raise RunFailed(error_class, prefix + message)
    assert predictions is not None
    return predictions


def _environment(phase: Phase) -> dict[str, str]:
    # BLAS libraries start a thread per host core; cap them at the CPU quota so they neither
    # thrash nor run into the pids limit.
    threads = str(max(1, math.ceil(phase.limit_cpus)))
    env = {"HELDOUT_TASK": phase.challenge.task}
    env.update({name: threads for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                            "MKL_NUM_THREADS")})
    return env


def _limits(phase: Phase) -> Limits:
    # /output and /tmp are tmpfs, whose pages are charged to the model's memory cgroup: keep
    # them well below the memory limit so a full disk shows as ENOSPC, not as the OOM killer.
    scratch_mb = max(16, min(256, phase.limit_memory_mb // 4))
    return Limits(cpus=phase.limit_cpus, memory_mb=phase.limit_memory_mb,
                  seconds=phase.limit_seconds, output_mb=scratch_mb, tmp_mb=scratch_mb)


def _judge(
    result: RunResult, output: Path, expected: tuple[str, ...], lane: str, seconds: int
) -> tuple[str, str, validation.Predictions | None]:
    if result.timed_out:
        return Error.TIMEOUT, f"The model did not finish within {seconds} seconds.", None
    if result.oom_killed:
        return Error.OUT_OF_MEMORY, "The model used more memory than the phase allows.", None
    if result.output_too_large:  # the root cause even when the model then crashed on ENOSPC
        return Error.INVALID_OUTPUT, "The model filled the /output size limit.", None
    if result.exit_code != 0:
        return Error.NONZERO_EXIT, f"The model exited with code {result.exit_code}.", None
    path = output / "predictions.csv"
    if not path.is_file():
        return Error.MISSING_OUTPUT, "The model wrote no /output/predictions.csv.", None
    try:
        return "", "", validation.read_predictions(path, expected_ids=expected)
    except InvalidPredictions as error:
        return Error.INVALID_OUTPUT, _safe_message(error, lane), None


def _safe_message(error: InvalidPredictions, lane: str) -> str:
    """Messages about hidden-data output could echo what the model wrote (a channel out of
    the sandbox), so on the hidden lane the team gets a summary without any values."""
    if lane == Run.Lane.SANITY:
        return error.message
    return ("predictions.csv on the hidden data does not follow the contract (every input id "
            "exactly once, header id,score[,label], scores in [0, 1]). Details are shown for "
            "the sanity run; check your model there.")


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
    predictions: validation.Predictions,
) -> None:
    phase = submission.phase
    scored = score_predictions(
        table, predictions.scores, predictions.labels,
        metrics=[phase.primary_metric, *phase.secondary_metrics], primary=phase.primary_metric,
    )
    Result.objects.update_or_create(
        submission=submission,
        defaults={
            "evaluation_set": evaluation_set, "metrics": scored.metrics,
            "subgroups": scored.subgroups, "case_scores": _to_bytes(predictions.scores),
            "case_labels": None if predictions.labels is None else _to_bytes(predictions.labels),
        },
    )


def _to_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def from_bytes(blob: bytes | memoryview) -> np.ndarray:
    return np.load(io.BytesIO(bytes(blob)), allow_pickle=False)


def _finish(submission: Submission, status: str, error_class: str, message: str) -> None:
    with transaction.atomic():
        Submission.objects.filter(pk=submission.pk).update(
            status=status, error_class=error_class, error_message=message,
            finished_at=timezone.now(),
        )
        audit_record(verb=f"submission.{status}", challenge=submission.phase.challenge,
                     target=f"submission:{submission.pk}",
                     data={"error_class": error_class, "attempt": submission.attempts})
        transaction.on_commit(lambda: _after_finish(submission.pk, status))


def _after_finish(submission_pk: int, status: str) -> None:
    from scoring.tasks import notify_team, refresh_leaderboard

    notify_team.delay(submission_pk=submission_pk)
    # Every final status can change a board (a failed re-score removes an entry).
    phase_pk = Submission.objects.values_list("phase_id", flat=True).get(pk=submission_pk)
    refresh_leaderboard.delay(phase_pk=phase_pk)
