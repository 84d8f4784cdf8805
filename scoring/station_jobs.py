"""Hidden-data runs at data stations, on the platform's side.

A phase whose evaluation set lives at stations runs its sanity lane here (public data) and
then offers one job per station dataset. A station claims a job (the claim number fences all
it sends afterwards), renews the job's lease by heartbeats, downloads the artefact and posts
aggregates or an error class. A job whose lease runs out goes back to the queue and is
offered again; only the current claim's answer counts, so exactly one result is kept.
When every job of the attempt is done, the sites' aggregates are combined
(heldout_kernel.aggregates) into the submission's result; a failed job fails the submission with
the hidden lane's fixed sentence.
"""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from challenges.models import Phase, Station, StationDataset
from core import dispatch
from core.services import audit_record
from heldout_kernel import aggregates
from heldout_kernel.contract import (
    HIDDEN_DETECTION_MESSAGES,
    HIDDEN_LANE_MESSAGES,
    INTERNAL_MESSAGE,
    Error,
)
from scoring import job_status, outcome, vectors
from scoring import release as score_release
from scoring.models import Result, StationJob
from submissions.models import Submission

logger = logging.getLogger(__name__)
Status = StationJob.Status
HIDDEN_FAILURES = {Error.TIMEOUT, Error.OUT_OF_MEMORY, Error.NONZERO_EXIT,
                   Error.MISSING_OUTPUT, Error.INVALID_OUTPUT}
STATION_PREFIX = "heldout-st-"


class StaleJob(Exception):
    """The claim is no longer the job's current one (its lease ran out and it was offered
    again, or the submission moved on); whatever the station sends is dropped."""


def job_lease() -> timezone.datetime:
    return timezone.now() + timedelta(seconds=settings.HELDOUT_STATION_LEASE_SECONDS)


def offer(submission: Submission) -> list[StationJob]:
    """One queued job per source of the phase's set, for the submission's current attempt;
    the attempt then waits for the stations (no central lease: the jobs have theirs)."""
    evaluation = submission.phase.evaluation_set
    assert evaluation is not None and evaluation.is_remote
    stations = {s.name: s for s in Station.objects.filter(
        name__in=[source["station"] for source in evaluation.sources])}
    with transaction.atomic():
        if not Submission.objects.filter(pk=submission.pk, attempts=submission.attempts,
                                         status=Submission.Status.RUNNING).update(
                lease_until=None):
            raise outcome.StaleAttempt
        jobs = [StationJob.objects.get_or_create(
            submission=submission, attempt=submission.attempts,
            station=stations[source["station"]], dataset=source["dataset"])[0]
            for source in evaluation.sources]
    return jobs


def open_jobs(submission: Submission) -> list[StationJob]:
    return list(StationJob.objects.filter(submission=submission, attempt=submission.attempts,
                                          status__in=StationJob.OPEN).select_related("station"))


@transaction.atomic
def claim(*, station: Station) -> StationJob | None:
    """The station's oldest queued job of a live attempt, now running under a new claim:
    only for challenges the station serves, never on a dataset whose changed fingerprint
    an organiser has not accepted yet."""
    paused = StationDataset.objects.filter(station=station, changed_at__isnull=False)
    job = (StationJob.objects.select_for_update(skip_locked=True, of=("self",))
           .filter(station=station, status=Status.QUEUED,
                   submission__status=Submission.Status.RUNNING,
                   submission__phase__challenge__slug__in=station.allowed_challenges)
           .exclude(dataset__in=paused.values("name"))
           .select_related("submission__phase__challenge").order_by("created_at", "pk")
           .first())
    Station.objects.filter(pk=station.pk).update(last_contact_at=timezone.now())
    if job is None:
        return None
    if job.attempt != job.submission.attempts:  # an old attempt's job: never run it
        job.status, job.error_class = Status.FAILED, Error.INTERNAL_ERROR
        job.message = "superseded by a newer attempt"
        job.save(update_fields=["status", "error_class", "message"])
        return None
    job.status, job.claim = Status.RUNNING, job.claim + 1
    job.claimed_at, job.lease_until = timezone.now(), job_lease()
    job.save(update_fields=["status", "claim", "claimed_at", "lease_until"])
    _audit_claim(job)
    return job


