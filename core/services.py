"""Writes of the core layer: appending to the hash-chained, signed audit trail, and its
checkpoints (core.audit says what each defends)."""

from __future__ import annotations

import os
from datetime import UTC
from pathlib import Path
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from core.audit import Checkpoint, audit_key, checkpoint_path, checkpoint_sign
from core.models import GENESIS, AuditEvent, event_signature

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
    event.signature = event_signature(key=audit_key(), hash=event.hash)
    event.save()
    return event


def audit_checkpoint_write(*, path: Path | None = None) -> Checkpoint:
    """Append a signed checkpoint of the chain's head to the checkpoint file. Under the
    chain's lock, so the count and the head belong together."""
    with transaction.atomic():
        _lock_chain()
        head = AuditEvent.objects.order_by("-id").values_list("id", "hash").first()
        checkpoint = checkpoint_sign(
            count=AuditEvent.objects.count(), head_id=head[0] if head else None,
            head_hash=head[1] if head else GENESIS,
            at=timezone.now().astimezone(UTC).isoformat(timespec="seconds"),
        )
        _append_line(path or checkpoint_path(), checkpoint.json_line())
    return checkpoint


def _append_line(path: Path, line: str) -> None:
    """O_APPEND: every write lands at the end, whoever else has the file open; nothing here
    ever truncates or rewrites it. One write() of a short line is not interleaved."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
    try:
        os.write(descriptor, line.encode())
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
