"""The audit trail anchored outside the database (issue 20, attack 5): PostgreSQL refuses
TRUNCATE; each event carries an HMAC with a key the database never holds; signed
checkpoints of the head are appended to a file. Someone with the database's superuser
password and this source code (but not the key) who truncates the trail, deletes its last
events, rewrites it with every later hash recomputed, or appends a well-hashed event, is
named by `audit_verify`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction
from django.urls import reverse

from core.audit import checkpoint_parse, key_id
from core.models import AuditEvent, event_hash
from core.services import audit_record
from core.tasks import audit_checkpoint
from tests.core.test_audit import _Text, tamper, verify_command

pytestmark = pytest.mark.django_db
TEST_KEY = "test-only-audit-key-not-secret-0123456789"


def checkpoint_command() -> str:
    call_command("audit_checkpoint", stdout=(out := _Text()))
    return out.text


def lines(path: Path) -> list[dict]:  # type: ignore[type-arg]
    return [json.loads(line) for line in path.read_text().splitlines()]


def rewrite(events: list[AuditEvent], start: int, data: dict) -> None:  # type: ignore[type-arg]
    """Edit one event and recompute its hash and every later one with the unkeyed code an
    attacker has (core.models.event_hash); signatures cannot be recomputed without the key."""
    previous = events[start].prev_hash
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")
        for index, event in enumerate(events[start:]):
            if index == 0:
                event.data = data
            event.prev_hash = previous
            event.hash = event_hash(
                prev_hash=previous, at=event.at, actor_id=event.actor_id,
                actor_name=event.actor_name, challenge_id=event.challenge_id, verb=event.verb,
                target=event.target, data=event.data)
            cursor.execute("UPDATE core_auditevent SET data = %s, prev_hash = %s, hash = %s "
                           "WHERE id = %s", [json.dumps(event.data), event.prev_hash,
                                             event.hash, event.pk])
            previous = event.hash


def forge(after: AuditEvent, *, verb: str, signature: str = "") -> AuditEvent:
    """An event appended with a correct link and hash (an INSERT, which the table allows)."""
    forged = AuditEvent(verb=verb, target="submission:1", challenge_id=after.challenge_id,
                        data={"score": 0.99}, prev_hash=after.hash, signature=signature)
    forged.hash = forged.computed_hash()
    forged.save(force_insert=True)
    return forged


def test_postgresql_refuses_truncate(chain) -> None:  # type: ignore[no-untyped-def]
    assert connection.vendor == "postgresql"
    with pytest.raises(DatabaseError, match="append-only: TRUNCATE refused"), \
            transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("TRUNCATE core_auditevent")
    assert AuditEvent.objects.count() == 4


def test_a_truncation_is_named(chain) -> None:  # type: ignore[no-untyped-def]
    checkpoint_command()
    tamper("TRUNCATE core_auditevent", [])  # a superuser with the triggers off

    code, text = verify_command()

    assert code == 1
    assert "the audit trail was truncated: it has no events, but the checkpoint of " in text
    assert f"counted 4 (head #{chain[3].pk} {chain[3].hash})" in text


def test_a_removed_tail_is_named(chain) -> None:  # type: ignore[no-untyped-def]
    checkpoint_command()
    tamper("DELETE FROM core_auditevent WHERE id >= %s", [chain[2].pk])

    code, text = verify_command()

    assert code == 1
    assert (f"the tail was removed: the chain ends at event #{chain[1].pk} (team.created) "
            "after 2 events, but the checkpoint of ") in text
    assert f"counted 4 (head #{chain[3].pk} {chain[3].hash})" in text


def test_a_checkpoint_written_after_a_removal_does_not_hide_it(chain, challenge) -> None:  # type: ignore[no-untyped-def]
    checkpoint_command()
    tamper("DELETE FROM core_auditevent WHERE id >= %s", [chain[2].pk])
    for team in (2, 3):  # the platform goes on recording, signing with its key
        audit_record(verb="team.created", challenge=challenge, target=f"team:{team}")
    checkpoint_command()  # and beat goes on, unaware

    code, text = verify_command()

    assert code == 1
    assert "the tail was removed and other events appended: the checkpoint of " in text
    assert f"has head #{chain[3].pk} {chain[3].hash} at 4 events" in text


def test_a_rewritten_chain_is_named(chain) -> None:  # type: ignore[no-untyped-def]
    checkpoint_command()
    head = chain[3].hash
    rewrite(chain, 2, {"labels_sha256": "00" * 32, "score": 0.8125})
    assert all(e.hash == e.computed_hash() for e in AuditEvent.objects.all())  # well-hashed

    code, text = verify_command()

    assert code == 1
    assert (f"the chain was rewritten from event #{chain[2].pk} (hidden_data.accessed) on: "
            "2 signatures do not verify, and the checkpoint of ") in text
    assert f"(head #{chain[3].pk} {head} at 4 events) no longer matches the chain" in text


def test_a_rewrite_after_the_last_checkpoint_still_fails_its_signatures(chain) -> None:  # type: ignore[no-untyped-def]
    rewrite(chain, 1, {"members": ["mallory"]})

    code, text = verify_command()

    assert code == 1
    assert (f"3 events from #{chain[1].pk} (team.created) on are forged: their signatures do "
            "not verify (appended, or the chain was rewritten after the last checkpoint)") in text


@pytest.mark.parametrize("signature", ["", "ab" * 32])
def test_a_forged_event_is_named(chain, signature) -> None:  # type: ignore[no-untyped-def]
    checkpoint_command()
    forged = forge(chain[3], verb="submission.rescore", signature=signature)
    checkpoint_command()  # a checkpoint taken after it does not make it genuine

    code, text = verify_command()

    assert code == 1
    assert f"event #{forged.pk} (submission.rescore) is forged: its signature does not verify" \
        in text


def test_an_intact_trail_matches_every_checkpoint(chain, challenge) -> None:  # type: ignore[no-untyped-def]
    checkpoint_command()
    audit_record(verb="team.created", challenge=challenge, target="team:2")
    last = checkpoint_command()
    audit_record(verb="team.created", challenge=challenge, target="team:3")

    code, text = verify_command()

    assert code == 0, text
    head = AuditEvent.objects.order_by("id")[4]
    assert text.startswith("audit trail intact: 6 events\nmatches every checkpoint; the last: "
                           "checkpoint of ")
    assert text.endswith(f": 5 events, head #{head.pk} {head.hash}\n")
    assert text.split("the last: ")[1].strip() in last


def test_each_command_run_appends_one_signed_line_and_the_file_only_grows(
    chain, challenge, checkpoints: Path  # type: ignore[no-untyped-def]
) -> None:
    seen = b""
    for run in range(3):
        printed = checkpoint_command()
        content = checkpoints.read_bytes()
        assert content.startswith(seen) and len(content) > len(seen)
        assert content.count(b"\n") == run + 1
        line = content[len(seen):].decode()
        assert line in printed  # the command prints the line it wrote
        checkpoint = checkpoint_parse(line, line=run + 1, key=TEST_KEY)
        head = AuditEvent.objects.order_by("-id").first()
        assert (checkpoint.count, checkpoint.head_id, checkpoint.head_hash) == \
            (4 + run, head.pk, head.hash)
        assert checkpoint.key_id == key_id(TEST_KEY) and TEST_KEY not in line
        seen = content
        audit_record(verb="team.created", challenge=challenge, target=f"team:{run}")


def test_an_edited_checkpoint_line_is_named(chain, checkpoints: Path) -> None:  # type: ignore[no-untyped-def]
    checkpoint_command()
    checkpoint_command()
    first, second = checkpoints.read_text().splitlines()
    edited = json.loads(second) | {"count": 2}  # as if the trail had held only two events
    checkpoints.write_text(first + "\n" + json.dumps(edited) + "\n")

    code, text = verify_command()

    assert code == 1
    assert "line 2 of the checkpoint file is forged: its signature does not verify" in text


def test_a_checkpoint_signed_with_another_key_is_named(chain, settings) -> None:  # type: ignore[no-untyped-def]
    checkpoint_command()
    settings.HELDOUT_AUDIT_KEY = "another-key-of-more-than-thirty-two-characters"

    code, text = verify_command()

    assert code == 1
    assert "line 1 of the checkpoint file was signed with another key (key id " in text


def test_a_noted_head_is_checked_like_a_checkpoint(chain) -> None:  # type: ignore[no-untyped-def]
    noted = f"4:{chain[3].hash}"
    call_command("audit_verify", "--noted", noted, stdout=_Text())
    tamper("DELETE FROM core_auditevent WHERE id = %s", [chain[3].pk])

    with pytest.raises(SystemExit):
        call_command("audit_verify", "--noted", noted, stdout=_Text(), stderr=(out := _Text()))

    assert (f"the tail was removed: the chain ends at event #{chain[2].pk} "
            f"(hidden_data.accessed) after 3 events, but the noted head counted 4 "
            f"(head {chain[3].hash})") in out.text


def test_beat_writes_a_checkpoint_every_few_minutes(chain, settings, checkpoints: Path) -> None:  # type: ignore[no-untyped-def]
    from heldout.celery import app

    app.loader.import_default_modules()
    [entry] = [e for e in settings.CELERY_BEAT_SCHEDULE.values()
               if e["task"] == "core.tasks.audit_checkpoint"]
    assert entry["schedule"] <= 300
    assert "core.tasks.audit_checkpoint" in app.tasks

    audit_checkpoint()  # what a worker runs when beat sends it

    assert [line["count"] for line in lines(checkpoints)] == [4]


def test_the_dashboard_shows_the_latest_checkpoint(
    client, chain, challenge, olga, checkpoints: Path  # type: ignore[no-untyped-def]
) -> None:
    url = reverse("admin:challenges_challenge_dashboard", args=[challenge.pk])
    client.force_login(olga)
    assert "No checkpoint yet" in client.get(url).content.decode()
    checkpoint_command()
    audit_record(verb="team.created", challenge=None, target="elsewhere")
    checkpoint_command()

    page = client.get(url).content.decode()

    box = page[page.index('id="audit-checkpoint"'):]
    box = box[:box.index("</div>")]
    latest = AuditEvent.objects.order_by("-id").first()
    at = lines(checkpoints)[-1]["at"]
    assert f"{at}: <strong>5</strong> events in the whole trail" in box
    assert f"<code>{latest.hash}</code>" in box and chain[3].hash not in box