def _audit_claim(job: StationJob) -> None:
    submission = job.submission
    audit_record(verb="hidden_data.run", challenge=submission.phase.challenge,
                 target=f"submission:{submission.pk}",
                 data={"station": job.station.name, "dataset": job.dataset,
                       "attempt": job.attempt, "claim": job.claim,
                       f"{submission.kind}_sha256": submission.sha256})


def current(job_pk: int, *, station: Station, claim_number: int) -> StationJob:
    """The job, if this station's claim `claim_number` is still the running one."""
    job = StationJob.objects.select_related("submission__phase__challenge", "station").filter(
        pk=job_pk, station=station).first()
    if job is None or job.status != Status.RUNNING or job.claim != claim_number or (
            job.attempt != job.submission.attempts):
        raise StaleJob
    return job


def heartbeat(*, job_pk: int, station: Station, claim_number: int) -> None:
    updated = StationJob.objects.filter(
        pk=job_pk, station=station, status=Status.RUNNING, claim=claim_number,
        attempt=F("submission__attempts"), submission__status=Submission.Status.RUNNING,
    ).update(lease_until=job_lease())
    Station.objects.filter(pk=station.pk).update(last_contact_at=timezone.now())
    if not updated:
        raise StaleJob


def job_spec(job: StationJob, artefact_url: str) -> dict[str, Any]:
    """What a station needs to run the job: the artefact, the sandbox, the statistics."""
    submission, phase = job.submission, job.submission.phase
    return {
        "job": job.pk, "claim": job.claim, "dataset": job.dataset,
        "challenge": phase.challenge.slug,
        "lease_seconds": settings.HELDOUT_STATION_LEASE_SECONDS,
        # a dot after the name: slugs have none, so station `a` never matches `a-b`'s
        "container_name": f"{STATION_PREFIX}{job.station.name}.{job.pk}-c{job.claim}",
        "submission": {"uid": str(submission.uid), "kind": submission.kind,
                       "sha256": submission.sha256, "size": submission.size,
                       "artefact": artefact_url},
        "phase": {"task": phase.task_name, "metrics": vectors.metric_names(phase),
                  "primary": phase.primary_metric,
                  "bootstrap_resamples": phase.bootstrap_resamples, "seed": phase.pk,
                  "limits": {"cpus": phase.limit_cpus, "memory_mb": phase.limit_memory_mb,
                             "seconds": phase.limit_seconds},
                  "small_cells": {"min_cases": settings.HELDOUT_SUBGROUP_MIN_CASES,
                                  "min_positives": settings.HELDOUT_SUBGROUP_MIN_POSITIVES}},
    }


# --------------------------------------------------------------------------- answers


class UnexpectedFields(ValueError):
    """An answer holding more than the protocol's fields (refused whole, nothing stored)."""


#: All a station's answer holds: its claim, an error class ("" for success) and, for a
#: success, the parts' aggregates. Nothing else a station sends is stored.
ANSWER_KEYS = frozenset({"claim", "error_class", "parts"})
#: Sent empty by stations before issue #20 ("" or null); tolerated empty, refused otherwise.
LEGACY_EMPTY_KEYS = frozenset({"message", "exit_code", "duration_s", "log_tail"})


