"""The audit key: required at start-up when DEBUG is off (like DJANGO_SECRET_KEY), made once
(mode 0600) in development, read from a file if asked, never the SECRET_KEY; the deploy
checks refuse a weak or exposed key and an unwritable checkpoint file. Events recorded before
signing existed are signed by the migration (PostgreSQL here, SQLite in a subprocess)."""

from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from django.db import DatabaseError, connection, transaction
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from core.audit import verify_chain
from core.checks import check_audit_checkpoints_writable, check_audit_key
from core.models import GENESIS, AuditEvent, event_hash, event_signature
from tests.conftest import REPO

PRINT_KEY = "from django.conf import settings; print(settings.HELDOUT_AUDIT_KEY)"
LEGACY = ("terms.accepted", "team.created", "hidden_data.accessed")


def start(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """Django's start-up with heldout.settings and only the given HELDOUT_/DJANGO_ variables."""
    clean = {key: value for key, value in os.environ.items()
             if not key.startswith(("HELDOUT_", "DJANGO_")) and key != "DATABASE_URL"}
    clean |= {"DJANGO_SETTINGS_MODULE": "heldout.settings", "HELDOUT_VAR_DIR": str(tmp_path),
              "DJANGO_SECRET_KEY": "a-secret-key-for-this-test-only-0123456789"} | env
    return subprocess.run([sys.executable, "-c", PRINT_KEY], cwd=REPO, env=clean,
                          capture_output=True, text=True, timeout=60, check=False)


def test_start_up_without_the_key_and_debug_off_fails_clearly(tmp_path: Path) -> None:
    done = start(tmp_path, DJANGO_DEBUG="0")

    assert done.returncode != 0
    assert "ImproperlyConfigured: Set HELDOUT_AUDIT_KEY or HELDOUT_AUDIT_KEY_FILE" in done.stderr
    assert not (tmp_path / "audit.key").exists()


@pytest.mark.parametrize(("key", "message"), [
    ("short", "HELDOUT_AUDIT_KEY must be at least 32 characters."),
    ("a-secret-key-for-this-test-only-0123456789",
     "HELDOUT_AUDIT_KEY must differ from DJANGO_SECRET_KEY."),
])
def test_a_weak_or_shared_key_stops_start_up(tmp_path: Path, key: str, message: str) -> None:
    done = start(tmp_path, DJANGO_DEBUG="0", HELDOUT_AUDIT_KEY=key)
    assert done.returncode != 0 and message in done.stderr


def test_the_key_is_read_from_the_environment_or_a_file(tmp_path: Path) -> None:
    key_file = tmp_path / "audit-key"
    key_file.write_text("a-key-from-a-file-of-thirty-two-chars-or-more\n")

    from_env = start(tmp_path, DJANGO_DEBUG="0", HELDOUT_AUDIT_KEY="k" * 40)
    from_file = start(tmp_path, DJANGO_DEBUG="0", HELDOUT_AUDIT_KEY_FILE=str(key_file))
    missing = start(tmp_path, DJANGO_DEBUG="0", HELDOUT_AUDIT_KEY_FILE=str(tmp_path / "no"))

    assert from_env.stdout == "k" * 40 + "\n"
    assert from_file.stdout == "a-key-from-a-file-of-thirty-two-chars-or-more\n"
    assert missing.returncode != 0 and "HELDOUT_AUDIT_KEY_FILE=" in missing.stderr


def test_development_makes_a_key_once_readable_by_its_owner_only(tmp_path: Path) -> None:
    first = start(tmp_path, DJANGO_DEBUG="1")
    second = start(tmp_path, DJANGO_DEBUG="1")

    assert first.returncode == 0, first.stderr
    key = (tmp_path / "audit.key").read_text().strip()
    assert len(key) >= 32 and first.stdout == second.stdout == key + "\n"
    assert stat.S_IMODE((tmp_path / "audit.key").stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("audit")) == \
        ["audit.key"]


def test_the_deploy_check_refuses_a_weak_shared_or_exposed_key(settings, tmp_path: Path) -> None:
    assert check_audit_key() == []
    settings.HELDOUT_AUDIT_KEY = "short"
    assert [m.id for m in check_audit_key()] == ["heldout.E003"]
    settings.HELDOUT_AUDIT_KEY = settings.SECRET_KEY = "s" * 50
    assert "SECRET_KEY" in check_audit_key()[0].msg
    settings.HELDOUT_AUDIT_KEY = "k" * 40
    settings.HELDOUT_AUDIT_KEY_FILE = str(key_file := tmp_path / "key")
    key_file.write_text("k" * 40)
    key_file.chmod(0o644)
    assert "readable by other users" in check_audit_key()[0].msg
    key_file.chmod(0o600)
    assert check_audit_key() == []


def test_the_deploy_check_refuses_a_checkpoint_file_that_cannot_be_appended_to(
    settings, tmp_path: Path  # type: ignore[no-untyped-def]
) -> None:
    (tmp_path / "a-file").write_text("")
    (tmp_path / "a-folder").mkdir()
    for where in (tmp_path / "a-file" / "checkpoints.jsonl", tmp_path / "a-folder"):
        settings.HELDOUT_AUDIT_CHECKPOINT_FILE = where
        assert [m.id for m in check_audit_checkpoints_writable()] == ["heldout.E004"], where


def test_the_deploy_check_accepts_a_checkpoint_file_in_a_folder_still_to_be_made(
    settings, tmp_path: Path  # type: ignore[no-untyped-def]
) -> None:
    settings.HELDOUT_AUDIT_CHECKPOINT_FILE = tmp_path / "new" / "checkpoints.jsonl"
    assert check_audit_checkpoints_writable() == []


def _insert_legacy(cursor, at: datetime, verb: str, previous: str) -> str:  # type: ignore[no-untyped-def]
    digest = event_hash(prev_hash=previous, at=at, actor_id=None, actor_name="",
                        challenge_id=None, verb=verb, target="", data={})
    cursor.execute("INSERT INTO core_auditevent (at, actor_name, verb, target, data, prev_hash, "
                   "hash) VALUES (%s, '', %s, '', '{}', %s, %s)", [at, verb, previous, digest])
    return digest


@pytest.mark.django_db(transaction=True)
def test_the_migration_signs_the_events_recorded_before_it(settings) -> None:  # type: ignore[no-untyped-def]
    MigrationExecutor(connection).migrate([("core", "0002_audit_chain")])
    try:
        previous = GENESIS
        with connection.cursor() as cursor:
            for verb in LEGACY:
                previous = _insert_legacy(cursor, timezone.now(), verb, previous)
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes("core"))

    events = list(AuditEvent.objects.order_by("id"))
    assert [e.signature for e in events] == [
        event_signature(key=settings.HELDOUT_AUDIT_KEY, hash=e.hash) for e in events]
    assert verify_chain().intact and verify_chain().count == 3
    for statement in ("UPDATE core_auditevent SET verb = 'x'", "TRUNCATE core_auditevent"):
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), \
                connection.cursor() as cursor:
            cursor.execute(statement)


