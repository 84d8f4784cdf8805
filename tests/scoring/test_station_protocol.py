"""The platform's side of data stations, without an engine: registration, fingerprints,
remote evaluation sets in bundles, publishing, claims fenced by their number, leases that
run out and re-offer a job, exactly one result, and the sites' combination."""

from __future__ import annotations

import io
from datetime import timedelta
from unittest import mock

import numpy as np
import pytest
from django.core.management import call_command
from django.utils import timezone
from rest_framework.test import APIClient
from sklearn.metrics import roc_auc_score

from challenges.bundles import import_challenge
from challenges.exceptions import BundleError
from challenges.lifecycle import publish_problems
from challenges.models import Station, StationDataset
from challenges.services import team_create
from challenges.stations import station_add, token_hash
from core.models import AuditEvent
from heldout_kernel import aggregates
from heldout_kernel.cases import read_labels
from heldout_kernel.scores import Cases
from heldout_kernel.stats.curves import roc_curve
from leaderboards.compute import recompute
from leaderboards.models import LeaderboardSnapshot
from scoring import station_jobs
from scoring.models import Result, StationJob
from scoring.pipeline import claim
from scoring.services import sweep_stuck_runs
from submissions.services import submission_create
from submissions.uploads import stage_existing
from tests.bundles import write_station_bundle, write_station_data
from tests.factories import accept_terms
from tests.pipeline.conftest import AGE_MODEL, make_bundle_zip

pytestmark = pytest.mark.django_db
SOURCES = [{"station": "north", "dataset": "cohort"}, {"station": "south", "dataset": "cohort"}]


def _fingerprint(folder):  # type: ignore[no-untyped-def]
    table = read_labels(folder / "labels.csv")
    parts = {p: int((table.split == p).sum()) for p in ("public", "private")}
    return {"sha256": "a" * 64, "files": 2, "n_cases": len(table.ids),
            "n_positive": int(table.y.sum()), "n_lesions": None, "parts": parts}


class FakeStation:
    """What a station sends, computed here from its own data with the shared modules."""

    def __init__(self, name: str, folder, token: str) -> None:  # type: ignore[no-untyped-def]
        self.name, self.folder = name, folder
        self.client = APIClient()
        self.client.credentials(HTTP_AUTHORIZATION=f"Station {token}")
        self.table = read_labels(folder / "labels.csv")

    def hello(self, challenges=("station-test",), **changes):  # type: ignore[no-untyped-def]
        fingerprint = _fingerprint(self.folder) | changes
        return self.client.post("/api/v1/station/hello", {
            "datasets": [{"name": "cohort", "fingerprint": fingerprint}],
            "challenges": list(challenges)}, format="json")

    def claim(self):  # type: ignore[no-untyped-def]
        return self.client.post("/api/v1/station/jobs/claim", {}, format="json")

    def scores(self) -> np.ndarray:
        ages = {row.split(",")[0]: int(row.split(",")[1]) for row in (
            self.folder / "inputs/features.csv").read_text().splitlines()[1:]}
        return np.array([ages[i] / 100 for i in self.table.ids])

    def result(self, job: dict, **extra):  # type: ignore[no-untyped-def]
        phase = job["phase"]
        parts = aggregates.site_aggregates(
            self.table, Cases(self.table.y, self.scores(), None), names=phase["metrics"],
            primary=phase["primary"], n_resamples=phase["bootstrap_resamples"],
            seed=phase["seed"], min_cases=2, min_positives=1)
        body = {"claim": job["claim"], "error_class": "",
                "parts": {p: aggregates.to_json(a) for p, a in parts.items()}, **extra}
        return self.post(job, body)

    def post(self, job: dict, body: dict):  # type: ignore[no-untyped-def]
        return self.client.post(f"/api/v1/station/jobs/{job['job']}/result", body,
                                format="json")


@pytest.fixture
def stations(tmp_path):  # type: ignore[no-untyped-def]
    made = {}
    for n, name in enumerate(("north", "south")):
        _, token = station_add(name=name)
        ids = [f"{name[0]}{i:03d}" for i in range(40 + 20 * n)]
        made[name] = FakeStation(name, write_station_data(tmp_path / name, "cohort", ids,
                                                         seed=n), token)
    return made


