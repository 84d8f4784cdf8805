"""Writes of the core layer: appending to the hash-chained audit trail."""

from __future__ import annotations

from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from core.models import GENESIS, AuditEvent

# Any fixed number: the PostgreSQL advisory lock that serialises appends to the chain.
CHAIN_LOCK = 0x48454C44


def _lock_chain() -> None:
    """Appends must see the previous event, so they take turns until their transaction
    commits. SQLite needs nothing more: its IMMEDIATE transactions lock the database."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [CHAIN_LOCK])


@transaction.atomic
def audit_record(
    *, verb: str, actor: Any = None, challenge: Any = None, target: str = "",
    data: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append an event. `actor` is a user (or None for the system), `challenge` any object
    with a primary key (or None). `data` must be JSON (it is hashed as stored)."""
    _lock_chain()
    actor_id = getattr(actor, "pk", None)
    event = AuditEvent(
        at=timezone.now(), verb=verb, actor_id=actor_id,
        actor_name=actor.get_username() if actor_id else "",
        challenge_id=getattr(challenge, "pk", None), target=target, data=data or {},
        prev_hash=AuditEvent.objects.order_by("-id").values_list("hash", flat=True).first()
        or GENESIS,
    )
    event.hash = event.computed_hash()
    event.save()
    return event
