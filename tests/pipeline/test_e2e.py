"""End to end on the real Docker engine: upload -> sandboxed run -> trusted scoring.

The synthetic bundle's sanity ids start with "s" and hidden ids with "c", so a model can
misbehave on the hidden lane only, which is where leaks would matter.
"""

from __future__ import annotations

from unittest import mock

import numpy as np
import pytest
from django.conf import settings
from django.urls import reverse
from sklearn.metrics import roc_auc_score

from core import dispatch
from heldout_kernel.sandbox.docker import DockerBackend
from leaderboards.models import LeaderboardSnapshot
from scoring.arrays import from_bytes
from scoring.labels import load_labels
from scoring.models import Run
from scoring.pipeline import evaluate
from submissions.models import Submission
from tests.pipeline.conftest import AGE_MODEL, containers_named, volumes_named

pytestmark = [pytest.mark.docker, pytest.mark.django_db]

PREAMBLE = """
import csv, os, sys
IN, OUT = os.environ["HELDOUT_INPUT"], os.environ["HELDOUT_OUTPUT"]
rows = list(csv.DictReader(open(os.path.join(IN, "features.csv"))))
HIDDEN = rows[0]["id"].startswith("c")
def write_predictions(ids=None):
    with open(os.path.join(OUT, "predictions.csv"), "w") as out:
        out.write("id,score\\n")
        for i in (ids or [r["id"] for r in rows]):
            out.write(f"{i},0.5\\n")
"""


def assert_clean(submission: Submission) -> None:
    prefix = f"{settings.HELDOUT_CONTAINER_PREFIX}{submission.pk}-"
    assert containers_named(prefix) == []
    assert volumes_named(prefix) == []


def test_it_scores_a_bundle_and_matches_scikit_learn(
    synthetic_phase, team, alice, submit, runtime_image
):
    submission = submit(synthetic_phase, team, alice, AGE_MODEL)
    with mock.patch("core.dispatch.send", autospec=True) as send:
        evaluate(submission.pk)
    submission.refresh_from_db()
    assert submission.status == "succeeded", submission.error_message
    lanes = list(submission.runs.values_list("lane", flat=True))
    assert lanes == ["sanity", "hidden"]
    # The board is computed right there in the scoring worker: no task queued for it.
    board = LeaderboardSnapshot.objects.get(phase=synthetic_phase, board="public").payload
    assert [entry["team"] for entry in board["entries"]] == ["Alpha"]
    assert dispatch.RECOMPUTE_LEADERBOARD not in [c.args[0] for c in send.call_args_list]
    table = load_labels(synthetic_phase.evaluation_set)
    scores = from_bytes(submission.result.case_scores)
    ages = {row_id: age for row_id, age in _hidden_ages(synthetic_phase)}
    expected = np.array([ages[i] / 100 for i in table.ids])
    np.testing.assert_allclose(scores, expected, rtol=0, atol=1e-6)
    assert submission.result.metrics["all"]["auroc"] == pytest.approx(
        roc_auc_score(table.y, scores), abs=1e-12)
    assert set(submission.result.metrics) == {"all", "public", "private"}
    assert_clean(submission)


def _hidden_ages(phase):  # type: ignore[no-untyped-def]
    import csv

    from core.storage import private_path

    path = private_path(phase.evaluation_set.inputs_dir) / "features.csv"
    with path.open() as handle:
        for row in csv.DictReader(handle):
            yield row["id"], int(row["age"])


def test_a_redelivered_task_does_nothing(synthetic_phase, team, alice, submit, runtime_image):
    submission = submit(synthetic_phase, team, alice, AGE_MODEL)
    evaluate(submission.pk)
    assert evaluate(submission.pk) is None
    assert submission.runs.count() == 2


