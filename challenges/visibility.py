"""Who may see what in a phase, decided once: pages, the API, e-mails and exports ask here.

- Organisers of the challenge (and superusers) see everything: both boards, exact scores,
  hidden-lane logs, exports.
- Everyone else who can see the challenge (anonymous users too, for a public challenge) sees
  the public board while the phase runs, unless the phase shows scores only after it closes;
  the private board once the phase has closed or the organisers published it.
- A team sees its own submissions; their scores follow the boards: while the private board
  is hidden, only the public part of a split evaluation set ("all" and "private" both carry
  information about the private cases). Hidden-lane logs only where the phase shows them.

`phase_rights` costs at most three small queries (organiser?, team?, invite-only membership)
and the answer is a frozen value, so a view computes it once and hands it around.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from challenges import selectors
from challenges.models import Challenge, Phase

PUBLIC, PRIVATE = "public", "private"
BOARDS = (PUBLIC, PRIVATE)


@dataclass(frozen=True)
class PhaseRights:
    phase: Phase
    authenticated: bool
    is_organiser: bool
    challenge_visible: bool
    team_id: int | None

    @property
    def scores_visible(self) -> bool:
        """Participants' scores of this phase may be shown (live, or after it closed)."""
        phase = self.phase
        return (self.is_organiser or phase.score_visibility == Phase.ScoreVisibility.LIVE
                or phase.has_closed())

    def board(self, name: str) -> tuple[bool, str]:
        """(visible, reason shown when it is not) for the board `name`."""
        if name not in BOARDS:
            return False, "There is no such leaderboard."
        if self.is_organiser:
            return True, ""
        if not self.challenge_visible:
            return False, "This challenge is by invitation only."
        phase = self.phase
        if name == PRIVATE:
            if phase.has_closed() or phase.private_published:
                return True, ""
            return False, "The private leaderboard appears when the phase closes."
        if not self.scores_visible:
            return False, "Scores of this phase are shown after it closes."
        return True, ""

    @property
    def private_visible(self) -> bool:
        return self.board(PRIVATE)[0]

    @property
    def hidden_logs_visible(self) -> bool:
        return self.is_organiser or self.phase.show_logs

    def run_details_visible(self, run: Any) -> bool:
        """Exit code, timing and the like of a run: the sanity run's are the team's; a
        hidden run says only its error class (organisers see everything)."""
        return self.is_organiser or run.lane == "sanity"

    def shown(self, submission: Any) -> Any:
        """The submission as this viewer may see it now: organisers see it as it is; its team
        learns an outcome on hidden data only once it is told (Submission.as_told)."""
        return submission if self.is_organiser else submission.as_told()

    def shown_runs(self, submission: Any, runs: list[Any]) -> list[Any]:
        """Runs as this viewer may see them: a run on hidden data says nothing (no error
        class, no log) until the submission's outcome is told."""
        if self.is_organiser or submission.outcome_told():  # False on an untold view
            return runs
        return [run if run.lane == "sanity" else _untold_run(run) for run in runs]

    def submission_times(self, submission: Any) -> tuple[Any, Any]:
        """(started, finished) as shown: to the minute for teams, whose total time would
        otherwise time the hidden run."""
        times = (submission.started_at, submission.finished_at)
        if self.is_organiser:
            return times
        return tuple(t.replace(second=0, microsecond=0) if t else None for t in times)

    @property
    def can_export(self) -> bool:
        return self.is_organiser

    def can_view_submission(self, submission: Any) -> bool:
        """Members of the submission's team and the challenge's organisers."""
        if not self.authenticated:
            return False
        return self.is_organiser or (self.team_id is not None
                                     and submission.team_id == self.team_id)

    def metric_parts(self, metrics: dict[str, Any] | None) -> list[str]:
        """Which parts of stored metrics ("all", "public", "private") the viewer may read."""
        if not self.scores_visible or not metrics:
            return []
        if "public" not in metrics:
            return ["all"]
        return ["public", "private", "all"] if self.private_visible else ["public"]

    @property
    def releases_scores(self) -> bool:
        """Whether this viewer sees released rather than exact scores: teams and the public,
        while the phase runs, under any policy but `exact` (heldout_kernel.stats.release)."""
        phase = self.phase
        return (not self.is_organiser and phase.score_release != "exact"
                and not phase.has_closed())

    def score_note(self, submission: Any, result: Any) -> str:
        """Under a ladder, a result that released nothing new says so, with the team's shown
        best: its shown scores are the earlier submission's, not a score of its own."""
        if not self.releases_scores or result is None or not result.released:
            return ""
        source = str(result.released_from or "")
        if not source or source == str(submission.uid):
            return ""
        policy = self.phase.release_policy()
        part = next(iter(result.released))
        best = (result.released.get(part) or {}).get(self.phase.primary_metric)
        shown = "–" if best is None else f"{best:.{policy.precision}f}"
        return f"No improvement on your best ({shown}): the released score stays."

    def shown_metrics(self, result: Any) -> dict[str, Any] | None:
        """The parts of a result's scores this viewer may read, released where they must be."""
        metrics = getattr(result, "metrics", None)
        parts = self.metric_parts(metrics)
        if not parts or metrics is None:
            return None
        shown = {part: metrics[part] for part in parts if part in metrics}
        if self.releases_scores:
            shown |= {part: values for part, values in (result.released or {}).items()
                      if part in shown}
        return shown


def _untold_run(run: Any) -> Any:
    shown = copy.copy(run)
    shown.error_class = shown.error_message = shown.log_tail = ""
    shown.finished_at = shown.exit_code = shown.duration_s = None
    return shown


def _challenge_visible(challenge: Challenge, user: Any) -> bool:
    if (challenge.visibility == Challenge.Visibility.PUBLIC
            and challenge.status == Challenge.Status.PUBLISHED):
        return True
    return selectors.visible_challenges(user=user).filter(pk=challenge.pk).exists()


def phase_rights(*, phase: Phase, user: Any) -> PhaseRights:
    organiser = selectors.is_organiser(challenge=phase.challenge, user=user)
    team = selectors.team_for_user(challenge=phase.challenge, user=user)
    return PhaseRights(
        phase=phase, authenticated=bool(getattr(user, "is_authenticated", False)),
        is_organiser=organiser,
        challenge_visible=organiser or _challenge_visible(phase.challenge, user),
        team_id=team.pk if team else None,
    )
