"""factory_boy factories shared by the app tests, one module per app.

Every name is re-exported here, so `from tests.factories import SubmissionFactory` works
wherever a test needs one.
"""

from __future__ import annotations

from tests.factories.accounts import UserFactory
from tests.factories.challenges import (
    ChallengeFactory,
    EvaluationSetFactory,
    PhaseFactory,
    TeamFactory,
    accept_terms,
    add_member,
)
from tests.factories.scoring import ResultFactory, RunFactory
from tests.factories.submissions import SubmissionFactory

__all__ = [
    "ChallengeFactory",
    "EvaluationSetFactory",
    "PhaseFactory",
    "ResultFactory",
    "RunFactory",
    "SubmissionFactory",
    "TeamFactory",
    "UserFactory",
    "accept_terms",
    "add_member",
]