@pytest.fixture
def remote_phase(tmp_path, stations, olga):  # type: ignore[no-untyped-def]
    challenge, _ = import_challenge(write_station_bundle(tmp_path / "bundle", SOURCES))
    challenge.organisers.add(olga)
    return challenge.phases.get()


@pytest.fixture
def waiting_only(remote_phase, alice, tmp_path):  # type: ignore[no-untyped-def]
    """A submission whose sanity lane passed, waiting for both stations."""
    accept_terms(remote_phase.challenge, alice)
    team = team_create(challenge=remote_phase.challenge, user=alice, name="Alpha")
    with mock.patch("core.dispatch.evaluate_submission", autospec=True):
        submission = submission_create(
            phase=remote_phase, team=team, user=alice, kind="bundle",
            staged=stage_existing(make_bundle_zip(tmp_path / "m.zip", AGE_MODEL),
                                  filename="m.zip"))
    submission = claim(submission.pk)
    station_jobs.offer(submission)
    return submission


@pytest.fixture
def waiting(waiting_only, stations):  # type: ignore[no-untyped-def]
    """The same, with both stations reporting and serving the challenge."""
    for station in stations.values():
        assert station.hello().status_code == 200
    return waiting_only


def test_station_add_prints_the_token_last_and_stores_its_hash():
    out = io.StringIO()
    call_command("station_add", "east", stdout=out)
    token = out.getvalue().strip().splitlines()[-1]
    station = Station.objects.get(name="east")
    assert station.token_hash == token_hash(token) and token not in station.token_hash
    assert AuditEvent.objects.filter(verb="station.added").exists()


def test_a_bad_token_is_refused(stations):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Station not-a-token")
    assert client.post("/api/v1/station/jobs/claim", {}, format="json").status_code == 401
    assert APIClient().post("/api/v1/station/jobs/claim", {}).status_code == 401


def test_import_waits_for_fingerprints_and_a_changed_one_is_flagged(remote_phase, stations):
    evaluation = remote_phase.evaluation_set
    assert evaluation.is_remote and evaluation.sources == SOURCES
    problems = publish_problems(challenge=remote_phase.challenge)
    assert any("north/cohort has not reported" in p for p in problems)
    for station in stations.values():
        assert station.hello().status_code == 200
    assert not any("has not reported" in p or "does not serve" in p for p in publish_problems(
        challenge=remote_phase.challenge))
    evaluation.refresh_from_db()
    assert (evaluation.n_cases, evaluation.has_split) == (100, True)

    stations["north"].hello(sha256="b" * 64)
    assert StationDataset.objects.get(station__name="north").changed_at is not None
    assert AuditEvent.objects.filter(verb="station.dataset_changed").count() == 1


def test_publishing_needs_every_station_to_serve_the_challenge(remote_phase, stations):
    stations["north"].hello()
    stations["south"].hello(challenges=["another-challenge"])
    problems = " ".join(publish_problems(challenge=remote_phase.challenge))
    assert "station south does not serve this challenge" in problems
    assert "station north does not serve" not in problems


def test_a_station_gets_no_job_of_a_challenge_it_does_not_serve(waiting_only, stations):
    north = stations["north"]
    north.hello(challenges=[])
    assert north.claim().status_code == 204
    north.hello()
    assert north.claim().status_code == 200


def test_a_changed_dataset_pauses_its_jobs_until_an_organiser_accepts_it(
        waiting, stations, olga, alice, client):
    north = stations["north"]
    north.hello(sha256="c" * 64)
    assert north.claim().status_code == 204  # paused
    client.force_login(alice)
    assert "Paused at station north" in client.get(waiting.get_absolute_url()).content.decode()
    client.force_login(olga)
    olga.is_staff = True
    olga.save()
    changelist = "/admin/challenges/station/"
    answer = client.post(changelist, {"action": "accept_changes",
                                      "_selected_action": [Station.objects.get(name="north").pk]})
    assert answer.status_code == 302
    assert StationDataset.objects.get(station__name="north").changed_at is None
    assert AuditEvent.objects.filter(verb="station.dataset_accepted").count() == 1
    assert north.claim().status_code == 200


