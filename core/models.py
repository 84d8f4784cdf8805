"""The audit trail: who did what to which challenge, submission, team or hidden data.

Tamper-evident: each event stores the sha256 of the event before it (`prev_hash`) and its
own `hash` over a canonical serialisation of its fields and `prev_hash`, so editing, removing
or inserting an event breaks the chain (`manage.py audit_verify` finds the first break).
The hash alone has no secret: whoever can write the table can recompute it. So each event
also carries a `signature`, HMAC-SHA256 of its hash with HELDOUT_AUDIT_KEY, a key that is
never in the database; and signed checkpoints of the head are written outside it
(core.audit), so a removed tail or a truncation shows too.
The database itself refuses UPDATE, DELETE and TRUNCATE on the table (triggers added by
migrations, on PostgreSQL and SQLite). Events name people and challenges by id (and the actor
by name) rather than by foreign key, so deleting a user or a challenge never rewrites history.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime
from typing import Any

from django.db import models
from django.utils import timezone

GENESIS = "0" * 64  # the `prev_hash` of the first event


def event_hash(
    *, prev_hash: str, at: datetime, actor_id: int | None, actor_name: str,
    challenge_id: int | None, verb: str, target: str, data: Any,
) -> str:
    """sha256 of the canonical JSON of an event (sorted keys, no spaces, UTC ISO time)."""
    body = {
        "prev_hash": prev_hash, "at": at.astimezone(UTC).isoformat(),
        "actor_id": actor_id, "actor_name": actor_name, "challenge_id": challenge_id,
        "verb": verb, "target": target, "data": data,
    }
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def event_signature(*, key: str, hash: str) -> str:
    """HMAC-SHA256 of an event's hash: the hash covers every field and the link to the event
    before, so one short HMAC per event signs its content and its place in the chain."""
    return hmac.new(key.encode(), hash.encode(), hashlib.sha256).hexdigest()


class AuditEvent(models.Model):
    """Append-only, hash-chained record of every access to hidden data, every score release
    and board publication, re-scores, imports, organisers' edits, team changes, token use."""

    at = models.DateTimeField(default=timezone.now, db_index=True)
    actor_id = models.BigIntegerField(null=True, blank=True, help_text="User id; empty: system.")
    actor_name = models.CharField(max_length=150, blank=True)
    challenge_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    verb = models.CharField(max_length=60, db_index=True)
    target = models.CharField(max_length=200, blank=True)
    data = models.JSONField(default=dict, blank=True)
    prev_hash = models.CharField(max_length=64, default=GENESIS)
    hash = models.CharField(max_length=64, db_index=True, default="")
    signature = models.CharField(max_length=64, blank=True, default="")

    class Meta:
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.verb} {self.target}"

    def computed_hash(self) -> str:
        return event_hash(
            prev_hash=self.prev_hash, at=self.at, actor_id=self.actor_id,
            actor_name=self.actor_name, challenge_id=self.challenge_id, verb=self.verb,
            target=self.target, data=self.data,
        )