def record(*, job_pk: int, station: Station, body: dict[str, Any]) -> None:
    """A station's answer for its current claim: aggregates, or an error class. Raises
    UnexpectedFields or ValueError (refused whole: nothing is stored) and StaleJob."""
    claim_number = _check_answer(body)
    error_class = str(body.get("error_class") or "")
    parts = {}
    if not error_class:
        job = current(job_pk, station=station, claim_number=claim_number)
        parts = _checked_parts(body.get("parts"), job.submission.phase)
    with transaction.atomic():
        if not StationJob.objects.select_for_update().filter(pk=job_pk,
                                                              station=station).exists():
            raise StaleJob
        job = current(job_pk, station=station, claim_number=claim_number)
        _store_answer(job, error_class, parts)
    # After the answer is stored: each step below is fenced on its own (the attempt, the
    # submission's status), so a crash here leaves nothing half done that the next answer
    # or a re-score would not finish.
    if error_class:
        _fail_submission(job.pk)
    else:
        complete(job.submission_id, job.attempt)


def _check_answer(body: dict[str, Any]) -> int:
    """The answer's claim number, once its fields are the protocol's: a failure is its error
    class only (a model chooses its messages, exit code, duration and log, which may quote
    hidden cases), a success its parts."""
    extra = sorted(key for key in set(body) - ANSWER_KEYS
                   if key not in LEGACY_EMPTY_KEYS or body[key] not in ("", None))
    if body.get("error_class") and "parts" in body:
        extra.append("parts")
    if extra:
        raise UnexpectedFields(f"an answer holds only claim, error_class and (for a success) "
                               f"parts; it also held {', '.join(map(repr, extra))}")
    claim = body.get("claim")
    if not isinstance(claim, int) or isinstance(claim, bool) or not isinstance(
            body.get("error_class", ""), str):
        raise ValueError("claim must be a whole number and error_class a string")
    return claim


def _checked_parts(raw: Any, phase: Phase) -> dict[str, Any]:
    """The station's parts, checked and rebuilt before anything is stored (everything that
    is combined or drawn later): only the protocol's keys, metrics present, vectors of length
    B, subgroup cells under the small-cell rule and the ROC coarsened, here again."""
    if not isinstance(raw, dict) or not raw or set(raw) - {"public", "private", "all"}:
        raise ValueError("parts must map public/private (or all) to aggregates")
    if "all" in raw and len(raw) > 1:
        raise ValueError("parts are public and private, or all")
    names = vectors.metric_names(phase)
    return {part: aggregates.to_json(aggregates.from_station(
        item, names=names, n_resamples=phase.bootstrap_resamples,
        min_cases=settings.HELDOUT_SUBGROUP_MIN_CASES,
        min_positives=settings.HELDOUT_SUBGROUP_MIN_POSITIVES)) for part, item in raw.items()}


def _store_answer(job: StationJob, error_class: str, parts: dict[str, Any]) -> None:
    known = HIDDEN_FAILURES | {Error.INVALID_UPLOAD, Error.INTERNAL_ERROR}
    job.status = Status.FAILED if error_class else Status.DONE
    job.error_class = error_class if error_class in known or not error_class else (
        Error.INTERNAL_ERROR)
    job.parts, job.finished_at, job.lease_until = parts, timezone.now(), None
    job.save(update_fields=["status", "error_class", "parts", "finished_at", "lease_until"])
    submission = job.submission
    audit_record(verb="station.result", challenge=submission.phase.challenge,
                 target=f"submission:{submission.pk}",
                 data={"station": job.station.name, "dataset": job.dataset,
                       "claim": job.claim, "error_class": job.error_class,
                       "aggregates_sha256": hashlib.sha256(json.dumps(
                           parts, sort_keys=True).encode()).hexdigest()})


