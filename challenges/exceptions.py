"""Domain errors of the challenges app. Every message is safe to show a participant."""

from __future__ import annotations

from heldout.exceptions import DomainError


class ChallengeError(DomainError):
    code = "challenge_error"


class TermsNotAccepted(ChallengeError):
    code = "terms_not_accepted"


class TeamError(ChallengeError):
    code = "team_error"


class TeamFull(TeamError):
    code = "team_full"


class AlreadyInTeam(TeamError):
    code = "already_in_team"


class InvitationInvalid(TeamError):
    code = "invitation_invalid"


class NotCaptain(TeamError):
    code = "not_captain"


class BundleError(Exception):
    """A challenge bundle cannot be imported. `problems` lists every issue found."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems
