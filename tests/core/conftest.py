"""The audit trail's fixtures: a short chain of Alice's and the system's events, and a
checkpoint file of the test's own."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.services import audit_record


@pytest.fixture(autouse=True)
def checkpoints(settings, tmp_path: Path) -> Path:  # type: ignore[no-untyped-def]
    settings.HELDOUT_AUDIT_CHECKPOINT_FILE = tmp_path / "audit" / "checkpoints.jsonl"
    return settings.HELDOUT_AUDIT_CHECKPOINT_FILE  # type: ignore[no-any-return]


@pytest.fixture
def chain(challenge, alice):  # type: ignore[no-untyped-def]
    return [
        audit_record(verb="terms.accepted", actor=alice, challenge=challenge,
                     data={"version": 1}),
        audit_record(verb="team.created", actor=alice, challenge=challenge, target="team:1"),
        audit_record(verb="hidden_data.accessed", challenge=challenge, target="submission:1",
                     data={"labels_sha256": "ab" * 32, "score": 0.8125}),
        audit_record(verb="submission.succeeded", challenge=challenge, target="submission:1"),
    ]