def _fail_submission(job_pk: int) -> None:
    job = StationJob.objects.select_related("submission__phase__challenge", "station").get(
        pk=job_pk)
    submission = job.submission
    job_status.move(to=Status.FAILED, where={"submission": submission, "attempt": job.attempt,
                                             "status__in": StationJob.OPEN},
                    error_class=Error.INTERNAL_ERROR,
                    message="stopped: another station's run failed")
    if job.error_class in HIDDEN_FAILURES:
        messages = (HIDDEN_DETECTION_MESSAGES if submission.phase.is_detection
                    else HIDDEN_LANE_MESSAGES)
        error_class, message, lane = job.error_class, messages[job.error_class], "hidden"
    elif job.error_class == Error.INVALID_UPLOAD:
        error_class, lane = Error.INVALID_UPLOAD, "upload"
        message = "The station could not use the upload."
    else:
        error_class, message, lane = Error.INTERNAL_ERROR, INTERNAL_MESSAGE, ""
    outcome.finish(submission=submission, attempt=job.attempt, status="failed",
                   error_class=error_class, message=message, lane=lane)


def complete(submission_pk: int, attempt: int) -> bool:
    """Combine the sites into the result once every job of the attempt is done."""
    submission = Submission.objects.select_related("phase__challenge",
                                                   "phase__evaluation_set").get(pk=submission_pk)
    jobs = list(StationJob.objects.filter(submission=submission, attempt=attempt)
                .select_related("station").order_by("pk"))
    if not jobs or any(job.status != Status.DONE for job in jobs):
        return False
    if not Submission.update_status(submission.pk, to=Submission.Status.SCORING,
                                    attempt=attempt):
        return False
    try:
        combined = combine(submission.phase, jobs)
        visible = "public" if "public" in combined["metrics"] else "all"
        combined["released"], source = score_release.release_from_scores(
            submission=submission, part=visible, exact=combined["metrics"])
    except Exception:  # the answers were checked; this is ours, not the model's
        logger.exception("could not combine the sites of submission %s", submission.pk)
        outcome.finish(submission=submission, attempt=attempt, status="failed",
                       error_class=Error.INTERNAL_ERROR, message=INTERNAL_MESSAGE)
        return False
    with transaction.atomic():
        if not Submission.objects.select_for_update().filter(
                pk=submission.pk, attempts=attempt,
                status=Submission.Status.SCORING).exists():
            return False
        Result.objects.update_or_create(submission=submission, defaults={
            "evaluation_set": submission.phase.evaluation_set, **combined,
            "case_scores": b"", "case_labels": None, "case_detections": None,
            "subgroups": {}, "released_from": source,
            "scored_with": vectors.scored_key(submission.phase)})
        audit_record(verb="score.released", challenge=submission.phase.challenge,
                     target=f"submission:{submission.pk}",
                     data={"policy": submission.phase.score_release,
                           "released": combined["released"], "from": source})
        outcome.finish(submission=submission, attempt=attempt,
                       status=Submission.Status.SUCCEEDED, refresh_board=False)
    dispatch.refresh_leaderboard(submission.phase_id)
    return True


def _sites(jobs: list[StationJob], names: list[str], n_resamples: int
           ) -> dict[str, dict[str, aggregates.SiteAggregate]]:
    """{part: {station/dataset: aggregate}}."""
    out: dict[str, dict[str, aggregates.SiteAggregate]] = {}
    for job in jobs:
        for part, raw in job.parts.items():
            out.setdefault(part, {})[f"{job.station.name}/{job.dataset}"] = (
                aggregates.from_json(raw, names=names, n_resamples=n_resamples))
    return out


def combine(phase: Phase, jobs: list[StationJob]) -> dict[str, Any]:
    """Result fields from the sites' aggregates: combined metrics per part (and on all
    cases), each site's scores and ROC, and the combined board statistics."""
    names = vectors.metric_names(phase)
    by_part = _sites(jobs, names, phase.bootstrap_resamples)
    metrics = {part: aggregates.combine_metrics(list(sites.values()), names)
               for part, sites in by_part.items()}
    # every case: all parts of all sites, combined like sites
    every = [s for sites in by_part.values() for s in sites.values()]
    metrics["all"] = aggregates.combine_metrics(every, names)
    stats = {part: aggregates.PartStats(aggregates.combine_samples(list(sites.values()), names),
                                     aggregates.combine_subgroups(list(sites.values())))
             for part, sites in by_part.items()}
    blob, subgroups = vectors.pack(phase, stats)
    site_metrics: dict[str, Any] = {}
    for part, sites in by_part.items():
        for site, item in sites.items():
            entry = site_metrics.setdefault(
                site, {"metrics": {}, "roc": {}, "n_cases": {}, "n_positive": {}})
            entry["metrics"][part], entry["roc"][part] = item.metrics, item.roc
            entry["n_cases"][part], entry["n_positive"][part] = item.n_cases, item.n_positive
    return {"metrics": metrics, "resamples": blob, "part_subgroups": subgroups,
            "resample_key": vectors.stats_key(phase), "site_metrics": site_metrics}


