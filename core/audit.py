"""Verifying the audit trail (read side of core.services.audit_record) and its checkpoints.

Three layers, each against a stronger attacker:
- the hash chain (core.models) shows an edit, removal or insertion by someone who does not
  recompute the later hashes;
- each event's signature (HMAC-SHA256 with HELDOUT_AUDIT_KEY, which the database never holds)
  shows a rewritten chain or a forged event, even with every hash recomputed;
- checkpoints of the head (count, head event and hash, time, HMAC) appended to a file the
  database cannot change (HELDOUT_AUDIT_CHECKPOINT_FILE) show what signatures cannot: events
  removed from the end, or all of them. Every line of the file is compared, not only the
  last, so a checkpoint written after a removal does not hide it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings

from core.models import GENESIS, AuditEvent, event_signature

CHECKPOINT_FIELDS = ("count", "head_id", "head_hash", "at", "key_id")
TAIL_BYTES = 8192  # more than one checkpoint line


def audit_key() -> str:
    return str(settings.HELDOUT_AUDIT_KEY)


def key_id(key: str) -> str:
    """Names the key in checkpoints (a changed key is then told from a forgery) without
    revealing it."""
    return hmac.new(key.encode(), b"heldout-audit-key-id", hashlib.sha256).hexdigest()[:16]


def checkpoint_path() -> Path:
    return Path(settings.HELDOUT_AUDIT_CHECKPOINT_FILE)


@dataclass(frozen=True)
class Checkpoint:
    """The chain's head at one moment: `count` events, the last one `head_id` with
    `head_hash` (None and GENESIS when empty), signed with the audit key."""

    count: int
    head_id: int | None
    head_hash: str
    at: str
    key_id: str
    hmac: str = ""
    line: int = field(default=0, compare=False)  # where it was read from (1-based)

    def body(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in CHECKPOINT_FIELDS}

    def json_line(self) -> str:
        return json.dumps({**self.body(), "hmac": self.hmac}, sort_keys=True) + "\n"

    @property
    def label(self) -> str:
        return f"the checkpoint of {self.at}" if self.key_id else "the noted head"

    @property
    def head(self) -> str:
        return f"#{self.head_id} {self.head_hash}" if self.head_id else self.head_hash

    def describe(self) -> str:
        head = f"head {self.head}" if self.count else "no events"
        return f"checkpoint of {self.at}: {self.count} events, {head}"


def noted_head(*, count: int, head_hash: str) -> Checkpoint:
    """A count and head hash that someone noted down (from the dashboard, or a checkpoint
    kept elsewhere): checked like a checkpoint line, without a signature."""
    return Checkpoint(count=count, head_id=None, head_hash=head_hash, at="", key_id="")


def _checkpoint_hmac(body: dict[str, Any], key: str) -> str:
    text = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return hmac.new(key.encode(), b"heldout-audit-checkpoint:" + text.encode(),
                    hashlib.sha256).hexdigest()


def checkpoint_sign(*, count: int, head_id: int | None, head_hash: str, at: str) -> Checkpoint:
    key = audit_key()
    unsigned = Checkpoint(count=count, head_id=head_id, head_hash=head_hash, at=at,
                          key_id=key_id(key))
    return Checkpoint(**{**asdict(unsigned), "hmac": _checkpoint_hmac(unsigned.body(), key)})


class CheckpointError(Exception):
    """A line of the checkpoint file that is not a checkpoint signed with this key."""


def checkpoint_parse(text: str, *, line: int, key: str) -> Checkpoint:
    try:
        data = json.loads(text)
        checkpoint = Checkpoint(**{name: data[name] for name in CHECKPOINT_FIELDS},
                                hmac=str(data["hmac"]), line=line)
    except (ValueError, TypeError, KeyError):
        raise CheckpointError(f"line {line} of the checkpoint file is not a checkpoint") from None
    if checkpoint.key_id != key_id(key):
        raise CheckpointError(
            f"line {line} of the checkpoint file was signed with another key (key id "
            f"{checkpoint.key_id}; HELDOUT_AUDIT_KEY has {key_id(key)}): was the key changed?")
    if not hmac.compare_digest(checkpoint.hmac, _checkpoint_hmac(checkpoint.body(), key)):
        raise CheckpointError(
            f"line {line} of the checkpoint file is forged: its signature does not verify")
    return checkpoint


def read_checkpoints(path: Path, *, key: str) -> Iterator[Checkpoint]:
    """Every line, in order; raises CheckpointError at the first one that does not verify."""
    if not path.exists():
        return
    with path.open(encoding="utf-8", errors="replace") as lines:
        for number, text in enumerate(lines, start=1):
            yield checkpoint_parse(text, line=number, key=key)


def latest_checkpoint(path: Path | None = None) -> tuple[Checkpoint | None, str]:
    """The file's last checkpoint and, if it does not verify, why (for the dashboard)."""
    path = path or checkpoint_path()
    try:
        with path.open("rb") as handle:
            size = handle.seek(0, 2)
            handle.seek(max(0, size - TAIL_BYTES))
            tail = handle.read().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return None, ""
    lines = tail.splitlines()
    if not lines:
        return None, ""
    try:
        return checkpoint_parse(lines[-1], line=0, key=audit_key()), ""
    except CheckpointError as error:
        return None, str(error).replace("line 0 of", "the last line of")