def test_phases_at_stations_refuse_boot_ladder_boot(tmp_path, stations):
    with pytest.raises(BundleError) as refused:
        import_challenge(write_station_bundle(tmp_path / "b", SOURCES,
                                              score_release="boot-ladder-boot"))
    assert "boot-ladder-boot needs per-case scores" in " ".join(refused.value.problems)


def test_an_attempt_whose_jobs_are_done_is_combined_by_the_sweeper(waiting, stations):
    jobs = {name: station.claim().json() for name, station in stations.items()}
    with mock.patch("scoring.station_jobs.complete", autospec=True) as lost:
        for name, station in stations.items():  # the process stops before combining
            assert station.result(jobs[name]).status_code == 200
    assert lost.call_count == 2
    waiting.refresh_from_db()
    assert waiting.status == "running"
    sweep_stuck_runs()
    waiting.refresh_from_db()
    assert waiting.status == "succeeded"
    assert Result.objects.filter(submission=waiting).count() == 1


def test_an_unregistered_station_is_named_at_import(tmp_path):
    with pytest.raises(BundleError) as refused:
        import_challenge(write_station_bundle(tmp_path / "b", [{"station": "nowhere",
                                                                 "dataset": "x"}]))
    assert "station 'nowhere' is not registered" in " ".join(refused.value.problems)


def test_two_sites_combine_into_one_result_and_board(waiting, stations, remote_phase,
                                                     settings):
    north, south = stations["north"], stations["south"]
    jobs = {}
    for station in (north, south):
        answer = station.claim()
        assert answer.status_code == 200
        jobs[station.name] = answer.json()
        assert station.claim().status_code == 204  # one job per station dataset
    artefact = north.client.get(jobs["north"]["submission"]["artefact"])
    assert artefact.status_code == 200
    assert south.client.get(jobs["north"]["submission"]["artefact"]).status_code == 409
    assert north.result(jobs["north"]).status_code == 200
    waiting.refresh_from_db()
    assert waiting.status == "running"  # still waiting for the south
    assert south.result(jobs["south"]).status_code == 200
    waiting.refresh_from_db()
    assert waiting.status == "succeeded", waiting.error_message

    result = Result.objects.get(submission=waiting)
    assert result.case_scores == b"" and result.case_labels is None
    # AUROC combines site-stratified: the positives x negatives weighted mean of the sites'
    expected, weights = [], []
    for station in (north, south):
        public = station.table.split == "public"
        y, s = station.table.y[public], station.scores()[public]
        expected.append(roc_auc_score(y, s))
        weights.append(y.sum() * (1 - y).sum())
    assert result.metrics["public"]["auroc"] == pytest.approx(
        np.average(expected, weights=weights), abs=1e-12)
    assert set(result.site_metrics) == {"north/cohort", "south/cohort"}

    recompute(phase_pk=remote_phase.pk)
    board = LeaderboardSnapshot.objects.get(phase=remote_phase, board="public").payload
    (entry,) = board["entries"]
    assert board["n_cases"] == 50
    assert set(entry["sites"]) == {"north/cohort", "south/cohort"}
    for name, station in stations.items():  # a site's scores follow the small-cell rule
        public = station.table.split == "public"
        n, n_positive = int(public.sum()), int(station.table.y[public].sum())
        shown = entry["sites"][f"{name}/cohort"]
        allowed = n >= settings.HELDOUT_SUBGROUP_MIN_CASES and (
            n_positive >= settings.HELDOUT_SUBGROUP_MIN_POSITIVES)
        assert shown.get("suppressed", False) is not allowed
        assert bool(shown["metrics"]) is allowed
    low, high = entry["intervals"]["auroc"]
    assert low < entry["metrics"]["auroc"] < high


def test_a_vanished_station_s_job_is_offered_again_and_one_result_is_kept(
        waiting, stations, settings):
    north, south = stations["north"], stations["south"]
    first = north.claim().json()
    south_job = south.claim().json()
    # the north vanishes: its lease runs out and the sweeper offers the job again
    StationJob.objects.filter(pk=first["job"]).update(
        lease_until=timezone.now() - timedelta(seconds=1))
    assert sweep_stuck_runs() == []  # the submission itself is not requeued
    again = north.claim().json()
    assert (again["job"], again["claim"]) == (first["job"], first["claim"] + 1)
    # the old claim's answers are refused, the new one's accepted: exactly one result
    beat = north.client.post(f"/api/v1/station/jobs/{first['job']}/heartbeat",
                             {"claim": first["claim"]}, format="json")
    assert beat.status_code == 409
    assert north.result(first).status_code == 409
    assert north.result(again).status_code == 200
    assert south.result(south_job).status_code == 200
    assert north.result(again).status_code == 409  # a repeat changes nothing
    waiting.refresh_from_db()
    assert waiting.status == "succeeded"
    assert Result.objects.filter(submission=waiting).count() == 1
    assert AuditEvent.objects.filter(verb="station.job_reoffered").count() == 1