HOSTILE = {
    "network": (PREAMBLE + """
import socket
for target in [("1.1.1.1", 53), ("172.17.0.1", 5432), ("127.0.0.1", 6379)]:
    try:
        socket.create_connection(target, timeout=2)
        print("NETWORK-OPEN", target); sys.exit(0)
    except OSError as error:
        print("blocked", target, error)
try:
    socket.getaddrinfo("example.org", 80)
    print("DNS-OPEN")
except OSError as error:
    print("dns blocked", error)
raise SystemExit(7)
""", "nonzero_exit"),
    "fork_bomb": (PREAMBLE + """
while True:
    try:
        os.fork()
    except OSError:
        pass
""", "timeout"),
    "allocate_10_gb": (PREAMBLE + """
hog = []
for _ in range(100):
    hog.append(b"x" * 100_000_000)
write_predictions()
""", "out_of_memory"),
    "sleep_forever": (PREAMBLE + "import time\nwhile True: time.sleep(60)\n", "timeout"),
    "write_to_input": (PREAMBLE + "open(os.path.join(IN, 'features.csv'), 'a').write('x')\n",
                       "nonzero_exit"),
    "fill_output": (PREAMBLE + """
block = b"0" * (1 << 20)
with open(os.path.join(OUT, "big.bin"), "wb") as handle:
    for _ in range(5 * 1024):
        handle.write(block)
""", "invalid_output"),
    "exit_3": (PREAMBLE + "write_predictions()\nsys.exit(3)\n", "nonzero_exit"),
    "no_predictions": (PREAMBLE + "print('done, but wrote nothing')\n", "missing_output"),
    "mount_as_root": (PREAMBLE + """
import ctypes, subprocess
print("uid", os.getuid(), "gid", os.getgid())
libc = ctypes.CDLL(None, use_errno=True)
rc = libc.mount(b"none", b"/tmp", b"tmpfs", 0, None)
print("mount rc", rc, "errno", ctypes.get_errno())
os.setuid(0)
""", "nonzero_exit"),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_models_are_contained(name, synthetic_phase, team, alice, submit, runtime_image):
    source, expected = HOSTILE[name]
    if name == "fork_bomb" and DockerBackend().runtime() == "runsc":
        # Under gVisor each process costs about 5 MB of the run's memory (under runc well
        # under 1 MB): the bomb's 256 processes exceed this phase's 256 MB before its time.
        expected = "out_of_memory"
    synthetic_phase.limit_seconds = 6
    synthetic_phase.save()
    submission = submit(synthetic_phase, team, alice, source)
    evaluate(submission.pk)
    submission.refresh_from_db()
    assert submission.status == "failed"
    assert submission.error_class == expected, submission.error_message
    sanity = submission.runs.get(lane="sanity")
    assert not submission.runs.filter(lane="hidden").exists()  # hidden data never reached
    if name == "network":
        assert "NETWORK-OPEN" not in sanity.log_tail and "DNS-OPEN" not in sanity.log_tail
        assert "blocked" in sanity.log_tail
    if name == "mount_as_root":
        assert "uid 65534" in sanity.log_tail and "errno 1" in sanity.log_tail
    assert_clean(submission)
    healthy = submit(synthetic_phase, team, alice, AGE_MODEL)
    evaluate(healthy.pk)
    healthy.refresh_from_db()
    assert healthy.status == "succeeded", healthy.error_message


def test_hidden_lane_output_never_reaches_the_team(
    synthetic_phase, team, alice, olga, submit, runtime_image, client
):
    source = PREAMBLE + """
print(open(os.path.join(IN, "features.csv")).read() * (200 if HIDDEN else 1))
if HIDDEN:
    write_predictions(["LEAK-" + r["id"] + "-" + r["age"] for r in rows])
else:
    write_predictions()
"""
    submission = submit(synthetic_phase, team, alice, source)
    evaluate(submission.pk)
    submission.refresh_from_db()
    assert submission.error_class == "invalid_output"
    assert "LEAK" not in submission.error_message
    hidden = submission.runs.get(lane=Run.Lane.HIDDEN)
    assert len(hidden.log_tail.encode()) <= 64 * 1024 + 4  # capped to the tail
    client.force_login(alice)
    page = client.get(reverse("submissions:detail", args=[submission.uid])).content.decode()
    assert "c001" not in page and "LEAK" not in page  # no hidden ids, rows or echoes
    assert "s001" in page or "s1" in page  # the sanity log is shown in full
    client.force_login(olga)
    organiser_page = client.get(reverse("submissions:detail", args=[submission.uid])).content
    assert b"c001" in organiser_page  # organisers can debug


def test_wrong_ids_on_the_sanity_lane_are_explained(
    synthetic_phase, team, alice, submit, runtime_image
):
    source = PREAMBLE + "write_predictions(['nobody'] + [r['id'] for r in rows][1:])\n"
    submission = submit(synthetic_phase, team, alice, source)
    evaluate(submission.pk)
    submission.refresh_from_db()
    assert submission.error_class == "invalid_output"
    assert submission.error_message.startswith("Sanity run on public data:")
    assert "nobody" in submission.error_message


def test_a_rescore_skips_the_sanity_lane_it_already_passed(
    synthetic_phase, team, alice, olga, submit, runtime_image
):
    from scoring.services import submission_rescore

    submission = submit(synthetic_phase, team, alice, AGE_MODEL)
    evaluate(submission.pk)
    assert submission_rescore(submission=submission, actor=olga)
    again = evaluate(submission.pk)
    assert again is not None and again.status == "succeeded", again.error_message
    lanes = list(again.runs.filter(attempt=2).values_list("lane", flat=True))
    assert lanes == ["hidden"]  # the same file passed the public sanity set already
