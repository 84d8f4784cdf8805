"""Lesion detection end to end on the real Docker engine: a detection bundle is imported, a
bundle model writes /output/detections.csv, the posted FROC equals an independent
implementation of the documented rule, the board ranks entries with intervals and K, and a
bad detections file is refused with its rows named (sanity lane) or one fixed sentence
(hidden lane)."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest
from django.test import Client
from django.urls import reverse
from PIL import Image
from sklearn.metrics import roc_auc_score

from challenges.bundles import import_challenge
from challenges.services import team_create
from core.storage import private_path
from heldout_kernel.contract import HIDDEN_DETECTION_MESSAGES
from leaderboards.compute import recompute
from leaderboards.models import LeaderboardSnapshot
from scoring.labels import load_labels
from scoring.pipeline import evaluate
from tests.bundles import detection_phase_spec, write_detection_bundle
from tests.factories import accept_terms

pytestmark = [pytest.mark.docker, pytest.mark.django_db]

FP_RATES = (0.125, 0.25, 0.5, 1, 2, 4, 8)

# The brightest pixel of each film, scored by its brightness, and a decoy in a corner.
BRIGHTEST = """
import csv, os
import numpy as np
from PIL import Image
IN, OUT = os.environ["HELDOUT_INPUT"], os.environ["HELDOUT_OUTPUT"]
assert os.environ["HELDOUT_TASK"] == "detection"
ids = [row["id"] for row in csv.DictReader(open(os.path.join(IN, "manifest.csv")))]
with open(os.path.join(OUT, "detections.csv"), "w") as out:
    out.write("id,x,y,score\\n")
    for i in ids:
        pixels = np.asarray(Image.open(os.path.join(IN, "images", i + ".png")), dtype=float)
        y, x = np.unravel_index(np.argmax(pixels), pixels.shape)
        out.write(f"{i},{x},{y},{pixels[y, x] / 255:.4f}\\n")
        out.write(f"{i},1,1,0.05\\n")
"""

# Only the decoys, with film scores of its own: a weak entry.
DECOYS = """
import csv, os
IN, OUT = os.environ["HELDOUT_INPUT"], os.environ["HELDOUT_OUTPUT"]
ids = [row["id"] for row in csv.DictReader(open(os.path.join(IN, "manifest.csv")))]
with open(os.path.join(OUT, "detections.csv"), "w") as out:
    out.write("id,x,y,score\\n")
    for n, i in enumerate(ids):
        out.write(f"{i},{20 + n % 9},{20 + n % 7},{(n % 10) / 10:.1f}\\n")
with open(os.path.join(OUT, "predictions.csv"), "w") as out:
    out.write("id,score\\n" + "".join(f"{i},0.5\\n" for i in ids))
"""

BAD_ON_SANITY = """
import csv, os
IN, OUT = os.environ["HELDOUT_INPUT"], os.environ["HELDOUT_OUTPUT"]
ids = [row["id"] for row in csv.DictReader(open(os.path.join(IN, "manifest.csv")))]
with open(os.path.join(OUT, "detections.csv"), "w") as out:
    out.write("id,x,y,score\\n")
    out.write(f"{ids[0]},5,5,0.9\\n")
    out.write(f"{ids[1]},500,5,0.9\\n")
    out.write("stranger,5,5,0.9\\n")
    out.write(f"{ids[2]},5,5,1.5\\n")
"""

BAD_ON_HIDDEN_ONLY = """
import csv, os
IN, OUT = os.environ["HELDOUT_INPUT"], os.environ["HELDOUT_OUTPUT"]
ids = [row["id"] for row in csv.DictReader(open(os.path.join(IN, "manifest.csv")))]
hidden = ids[0].startswith("f")
with open(os.path.join(OUT, "detections.csv"), "w") as out:
    out.write("id,x,y,score\\n")
    for i in ids:
        out.write(f"{i},5,{900 if hidden else 5},0.5\\n")