# --------------------------------------------------------------------------- the sweeper


def sweep_jobs(*, now: timezone.datetime | None = None) -> list[int]:
    """Offer again the jobs whose lease ran out (their station vanished mid-run)."""
    now = now or timezone.now()
    expired = list(StationJob.objects.filter(status=Status.RUNNING, lease_until__lt=now)
                   .select_related("station", "submission__phase__challenge"))
    reoffered = []
    for job in expired:
        if job_status.move(to=Status.QUEUED, lease_until=None, where={
                "pk": job.pk, "status": Status.RUNNING, "claim": job.claim,
                "lease_until__lt": now}):  # a heartbeat since the listing keeps it
            reoffered.append(job.pk)
            audit_record(verb="station.job_reoffered", challenge=job.submission.phase.challenge,
                         target=f"submission:{job.submission_id}",
                         data={"station": job.station.name, "dataset": job.dataset,
                               "claim": job.claim})
    return reoffered


def waiting_for(submission: Submission, *, finished_as_running: bool = False
                ) -> list[dict[str, Any]]:
    """The stations an attempt waits for: whether each has been heard from lately, and
    whether its dataset is paused (a changed fingerprint not accepted yet).
    `finished_as_running`: a job that is done counts as running (what a team sees)."""
    recent = timezone.now() - timedelta(seconds=settings.HELDOUT_STATION_OFFLINE_SECONDS)
    jobs = open_jobs(submission)
    if finished_as_running:
        jobs = list(StationJob.objects.filter(
            submission_id=submission.pk, attempt=submission.attempts).select_related("station"))
        for job in jobs:
            job.status = Status.QUEUED if job.status == Status.QUEUED else Status.RUNNING
    paused = set(StationDataset.objects.filter(
        station__in=[job.station for job in jobs], changed_at__isnull=False).values_list(
        "station_id", "name"))
    return [{"station": job.station.name, "dataset": job.dataset, "status": job.status,
             "online": bool(job.station.last_contact_at and
                            job.station.last_contact_at >= recent),
             "paused": (job.station_id, job.dataset) in paused}
            for job in jobs]


def complete_finished() -> list[int]:
    """Combine the attempts whose station jobs are all done but that were never combined
    (the process stopped between the last answer and the combination)."""
    waiting = Submission.objects.filter(status=Submission.Status.RUNNING,
                                        station_jobs__attempt=F("attempts")).distinct()
    return [s.pk for s in waiting if complete(s.pk, s.attempts)]  # it checks they are done


def offline_for_phase(phase: Phase) -> list[dict[str, Any]]:
    """Stations not heard from lately that submissions of the phase are waiting for."""
    recent = timezone.now() - timedelta(seconds=settings.HELDOUT_STATION_OFFLINE_SECONDS)
    waiting: dict[str, int] = {}
    for job in StationJob.objects.filter(
            submission__phase=phase, submission__status=Submission.Status.RUNNING,
            attempt=F("submission__attempts"), status__in=StationJob.OPEN).select_related(
            "station"):
        if not (job.station.last_contact_at and job.station.last_contact_at >= recent):
            waiting[job.station.name] = waiting.get(job.station.name, 0) + 1
    return [{"station": name, "submissions": n} for name, n in sorted(waiting.items())]