@dataclass(frozen=True)
class ChainReport:
    intact: bool
    count: int
    problem: str = ""
    checkpoint: Checkpoint | None = None  # the last one, when every line verified


@dataclass
class _Walk:
    """The last two links seen: what the next event must point at, and the one before."""

    expected: str = GENESIS
    before: str | None = None
    previous: AuditEvent | None = None


@dataclass
class _Findings:
    """What the walk saw besides broken links: events whose signature fails (the first, and
    its position) and the latest checkpoint line that disagrees with the chain."""

    count: int = 0
    first: AuditEvent | None = None
    last: AuditEvent | None = None
    unsigned: AuditEvent | None = None
    unsigned_at: int = 0
    unsigned_count: int = 0
    disagreeing: Checkpoint | None = None

    def disagree(self, checkpoint: Checkpoint) -> None:
        if self.disagreeing is None or checkpoint.line > self.disagreeing.line:
            self.disagreeing = checkpoint


class _Anchors:
    """The checkpoints by count, one per distinct head (the latest line of each)."""

    def __init__(self, checkpoints: Iterator[Checkpoint]) -> None:
        self.by_count: dict[int, dict[tuple[int | None, str], Checkpoint]] = {}
        self.last: Checkpoint | None = None
        for checkpoint in checkpoints:
            self.add(checkpoint)
            self.last = checkpoint

    def add(self, checkpoint: Checkpoint) -> None:
        heads = self.by_count.setdefault(checkpoint.count, {})
        heads[(checkpoint.head_id, checkpoint.head_hash)] = checkpoint

    def check(self, position: int, event: AuditEvent, findings: _Findings) -> None:
        for (head_id, head_hash), checkpoint in self.by_count.get(position, {}).items():
            if head_hash != event.hash or head_id not in (None, event.pk):
                findings.disagree(checkpoint)

    def beyond(self, count: int, findings: _Findings) -> None:
        for position, heads in self.by_count.items():
            if position > count:
                for checkpoint in heads.values():
                    findings.disagree(checkpoint)


def _describe(event: AuditEvent, walk: _Walk, following: AuditEvent | None) -> str:
    """Name what happened at the first event whose link is wrong."""
    if walk.previous is not None and event.prev_hash == walk.before:
        return f"event #{walk.previous.pk} ({walk.previous.verb}) was inserted into the chain"
    if following is not None and following.prev_hash == walk.expected:
        return f"event #{event.pk} ({event.verb}) was inserted into the chain"
    return f"an event before #{event.pk} ({event.verb}) was removed"


def _link_problem(event: AuditEvent, walk: _Walk, following: AuditEvent | None) -> str:
    if event.computed_hash() != event.hash:
        return f"event #{event.pk} ({event.verb}) was edited"
    if event.prev_hash != walk.expected:
        return _describe(event, walk, following)
    return ""


