"""Every failure a model can cause is its own failure and uses quota: whatever bytes it writes
(NUL, control characters, invalid UTF-8, 10 MB lines, deeply nested JSON, odd file names and
folders in /output) end in one of the model's error classes or in success, never in
`internal_error` (which costs no quota, so a model that could reach it on purpose would have
a free oracle on the hidden data: "print a NUL when the hidden value is odd").

On PostgreSQL (as production), whose text columns refuse NUL: the suite's database."""

from __future__ import annotations

import pytest
from django.db import connection

from heldout_kernel.contract import HIDDEN_LANE_MESSAGES
from scoring.models import Run
from scoring.pipeline import evaluate
from submissions import selectors
from tests.pipeline.test_e2e import PREAMBLE

pytestmark = [pytest.mark.docker, pytest.mark.django_db]

# Each model behaves on the public sanity lane (10 cases, ids s0..s9) and does its hostile
# thing only on the hidden lane (ids c000...), as a probe of the hidden data would.
HOSTILE = {
    "nul in the log": ("succeeded", """
sys.stdout.write("before\\0after\\n"); sys.stdout.flush()
write_predictions()
"""),
    "nul in the log, then a failure": ("nonzero_exit", """
sys.stderr.write("\\0" * 100); sys.exit(1)
"""),
    "invalid utf-8 and a lone surrogate's bytes in the log": ("succeeded", """
sys.stdout.buffer.write(b"\\xff\\xfe\\xed\\xa0\\x80\\xc3\\n"); sys.stdout.flush()
write_predictions()
"""),
    "control characters in the log": ("succeeded", """
print("\\x1b[2J\\x1b[31mred\\r\\x07\\x08\\x7f\\u202eevil")
write_predictions()
"""),
    "a 10 MB line in the log": ("succeeded", """
sys.stdout.write("x" * (10 * 1024 * 1024)); sys.stdout.flush()
write_predictions()
"""),
    "nul in the predictions' ids": ("invalid_output", """
with open(os.path.join(OUT, "predictions.csv"), "w") as out:
    out.write("id,score\\n" + "".join(f"{r['id']}\\0,0.5\\n" for r in rows))
"""),
    "nul in the header": ("invalid_output", """
with open(os.path.join(OUT, "predictions.csv"), "w") as out:
    out.write("id\\0,score\\n" + "".join(f"{r['id']},0.5\\n" for r in rows))
"""),
    "invalid utf-8 predictions": ("invalid_output", """
with open(os.path.join(OUT, "predictions.csv"), "wb") as out:
    out.write(b"id,score\\n" + b"".join(r["id"].encode() + b"\\xff,0.5\\n" for r in rows))
"""),
    "control characters in the predictions": ("invalid_output", """
with open(os.path.join(OUT, "predictions.csv"), "w") as out:
    out.write("id,score\\r\\n" + "".join(f"{r['id']}\\x1b\\x08,0.5\\x07\\r\\n" for r in rows))
"""),
    "a 10 MB line in the predictions": ("invalid_output", """
with open(os.path.join(OUT, "predictions.csv"), "w") as out:
    out.write("id,score\\n" + rows[0]["id"] + "," + "9" * (10 * 1024 * 1024) + "\\n")
"""),
    "deeply nested json as predictions": ("invalid_output", """
with open(os.path.join(OUT, "predictions.csv"), "w") as out:
    out.write("[" * 200000 + "]" * 200000)
"""),
    "deep folders and a non-utf-8 file name in /output": ("succeeded", """
path = OUT
for _ in range(180):
    path = os.path.join(path, "d" * 20)
os.makedirs(path, exist_ok=True)
open(os.path.join(path, "x"), "w").write("deep")
open(os.path.join(os.fsencode(OUT), b"\\xff\\xfe name\\n"), "w").write("odd")
write_predictions()
"""),
}


def hostile_model(body: str) -> str:
    return PREAMBLE + "if not HIDDEN:\n    write_predictions()\n    sys.exit(0)\n" + body


@pytest.mark.parametrize("case", list(HOSTILE))
def test_hostile_output_on_hidden_data_is_the_models_failure_and_uses_quota(
    case, synthetic_phase, team, alice, submit, runtime_image
) -> None:
    assert connection.vendor == "postgresql"  # the database that refuses NUL in text
    expected, body = HOSTILE[case]
    submission = submit(synthetic_phase, team, alice, hostile_model(body))

    evaluate(submission.pk)
    submission.refresh_from_db()

    if expected == "succeeded":
        assert (submission.status, submission.error_class) == ("succeeded", "")
    else:
        assert (submission.status, submission.error_class) == ("failed", expected)
        assert submission.failed_lane == "hidden"
        assert submission.error_message == HIDDEN_LANE_MESSAGES[expected]
    hidden = Run.objects.get(submission=submission, lane="hidden")
    assert hidden.finished_at is not None  # the run and its log were stored
    assert "\x00" not in hidden.log_tail
    assert selectors.quota_status(phase=synthetic_phase, team=team).used_today == 1


SANITY_NUL = PREAMBLE + """
print("the log says \\0 and \\udcff")
with open(os.path.join(OUT, "predictions.csv"), "w") as out:
    out.write("id,score\\n" + "".join(f"{r['id']}\\0,0.5\\n" for r in rows))
"""


def test_hostile_output_on_the_sanity_lane_is_named_to_the_team(
    synthetic_phase, team, alice, submit, runtime_image
) -> None:
    submission = submit(synthetic_phase, team, alice, SANITY_NUL)

    evaluate(submission.pk)
    submission.refresh_from_db()

    assert (submission.status, submission.error_class) == ("failed", "invalid_output")
    assert submission.failed_lane == "sanity"
    assert "s0\\u0000" in submission.error_message  # the bad id, quoted visibly
    sanity = Run.objects.get(submission=submission, lane="sanity")
    assert "the log says \\x00 and" in sanity.log_tail
