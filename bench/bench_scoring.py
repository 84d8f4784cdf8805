"""Scoring overhead: submission created -> result stored, against a bare `docker run`.

    DJANGO_DEBUG=1 .venv/bin/python bench/bench_scoring.py [--repeat N]

Both sides run the same trivial bundle (`score = 0.5` for every id) in the same runtime
image on the same input: the hidden readmission features (real data from ../shared/data, or
the labelled synthetic stand-in). The platform side is `submission_create` then the
evaluation pipeline (checksum verification, bundle extraction, the sandbox with its /output
keeper, output validation, metrics, per-case storage), without queue latency; it is measured
with and without the phase's sanity lane. The bare side is `docker run --rm --network none`
with the input and the bundle bind-mounted and a host folder for /output. Medians of N runs,
both in this process. The issue's target: at most 1.5x.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
VAR = Path(tempfile.mkdtemp(prefix="heldout-bench-"))
os.environ.update({"DJANGO_DEBUG": "1", "HELDOUT_VAR_DIR": str(VAR),
                   "DJANGO_SETTINGS_MODULE": "heldout.settings"})

import django  # noqa: E402

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.core.management import call_command  # noqa: E402

from challenges.bundles import import_challenge  # noqa: E402
from challenges.services import team_create, terms_accept  # noqa: E402
from core.storage import private_path  # noqa: E402
from demo.bundles import build_readmission_bundle, default_data_dir  # noqa: E402
from scoring.images import ensure_runtime_image  # noqa: E402
from scoring.pipeline import evaluate  # noqa: E402
from submissions import services  # noqa: E402
from submissions.uploads import stage_existing  # noqa: E402

TRIVIAL = """
import csv, os
rows = csv.DictReader(open(os.path.join(os.environ.get("HELDOUT_INPUT", "/input"), "features.csv")))
with open(os.path.join(os.environ.get("HELDOUT_OUTPUT", "/output"), "predictions.csv"), "w") as out:
    out.write("id,score\\n")
    for row in rows:
        out.write(row["id"] + ",0.5\\n")
"""


def setup():  # type: ignore[no-untyped-def]
    call_command("migrate", verbosity=0)
    bundle = build_readmission_bundle(REPO / "var" / "bench-cache" / "readmission-30d",
                                      data_dir=default_data_dir())
    challenge, _ = import_challenge(bundle.path)
    phase = challenge.phases.get()
    phase.quota_per_day = phase.quota_total = phase.quota_concurrent = 10_000
    phase.save()
    user = get_user_model().objects.create_user("bench", "bench@example.org", "x")
    terms_accept(challenge=challenge, user=user)
    team = team_create(challenge=challenge, user=user, name="Bench")
    model = VAR / "trivial.zip"
    with zipfile.ZipFile(model, "w") as archive:
        archive.writestr("predict.py", TRIVIAL)
    return bundle, phase, user, team, model


def platform_once(phase, user, team, model) -> float:  # type: ignore[no-untyped-def]
    services._enqueue = lambda pk: None  # the bench calls the pipeline itself
    started = time.perf_counter()
    submission = services.submission_create(
        phase=phase, team=team, user=user, kind="bundle",
        staged=stage_existing(model, filename="trivial.zip"))
    done = evaluate(submission.pk)
    elapsed = time.perf_counter() - started
    assert done is not None and done.status == "succeeded", done and done.error_message
    return elapsed


def bare_once(image: str, inputs: Path, model: Path) -> float:
    with tempfile.TemporaryDirectory(prefix="bare-") as tmp:
        code, output = Path(tmp) / "code", Path(tmp) / "output"
        code.mkdir()
        output.mkdir(mode=0o777)
        output.chmod(0o777)
        (code / "predict.py").write_text(TRIVIAL)
        started = time.perf_counter()
        subprocess.run(
            ["docker", "run", "--rm", "--network", "none", "-v", f"{inputs}:/input:ro",
             "-v", f"{code}:/submission:ro", "-v", f"{output}:/output", "-w", "/submission",
             image, "python3", "predict.py"], check=True, capture_output=True)
        elapsed = time.perf_counter() - started
        assert (output / "predictions.csv").exists()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    repeat = parser.parse_args().repeat
    image = ensure_runtime_image()
    bundle, phase, user, team, model = setup()
    inputs = private_path(phase.evaluation_set.inputs_dir)
    sanity = phase.sanity_set
    bare = [bare_once(image, inputs, model) for _ in range(repeat)]
    with_sanity = [platform_once(phase, user, team, model) for _ in range(repeat)]
    phase.sanity_set = None
    phase.save()
    hidden_only = [platform_once(phase, user, team, model) for _ in range(repeat)]
    phase.sanity_set = sanity
    base = statistics.median(bare)
    data = "synthetic stand-in" if bundle.synthetic else "real"
    print(f"\nScoring overhead, {bundle.n_test} hidden cases ({data} data), median of {repeat}")
    print(f"{'path':44s} {'median s':>9s} {'ratio':>7s}")
    print(f"{'bare docker run':44s} {base:9.2f} {1.0:7.2f}")
    print(f"{'platform, hidden lane only':44s} {statistics.median(hidden_only):9.2f} "
          f"{statistics.median(hidden_only) / base:7.2f}")
    print(f"{'platform, sanity lane + hidden lane':44s} {statistics.median(with_sanity):9.2f} "
          f"{statistics.median(with_sanity) / base:7.2f}")


if __name__ == "__main__":
    main()