def _note(event: AuditEvent, findings: _Findings, key: str) -> None:
    findings.count += 1
    findings.first = findings.first or event
    findings.last = event
    signed = event_signature(key=key, hash=event.hash)
    if not hmac.compare_digest(event.signature, signed):
        findings.unsigned_count += 1
        if findings.unsigned is None:
            findings.unsigned, findings.unsigned_at = event, findings.count


def _walk(key: str, anchors: _Anchors) -> tuple[_Findings, str]:
    """Every event in the order it was appended: hash, link, signature, checkpoints."""
    walk, findings = _Walk(), _Findings()
    events = AuditEvent.objects.order_by("id").iterator(chunk_size=2000)
    event = next(events, None)
    while event is not None:
        following = next(events, None)
        problem = _link_problem(event, walk, following)
        if problem:
            return findings, problem
        _note(event, findings, key)
        anchors.check(findings.count, event, findings)
        walk = _Walk(expected=event.hash, before=walk.expected, previous=event)
        event = following
    anchors.beyond(findings.count, findings)
    return findings, ""


def _removed(findings: _Findings, checkpoint: Checkpoint) -> str:
    """The chain verifies but a checkpoint's head is not where it was."""
    if findings.first is None:
        return (f"the audit trail was truncated: it has no events, but {checkpoint.label} "
                f"counted {checkpoint.count} (head {checkpoint.head})")
    if checkpoint.head_id is not None and findings.first.pk > checkpoint.head_id:
        return (f"the audit trail was truncated and restarted: {checkpoint.label} counted "
                f"{checkpoint.count} events up to #{checkpoint.head_id}, the chain now starts "
                f"at #{findings.first.pk}")
    assert findings.last is not None
    if findings.count < checkpoint.count:
        return (f"the tail was removed: the chain ends at event #{findings.last.pk} "
                f"({findings.last.verb}) after {findings.count} events, but "
                f"{checkpoint.label} counted {checkpoint.count} (head {checkpoint.head})")
    return (f"the tail was removed and other events appended: {checkpoint.label} has head "
            f"{checkpoint.head} at {checkpoint.count} events, which the chain no longer has "
            "there")


def _unsigned(findings: _Findings) -> str:
    """Signatures fail from `findings.unsigned` on: a forgery, or a rewrite if a checkpoint
    written before it no longer matches."""
    event, n = findings.unsigned, findings.unsigned_count
    assert event is not None
    if n == findings.count > 1:
        hint = " (every event fails: is HELDOUT_AUDIT_KEY the key the trail was signed with?)"
    else:
        hint = ""
    if findings.disagreeing is not None:
        checkpoint = findings.disagreeing
        return (f"the chain was rewritten from event #{event.pk} ({event.verb}) on: {n} "
                f"signatures do not verify, and {checkpoint.label} (head {checkpoint.head} at "
                f"{checkpoint.count} events) no longer matches the chain{hint}")
    if n == 1:
        return f"event #{event.pk} ({event.verb}) is forged: its signature does not verify"
    return (f"{n} events from #{event.pk} ({event.verb}) on are forged: their signatures do "
            f"not verify (appended, or the chain was rewritten after the last checkpoint)"
            f"{hint}")


def verify_chain(
    *, checkpoints: Path | None = None, noted: list[Checkpoint] | None = None
) -> ChainReport:
    """Walk every event in the order it was appended, recomputing each hash, link and
    signature, and compare the chain with every checkpoint written so far (and any noted
    heads)."""
    key = audit_key()
    try:
        anchors = _Anchors(read_checkpoints(checkpoints or checkpoint_path(), key=key))
    except CheckpointError as error:
        return ChainReport(False, 0, str(error))
    for head in noted or []:
        anchors.add(head)
    findings, problem = _walk(key, anchors)
    if not problem and findings.unsigned is not None:
        problem = _unsigned(findings)
    elif not problem and findings.disagreeing is not None:
        problem = _removed(findings, findings.disagreeing)
    if problem:
        count = findings.unsigned_at - 1 if findings.unsigned else findings.count
        return ChainReport(False, count, problem, anchors.last)
    return ChainReport(True, findings.count, checkpoint=anchors.last)