def test_a_failure_at_a_station_fails_the_submission_with_the_fixed_sentence(
        waiting, stations):
    north = stations["north"]
    job = north.claim().json()
    body = {"claim": job["claim"], "error_class": "nonzero_exit"}
    assert north.post(job, body).status_code == 200
    waiting.refresh_from_db()
    assert (waiting.status, waiting.error_class, waiting.failed_lane) == (
        "failed", "nonzero_exit", "hidden")
    assert waiting.error_message == "The model stopped with an error on the hidden data."
    assert StationJob.objects.get(submission=waiting, station__name="south").status == "failed"


def test_aggregates_of_the_wrong_length_are_refused(waiting, stations):
    north = stations["north"]
    job = north.claim().json()
    job["phase"]["bootstrap_resamples"] = 10  # the station computed the wrong number
    answer = north.result(job)
    assert answer.status_code == 400 and answer.json()["code"] == "invalid_aggregates"
    assert StationJob.objects.get(pk=job["job"]).status == "running"


def test_the_submission_page_says_which_station_it_waits_for(
        waiting_only, stations, alice, client, settings):
    waiting = waiting_only  # neither station has been heard from
    client.force_login(alice)
    page = client.get(waiting.get_absolute_url()).content.decode()
    assert "Waiting for station north" in page and "Waiting for station south" in page
    stations["north"].hello()
    page = client.get(waiting.get_absolute_url()).content.decode()
    assert "Queued at station <strong>north</strong>" in page
    assert "Waiting for station south" in page


# --- issue #20, attack 10: only the protocol's fields are stored --------------------------

LEAK = "h0001 label=1"


def database_text() -> str:
    """Every row of the database, as text (what an attacker with a dump would read)."""
    out = io.StringIO()
    call_command("dumpdata", stdout=out)
    return out.getvalue()


def _answer(station: FakeStation, job: dict) -> dict:
    """A correct success answer of `station` for `job`, to be tampered with."""
    with mock.patch.object(station, "post", autospec=True) as post:
        station.result(job)
    return post.call_args.args[1]


@pytest.mark.parametrize("extra", [
    {"message": f"case {LEAK}"}, {"log_tail": f"scoring...\n{LEAK}\n"},
    {"exit_code": 0, "duration_s": 12.5}, {"debug": {"cases": [LEAK]}},
], ids=["message", "log_tail", "exit_code", "unknown"])
def test_a_station_s_text_and_unknown_fields_are_refused_and_nothing_is_stored(
        waiting, stations, extra):
    north = stations["north"]
    job = north.claim().json()
    answer = north.post(job, _answer(north, job) | extra)
    assert answer.status_code == 400 and answer.json()["code"] == "unexpected_fields"
    assert set(extra) <= set(answer.json()["detail"].replace("'", " ").split())
    stored = StationJob.objects.get(pk=job["job"])
    assert (stored.status, stored.parts) == ("running", {})
    failure = {"claim": job["claim"], "error_class": "nonzero_exit", **extra}
    assert north.post(job, failure).status_code == 400
    assert LEAK not in database_text() and "12.5" not in database_text()
    assert not {"exit_code", "duration_s", "log_tail"} & {
        f.name for f in StationJob._meta.get_fields()}


def test_a_failure_is_its_error_class_and_older_stations_empty_fields_are_dropped(
        waiting, stations):
    north = stations["north"]
    job = north.claim().json()
    older = {"claim": job["claim"], "error_class": "timeout", "message": "",
             "exit_code": None, "duration_s": None, "log_tail": ""}
    assert north.post(job, older).status_code == 200
    stored = StationJob.objects.get(pk=job["job"])
    assert (stored.status, stored.error_class, stored.message) == ("failed", "timeout", "")


@pytest.mark.parametrize("tamper, problem", [
    (lambda part: part.update(cases={"h0001": 1}), "a part has exactly the keys"),
    (lambda part: part["metrics"].update(h0001=1.0), "metrics must name exactly"),
    (lambda part: part["subgroups"].update(sex={"F": {
        "n": 30, "n_positive": 12, "score": 0.7, "weight": 1.0, "ids": [LEAK]}}),
     "a subgroup cell is {suppressed: true} or has exactly the keys"),
    (lambda part: part["subgroups"].update({LEAK + " and more text" * 5: {}}),
     "short labels"),
    (lambda part: part.update(roc=[[0, 0], [0.5, 0.2], [0.4, 0.9], [1, 1]]),
     "roc points must"),
], ids=["part key", "metric", "cell key", "column name", "roc"])
def test_unknown_keys_inside_the_parts_are_refused(waiting, stations, tamper, problem):
    north = stations["north"]
    job = north.claim().json()
    body = _answer(north, job)
    tamper(body["parts"]["public"])
    answer = north.post(job, body)
    assert answer.status_code == 400 and answer.json()["code"] == "invalid_aggregates"
    assert problem in answer.json()["detail"]
    assert StationJob.objects.get(pk=job["job"]).parts == {}
    assert LEAK not in database_text()


def test_cells_are_suppressed_and_a_fine_roc_coarsened_again_centrally(
        waiting, stations, settings):
    """A station that skipped the small-cell rule and sent a point per case: the platform
    applies the rule itself before storing."""
    north = stations["north"]
    job = north.claim().json()
    body = _answer(north, job)
    rng = np.random.default_rng(7)
    y = rng.random(5000) < 0.3
    order = np.argsort(-(rng.random(5000) + 0.4 * y), kind="stable")
    tp = np.r_[0, np.cumsum(y[order])]
    fp = np.arange(5001) - tp
    fine = [[float(f / (~y).sum()), float(t / y.sum())] for f, t in zip(fp, tp, strict=True)]
    part = body["parts"]["public"]
    part.update(n_cases=5000, n_positive=int(y.sum()), roc=fine)
    part["subgroups"] = {"sex": {
        "F": {"n": 3, "n_positive": 1, "score": 1.0, "weight": 2.0},
        "M": {"n": 300, "n_positive": 100, "score": 0.75, "weight": 20000.0}}}
    assert len(fine) == 5001
    assert north.post(job, body).status_code == 200
    stored = StationJob.objects.get(pk=job["job"]).parts["public"]
    assert stored["subgroups"] == {"sex": {"F": {"suppressed": True}, "M": {
        "n": 300, "n_positive": 100, "score": 0.75, "weight": 20000.0}}}
    expected = roc_curve(y[order], np.arange(5000, 0, -1), min_cases=(
        settings.HELDOUT_SUBGROUP_MIN_CASES), min_positives=settings.HELDOUT_SUBGROUP_MIN_POSITIVES)
    assert expected is not None and len(stored["roc"]) == len(expected.points) <= 101
    assert stored["roc"] == [list(point) for point in expected.points]


def test_nul_bytes_in_an_answer_are_a_4xx_and_not_stored(waiting, stations):
    north = stations["north"]
    job = north.claim().json()
    for extra in ({"log_tail": f"{LEAK}\u0000"}, {"error_class": "timeout\u0000"}):
        body = {"claim": job["claim"], "error_class": "nonzero_exit"} | extra
        answer = north.post(job, body)
        assert answer.status_code == 400, answer.content
        assert set(answer.json()) >= {"code", "detail"}
    body = _answer(north, job)
    body["parts"]["public"]["subgroups"] = {"se\u0000x": {"F": {"suppressed": True}}}
    assert north.post(job, body).status_code == 400
    hello = north.client.post("/api/v1/station/hello", {"datasets": [
        {"name": "co\u0000hort", "fingerprint": _fingerprint(north.folder)}],
        "challenges": ["station-test"]}, format="json")
    assert hello.status_code == 400 and set(hello.json()) >= {"code", "detail"}
    assert StationJob.objects.get(pk=job["job"]).status == "running"
    assert LEAK not in database_text()