def test_sqlite_signs_old_events_and_refuses_update_and_delete(tmp_path: Path) -> None:
    env = {key: value for key, value in os.environ.items() if key != "DATABASE_URL"}
    env |= {"HELDOUT_VAR_DIR": str(tmp_path), "DJANGO_DEBUG": "1",
            "DJANGO_SETTINGS_MODULE": "heldout.settings"}

    def manage(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "manage.py", *args], cwd=REPO, env=env,
                              capture_output=True, text=True, timeout=300, check=False)

    assert manage("migrate", "core", "0002", "-v", "0").returncode == 0
    database = sqlite3.connect(tmp_path / "db.sqlite3")
    previous = GENESIS
    for verb in LEGACY:
        at = datetime.now(UTC).replace(microsecond=0)
        digest = event_hash(prev_hash=previous, at=at, actor_id=None, actor_name="",
                            challenge_id=None, verb=verb, target="", data={})
        database.execute("INSERT INTO core_auditevent (at, actor_name, verb, target, data, "
                         "prev_hash, hash) VALUES (?, '', ?, '', '{}', ?, ?)",
                         [at.strftime("%Y-%m-%d %H:%M:%S"), verb, previous, digest])
        previous = digest
    database.commit()
    assert manage("migrate", "-v", "0").returncode == 0

    verified = manage("audit_verify")

    assert verified.returncode == 0, verified.stderr
    assert verified.stdout.startswith("audit trail intact: 3 events\n")
    for statement in ("UPDATE core_auditevent SET verb = 'y'", "DELETE FROM core_auditevent"):
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            database.execute(statement)
