"""Leaderboard at scale: 200 teams x 50 scored submissions each.

    .venv/bin/python bench/bench_leaderboard.py [--teams 200] [--per-team 50] [--cases 3000]
                                                [--repeat 5]

Measured, in a temporary SQLite database:

1. The recompute task body (`leaderboards.services.leaderboard_refresh`): read every result's
   stored metrics, choose each team's entry by public score, load the chosen per-case scores,
   run the paired bootstrap (the phase's B = 1,000 resamples) on the public and the private
   cases, subgroup scores, progress lines, and write both snapshots. Timed once cold, once
   again (warm caches).
2. Page renders through Django's test client, median of N: the leaderboard page (table of
   every entry + the progress chart of every team), its live partial, the phase page, an
   entry page (ROC and calibration from one stored result), and the organisers' CSV export.
   Pages never compute: they read the snapshot.

Data: the hidden labels are REAL (the readmission bundle built from ../shared/data: 30-day
readmission of the Diabetes 130-US hospitals set, `--cases` held-out encounters split public/
private by patient, subgroups sex, age_band, race). The submissions' scores are SYNTHETIC:
each team has a skill, each later submission a little more of it, plus per-case noise, so
entries differ and improve over time. Only the primary metric (AUROC) is stored in each
result's metrics, which is all that choosing entries and the progress lines read; the board
itself computes every metric from the per-case scores.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
VAR = Path(tempfile.mkdtemp(prefix="heldout-bench-leaderboard-"))
os.environ.update({"DJANGO_DEBUG": "1", "HELDOUT_VAR_DIR": str(VAR),
                   "DJANGO_SETTINGS_MODULE": "heldout.settings"})
os.environ.pop("DATABASE_URL", None)

import django  # noqa: E402

django.setup()

import numpy as np  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402
from django.urls import reverse  # noqa: E402
from django.utils import timezone  # noqa: E402

from challenges.bundles import import_challenge  # noqa: E402
from challenges.models import Membership, Phase, Team  # noqa: E402
from demo.bundles import build_readmission_bundle, default_data_dir  # noqa: E402
from heldout_kernel.stats.metrics import auroc  # noqa: E402
from leaderboards.models import LeaderboardSnapshot  # noqa: E402
from leaderboards.services import leaderboard_refresh  # noqa: E402
from scoring.arrays import to_bytes  # noqa: E402
from scoring.labels import load_labels  # noqa: E402
from scoring.models import Result  # noqa: E402
from submissions.models import Submission  # noqa: E402


def setup_phase(cases: int) -> tuple[Phase, bool]:
    call_command("migrate", verbosity=0)
    bundle = build_readmission_bundle(REPO / "var" / "bench-cache" / f"readmission-{cases}",
                                      data_dir=default_data_dir(), n_test=cases)
    challenge, _ = import_challenge(bundle.path)
    return challenge.phases.get(), bundle.synthetic


def synthetic_scores(y: np.ndarray, skill: float, rng: np.random.Generator) -> np.ndarray:
    """[SYNTHETIC] probabilities: signal `skill` on the real label, noise, prevalence offset."""
    logit = skill * (2 * y - 1) + rng.normal(0, 1, y.size) - 2.0
    return np.round(1 / (1 + np.exp(-logit)), 4)


def _teams(phase: Phase, n_teams: int) -> list[Team]:
    users = get_user_model().objects.bulk_create(
        get_user_model()(username=f"bench-{i:03d}", email=f"bench-{i:03d}@example.org")
        for i in range(n_teams))
    teams = Team.objects.bulk_create(
        Team(challenge=phase.challenge, name=f"[SYNTHETIC] Team {i:03d}", captain=u)
        for i, u in enumerate(users))
    Membership.objects.bulk_create(
        Membership(team=t, user=u, challenge=phase.challenge)
        for t, u in zip(teams, users, strict=True))
    return teams


def populate(phase: Phase, n_teams: int, per_team: int) -> None:
    table = load_labels(phase.evaluation_set)
    y = table.y.astype(np.int64)
    parts = {"all": np.ones(y.size, bool), "public": table.split == "public",
             "private": table.split == "private"}
    rng = np.random.default_rng(2026)
    start = timezone.now() - timedelta(days=30)
    for team in _teams(phase, n_teams):
        skill = rng.uniform(0.1, 1.0)
        subs = Submission.objects.bulk_create(
            Submission(phase=phase, team=team, created_by=team.captain, number=k + 1,
                       kind="bundle", filename="model.zip", file_path="none", sha256="0" * 64,
                       size=1, status=Submission.Status.SUCCEEDED)
            for k in range(per_team))
        minutes = np.sort(rng.integers(0, 43_000, per_team))  # 30 days, in number order
        for sub, minute in zip(subs, minutes.tolist(), strict=True):
            sub.created_at = start + timedelta(minutes=minute)
        Submission.objects.bulk_update(subs, ["created_at"])
        results = []
        for k, sub in enumerate(subs):
            s = synthetic_scores(y, skill * (0.5 + 0.5 * k / per_team), rng)
            metrics = {p: {"auroc": auroc(y[m], s[m])} for p, m in parts.items()}
            results.append(Result(submission=sub, evaluation_set=phase.evaluation_set,
                                  metrics=metrics, case_scores=to_bytes(s)))
        Result.objects.bulk_create(results)


def timed(fn, repeat: int) -> list[float]:  # type: ignore[no-untyped-def]
    out = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        out.append(time.perf_counter() - started)
    return out


def render(client: Client, url: str, repeat: int) -> tuple[float, int]:
    size = 0

    def get() -> None:
        nonlocal size
        response = client.get(url)
        assert response.status_code == 200, (url, response.status_code)
        size = len(response.content)

    return statistics.median(timed(get, repeat)), size


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--teams", type=int, default=200)
    parser.add_argument("--per-team", type=int, default=50)
    parser.add_argument("--cases", type=int, default=3000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    setup_test_environment()  # lets the test client's host through ALLOWED_HOSTS
    phase, synthetic_labels = setup_phase(args.cases)
    started = time.perf_counter()
    populate(phase, args.teams, args.per_team)
    print(f"populated {args.teams} teams x {args.per_team} submissions "
          f"in {time.perf_counter() - started:.1f} s")
    cold = timed(lambda: leaderboard_refresh(phase_pk=phase.pk), 1)[0]
    warm = timed(lambda: leaderboard_refresh(phase_pk=phase.pk), 1)[0]
    snapshot = LeaderboardSnapshot.objects.get(phase=phase, board="public")
    payload = snapshot.payload
    organiser = get_user_model().objects.create_user("olga-bench", "olga@example.org", "x")
    phase.challenge.organisers.add(organiser)
    member = Client()
    member.force_login(Team.objects.filter(challenge=phase.challenge).first().captain)
    admin = Client()
    admin.force_login(organiser)
    board = [phase.challenge.slug, phase.slug, "public"]
    pages = {
        "leaderboard page (anonymous)": (Client(), reverse("leaderboards:board", args=board)),
        "leaderboard page (team member)": (member, reverse("leaderboards:board", args=board)),
        "live partial": (Client(), reverse("leaderboards:board_live", args=board)),
        "phase page (team member)": (member, phase.get_absolute_url()),
        "entry page with ROC + calibration": (
            Client(), reverse("leaderboards:entry", args=[*board, payload["entries"][0]["key"]])),
        "CSV export (organiser)": (admin, reverse("leaderboards:export_csv", args=board)),
    }
    labels = "SYNTHETIC stand-in" if synthetic_labels else "real"
    print(f"\nLeaderboard bench: {args.teams} teams x {args.per_team} submissions "
          f"({args.teams * args.per_team} results), {payload['n_cases']} public + "
          f"{LeaderboardSnapshot.objects.get(phase=phase, board='private').payload['n_cases']}"
          f" private cases ({labels} labels, SYNTHETIC scores), "
          f"B = {payload['n_resamples']}, SQLite")
    print(f"{'recompute task (both boards), cold':44s} {cold:9.2f} s")
    print(f"{'recompute task (both boards), again':44s} {warm:9.2f} s")
    print(f"{'public snapshot payload (JSON)':44s} {len(json.dumps(payload)) / 1e6:9.2f} MB "
          f"({len(payload['entries'])} entries)")
    for name, (client, url) in pages.items():
        seconds, size = render(client, url, args.repeat)
        print(f"{name:44s} {seconds * 1000:9.1f} ms  ({size / 1e3:.0f} kB, median of "
              f"{args.repeat})")


if __name__ == "__main__":
    main()
