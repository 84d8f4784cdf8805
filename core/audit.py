"""Verifying the audit trail's hash chain (read side of core.services.audit_record)."""

from __future__ import annotations

from dataclasses import dataclass

from core.models import GENESIS, AuditEvent


@dataclass(frozen=True)
class ChainReport:
    intact: bool
    count: int
    problem: str = ""


@dataclass
class _Walk:
    """The last two links seen: what the next event must point at, and the one before."""

    expected: str = GENESIS
    before: str | None = None
    previous: AuditEvent | None = None


def _describe(event: AuditEvent, walk: _Walk, following: AuditEvent | None) -> str:
    """Name what happened at the first event whose link is wrong."""
    if walk.previous is not None and event.prev_hash == walk.before:
        return f"event #{walk.previous.pk} ({walk.previous.verb}) was inserted into the chain"
    if following is not None and following.prev_hash == walk.expected:
        return f"event #{event.pk} ({event.verb}) was inserted into the chain"
    return f"an event before #{event.pk} ({event.verb}) was removed"


def verify_chain() -> ChainReport:
    """Walk every event in the order it was appended, recomputing each hash and link."""
    walk, count = _Walk(), 0
    events = AuditEvent.objects.order_by("id").iterator(chunk_size=2000)
    event = next(events, None)
    while event is not None:
        following = next(events, None)
        if event.computed_hash() != event.hash:
            return ChainReport(False, count, f"event #{event.pk} ({event.verb}) was edited")
        if event.prev_hash != walk.expected:
            return ChainReport(False, count, _describe(event, walk, following))
        walk = _Walk(expected=event.hash, before=walk.expected, previous=event)
        count, event = count + 1, following
    return ChainReport(True, count)