"""


@pytest.fixture
def detection_phase(tmp_path, olga):  # type: ignore[no-untyped-def]
    bundle = write_detection_bundle(tmp_path / "bundle", phases=[detection_phase_spec(
        limits={"cpus": 1, "memory_mb": 512, "seconds": 60},
        quota={"per_day": 50, "total": 100, "concurrent": 50, "count_failed": False})])
    challenge, _ = import_challenge(bundle)
    challenge.organisers.add(olga)
    return challenge.phases.get()


def _team(phase, user, name):  # type: ignore[no-untyped-def]
    accept_terms(phase.challenge, user)
    return team_create(challenge=phase.challenge, user=user, name=name)


def _read(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def brightest_detections(inputs: Path, ids: list[str]) -> list[tuple[str, float, float, float]]:
    """What BRIGHTEST writes, computed here on the host from the same images."""
    found = []
    for ident in ids:
        pixels = np.asarray(Image.open(inputs / "images" / f"{ident}.png"), dtype=float)
        y, x = np.unravel_index(np.argmax(pixels), pixels.shape)
        found += [(ident, float(x), float(y), round(pixels[y, x] / 255, 4)),
                  (ident, 1.0, 1.0, 0.05)]
    return found


def reference_froc(detections, lesions, n_films: int) -> float:  # type: ignore[no-untyped-def]
    """The rule, written the slow and obvious way: at each threshold, a lesion is found when
    some kept detection lies within its radius; a kept detection near no lesion is a false
    positive; at each rate, the best sensitivity within that many false positives per image."""
    def hits(d, les):  # type: ignore[no-untyped-def]
        return d[0] == les[0] and math.dist(d[1:3], les[1:3]) <= les[3]

    curve = []
    for t in sorted({d[3] for d in detections}) + [math.inf]:
        kept = [d for d in detections if d[3] >= t]
        found = sum(any(hits(d, les) for d in kept) for les in lesions)
        false = sum(not any(hits(d, les) for les in lesions) for d in kept)
        curve.append((false / n_films, found / len(lesions)))
    return sum(max(s for f, s in curve if f <= rate) for rate in FP_RATES) / len(FP_RATES)


def test_a_detection_model_is_scored_by_froc_and_ranked(
        detection_phase, alice, carol, submit, runtime_image):
    phase = detection_phase
    first = submit(phase, _team(phase, alice, "Alpha"), alice, BRIGHTEST)
    second = submit(phase, _team(phase, carol, "Charlie"), carol, DECOYS)
    for submission in (first, second):
        evaluate(submission.pk)
        submission.refresh_from_db()
        assert submission.status == "succeeded", submission.error_message

    hidden = phase.evaluation_set
    table = load_labels(hidden)
    inputs = private_path(hidden.inputs_dir)
    lesions = [(r["id"], float(r["x"]), float(r["y"]), float(r["radius"]))
               for r in _read(private_path(hidden.lesions_file))]
    found = brightest_detections(inputs, list(table.ids))
    metrics = first.result.metrics
    assert metrics["all"]["froc"] == pytest.approx(
        reference_froc(found, lesions, len(table.ids)), abs=1e-12)
    public = {i for i, s in zip(table.ids, table.split, strict=True) if s == "public"}
    assert metrics["public"]["froc"] == pytest.approx(reference_froc(
        [d for d in found if d[0] in public], [les for les in lesions if les[0] in public],
        len(public)), abs=1e-12)
    assert 0 < metrics["all"]["froc"] < 1  # faint lesions are missed, decoys are wrong
    film_scores = [max(d[3] for d in found if d[0] == i) for i in table.ids]
    assert metrics["all"]["auroc"] == pytest.approx(roc_auc_score(table.y, film_scores))
    assert set(first.result.subgroups) == {"density", "lesion size"}

    sanity = first.runs.get(lane="sanity")
    sanity_ids = sorted(load_labels(phase.sanity_set).ids)
    assert sorted(sanity.detections) == sanity_ids  # kept for the overlay pictures
    assert all(len(d) == 3 for film in sanity.detections.values() for d in film)

    _check_overlays(first, alice, carol, sanity_ids, list(table.ids))

    recompute(phase_pk=phase.pk)
    board = LeaderboardSnapshot.objects.get(phase=phase, board="public").payload
    teams = [e["team"] for e in board["entries"]]
    assert teams == ["Alpha", "Charlie"]
    leader, other = board["entries"]
    low, high = leader["intervals"]["froc"]
    assert low <= leader["metrics"]["froc"] <= high and low < high
    assert leader["rank"] == 1 and other["rank"] == 2
    assert other["bayes_factor"] is not None and leader["bayes_factor"] is None


def _check_overlays(submission, member, outsider, sanity_ids, hidden_ids):  # type: ignore[no-untyped-def]
    """The submission page draws the public sanity films with lesions and detections; the
    films are served to whoever may see the submission, hidden films never."""
    client = Client()
    client.force_login(member)
    page = client.get(submission.get_absolute_url()).content.decode()
    assert page.count('<figure class="overlay"') == len(sanity_ids)
    assert 'class="lesion"' in page and 'class="detection"' in page
    film = reverse("submissions:film", args=[submission.uid, sanity_ids[0]])
    response = client.get(film)
    assert response.status_code == 200 and response["Content-Type"] == "image/png"
    hidden = reverse("submissions:film", args=[submission.uid, hidden_ids[0]])
    assert client.get(hidden).status_code == 404
    client.force_login(outsider)
    assert client.get(film).status_code == 404


def test_bad_detections_are_named_on_the_sanity_lane(
        detection_phase, alice, submit, runtime_image):
    submission = submit(detection_phase, _team(detection_phase, alice, "Alpha"), alice,
                        BAD_ON_SANITY)
    evaluate(submission.pk)
    submission.refresh_from_db()
    assert (submission.status, submission.error_class, submission.failed_lane) == (
        "failed", "invalid_output", "sanity")
    message = submission.error_message
    assert "Row 3: (500, 5) is outside the 48x48 image" in message
    assert 'Row 4: id "stranger" is not part of this evaluation set' in message
    assert 'Row 5: score "1.5" must be a number in [0, 1]' in message
    assert "Row 2" not in message


def test_bad_detections_on_hidden_data_say_one_fixed_sentence(
        detection_phase, alice, submit, runtime_image):
    submission = submit(detection_phase, _team(detection_phase, alice, "Alpha"), alice,
                        BAD_ON_HIDDEN_ONLY)
    evaluate(submission.pk)
    submission.refresh_from_db()
    assert (submission.status, submission.failed_lane) == ("failed", "hidden")
    assert submission.error_message == HIDDEN_DETECTION_MESSAGES["invalid_output"]
    hidden_run = submission.runs.get(lane="hidden")
    assert "outside the 48x48 image" in hidden_run.error_message  # organisers see details
