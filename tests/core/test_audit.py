"""The audit trail is tamper-evident: every event is chained to the one before by sha256,
`audit_verify` finds the first event that was edited, removed or inserted, and the database
itself refuses UPDATE and DELETE on the table (PostgreSQL here; SQLite in test_audit_key.py).
Signatures and checkpoints: test_audit_anchor.py."""

from __future__ import annotations

import json

import pytest
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction
from django.urls import reverse

from core.audit import verify_chain
from core.models import GENESIS, AuditEvent, event_hash
from core.services import audit_record

pytestmark = pytest.mark.django_db


def tamper(sql: str, params: list[object]) -> None:
    """What someone with the database's superuser password could do: switch the append-only
    triggers off for one transaction and change rows."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute(sql, params)


def verify_command() -> tuple[int, str]:
    try:
        call_command("audit_verify", stdout=(out := _Text()), stderr=out)
    except SystemExit as exit_:
        return int(exit_.code or 0), out.text
    return 0, out.text


class _Text:
    def __init__(self) -> None:
        self.text = ""

    def write(self, text: str) -> None:
        self.text += text

    def flush(self) -> None:
        pass


def test_each_event_points_at_the_one_before(chain) -> None:  # type: ignore[no-untyped-def]
    stored = list(AuditEvent.objects.order_by("id"))
    assert stored[0].prev_hash == GENESIS
    assert [e.prev_hash for e in stored[1:]] == [e.hash for e in stored[:-1]]
    assert all(e.hash == e.computed_hash() for e in stored)
    assert len({e.hash for e in stored}) == len(stored)


def test_the_hash_covers_every_field(chain) -> None:  # type: ignore[no-untyped-def]
    event = chain[2]
    fields = {"prev_hash": event.prev_hash, "at": event.at, "actor_id": event.actor_id,
              "actor_name": event.actor_name, "challenge_id": event.challenge_id,
              "verb": event.verb, "target": event.target, "data": event.data}
    assert event_hash(**fields) == event.hash
    for name, changed in [("verb", "x"), ("target", "submission:2"), ("actor_id", 7),
                          ("challenge_id", 99), ("data", {"score": 0.9})]:
        assert event_hash(**{**fields, name: changed}) != event.hash, name


def test_an_intact_trail_verifies_with_its_count(chain) -> None:  # type: ignore[no-untyped-def]
    assert verify_chain().intact
    code, text = verify_command()
    assert code == 0
    assert text.startswith("audit trail intact: 4 events\nno checkpoint yet in ")


def test_an_edited_event_is_named(chain) -> None:  # type: ignore[no-untyped-def]
    tamper("UPDATE core_auditevent SET data = %s WHERE id = %s",
           [json.dumps({"labels_sha256": "00" * 32, "score": 0.8125}), chain[2].pk])

    code, text = verify_command()

    assert code == 1
    assert f"event #{chain[2].pk} (hidden_data.accessed) was edited" in text


def test_a_removed_event_is_noticed_at_the_next_one(chain) -> None:  # type: ignore[no-untyped-def]
    tamper("DELETE FROM core_auditevent WHERE id = %s", [chain[1].pk])

    code, text = verify_command()

    assert code == 1
    assert f"an event before #{chain[2].pk} (hidden_data.accessed) was removed" in text


def test_an_inserted_event_is_named(challenge, alice) -> None:  # type: ignore[no-untyped-def]
    first = audit_record(verb="terms.accepted", actor=alice, challenge=challenge)
    with pytest.raises(RuntimeError), transaction.atomic():  # leaves a gap in the ids
        AuditEvent.objects.create(verb="placeholder")
        raise RuntimeError
    last = audit_record(verb="submission.succeeded", challenge=challenge)
    assert last.pk > first.pk + 1
    forged = AuditEvent(id=first.pk + 1, at=first.at, verb="submission.rescore",
                        challenge_id=challenge.pk, prev_hash=first.hash)
    forged.hash = forged.computed_hash()  # a well-formed event, linked to the one before
    forged.save(force_insert=True)

    code, text = verify_command()

    assert code == 1
    assert f"event #{forged.pk} (submission.rescore) was inserted" in text


@pytest.mark.parametrize("sql", [
    "UPDATE core_auditevent SET verb = 'nothing.happened' WHERE id = %s",
    "DELETE FROM core_auditevent WHERE id = %s",
])
def test_postgresql_refuses_update_and_delete(chain, sql) -> None:  # type: ignore[no-untyped-def]
    assert connection.vendor == "postgresql"
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), \
            connection.cursor() as cursor:
        cursor.execute(sql, [chain[0].pk])
    assert AuditEvent.objects.get(pk=chain[0].pk).verb == "terms.accepted"
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(pk=chain[0].pk).delete()
    assert verify_chain().intact


def test_organisers_export_their_challenges_trail_with_hashes(
    client, chain, challenge, olga, alice
) -> None:  # type: ignore[no-untyped-def]
    audit_record(verb="team.created", challenge=None, target="elsewhere")
    url = reverse("challenges:audit_export", args=[challenge.slug])

    client.force_login(alice)
    assert client.get(url).status_code == 404
    client.force_login(olga)
    response = client.get(url)

    lines = [json.loads(line) for line in b"".join(response.streaming_content).splitlines()]
    assert [line["verb"] for line in lines] == [e.verb for e in chain]
    for line, event in zip(lines, chain, strict=True):
        assert line["hash"] == event.hash and line["prev_hash"] == event.prev_hash
