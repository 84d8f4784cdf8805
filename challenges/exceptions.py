"""Domain errors of the challenges app. Every message is safe to show a participant."""

from __future__ import annotations

from core.exceptions import DomainError


class ChallengeError(DomainError):
    code, status = "challenge_error", 400


class TermsNotAccepted(ChallengeError):
    code, status = "terms_not_accepted", 403


class TeamError(ChallengeError):
    code, status = "team_error", 409


class TeamFull(TeamError):
    code, status = "team_full", 409


class AlreadyInTeam(TeamError):
    code, status = "already_in_team", 409


class InvitationInvalid(TeamError):
    code, status = "invitation_invalid", 400


class NotCaptain(TeamError):
    code, status = "not_captain", 403


class BundleError(Exception):
    """A challenge bundle cannot be imported. `problems` lists every issue found."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


class NotReady(Exception):
    """A draft cannot be published yet; `problems` lists what is missing. Raised only to the
    admin's publish button (like BundleError), so it is no API error code."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__(" ".join(problems))
        self.problems = problems
