"""The demo's first entries, so the leaderboards are not empty: the organisers' baselines
and entries of the demo teams, all submitted through the real service (and so the worker).
The mammography challenge gets entries on both of its phases: the screening board and the
lesion-detection board. The two-station readmission variant (`--stations`) gets the
readmission entries, built from the single-site bundle's public data."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

from challenges.models import Challenge
from demo.examples import mammography_detector, mammography_model, readmission_bundle
from demo.stations import SLUG as STATION_SLUG
from demo.stations import SOURCE_SLUG as READMISSION_SLUG
from submissions.services import submission_create
from submissions.uploads import stage_existing

# A deliberately simple rule (prior admissions) so the board shows a spread of scores.
RULE_MODEL = """
import csv, os
rows = csv.DictReader(open(os.path.join(os.environ["HELDOUT_INPUT"], "features.csv")))
with open(os.path.join(os.environ["HELDOUT_OUTPUT"], "predictions.csv"), "w") as out:
    out.write("id,score\\n")
    for row in rows:
        visits = int(row["number_inpatient"] or 0) + int(row["number_emergency"] or 0)
        out.write(f"{row['id']},{min(visits, 10) / 10:.3f}\\n")
"""


def _submit(challenge: Challenge, team: Any, user: Any, path: Path, kind: str,
            baseline: bool = False, phase_slug: str | None = None) -> None:
    """Submit to the phase `phase_slug`, or to the challenge's first phase when None."""
    phases = challenge.phases.order_by("order")
    phase = phases.get(slug=phase_slug) if phase_slug else phases.first()
    staged = stage_existing(path, filename=path.name)
    submission_create(phase=phase, team=team, user=user, kind=kind, staged=staged,
                      is_baseline=baseline)
    label = "baseline" if baseline else team.name
    print(f"  submitted {path.name} to {challenge.slug}/{phase.slug} ({label})", flush=True)


def _rule_bundle(out_dir: Path) -> Path:
    target = out_dir / "readmission_prior_visits.zip"
    out_dir.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(target, "w") as archive:
        archive.writestr("predict.py", RULE_MODEL)
    return target


def submit_demo_entries(
    people: dict[str, Any], bundle_root: Path, *, stations: bool = False
) -> None:
    """Entries for every demo challenge; the two-station variant's only with `stations`
    (without its stations running, its entries would wait for them)."""
    models = bundle_root / "models"
    print("Building and submitting the example models:", flush=True)
    for slug, teams in people["teams"].items():
        challenge = Challenge.objects.get(slug=slug)
        bundle = bundle_root / slug
        if slug == READMISSION_SLUG or (slug == STATION_SLUG and stations):
            _submit_readmission(challenge, teams, people, bundle_root / READMISSION_SLUG, models)
        elif slug == "mammography-screening":
            image = mammography_model(bundle, models, kind="image")
            _submit(challenge, teams["organisers"], people["olga"], image, "image", baseline=True)
            zipped = mammography_model(bundle, models, kind="bundle")
            _submit(challenge, teams["alpha"], people["alice"], zipped, "bundle")
            _submit_detectors(challenge, teams, people, bundle, models)


def submit_station_entries(people: dict[str, Any], bundle_root: Path) -> None:
    """The readmission entries on the two-station variant only."""
    print("Submitting the example models to the data stations' challenge:", flush=True)
    _submit_readmission(Challenge.objects.get(slug=STATION_SLUG),
                        people["teams"][STATION_SLUG], people,
                        bundle_root / READMISSION_SLUG, bundle_root / "models")


def _submit_readmission(
    challenge: Challenge, teams: dict[str, Any], people: dict[str, Any], bundle: Path,
    models: Path,
) -> None:
    """The logistic-regression baseline (organisers' and Alpha's) fitted on `bundle`'s public
    training data, and the prior-visits rule (Bravo's)."""
    logreg = readmission_bundle(bundle, models)
    _submit(challenge, teams["organisers"], people["olga"], logreg, "bundle", baseline=True)
    _submit(challenge, teams["alpha"], people["alice"], logreg, "bundle")
    _submit(challenge, teams["bravo"], people["carol"], _rule_bundle(models), "bundle")


def _submit_detectors(
    challenge: Challenge, teams: dict[str, Any], people: dict[str, Any], bundle: Path,
    models: Path,
) -> None:
    """The blob detector (organisers' baseline and Alpha's entry) and its fixed-rule variant
    with fewer detections (Bravo's), so the detection board shows a spread."""
    detector = mammography_detector(bundle, models)
    rule = mammography_detector(bundle, models, variant="rule")
    for team, user, model, baseline in (
        ("organisers", "olga", detector, True),
        ("alpha", "alice", detector, False),
        ("bravo", "carol", rule, False),
    ):
        _submit(challenge, teams[team], people[user], model, "bundle", baseline=baseline,
                phase_slug="detection")
