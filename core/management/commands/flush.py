"""Django's `flush`, which empties every table, the audit trail included.

The trail refuses TRUNCATE (PostgreSQL) and DELETE (SQLite), which is what `flush` runs, so
for this command only, inside its transaction, the trigger is lifted and put back. Whoever
runs manage.py holds the audit key anyway; the checkpoint file still records what the trail
held, so `audit_verify` names the truncation afterwards. The test runner flushes the database
after every transactional test, which is why this exists.
"""

from __future__ import annotations

from typing import Any

from django.core.management.commands import flush
from django.db import connections, transaction

TABLE = "core_auditevent"
LIFT = {
    "postgresql": [f"ALTER TABLE {TABLE} DISABLE TRIGGER core_auditevent_no_truncate"],
    "sqlite": ["DROP TRIGGER IF EXISTS core_auditevent_no_delete"],
}
RESTORE = {
    "postgresql": [f"ALTER TABLE {TABLE} ENABLE TRIGGER core_auditevent_no_truncate"],
    "sqlite": [
        f"""CREATE TRIGGER IF NOT EXISTS core_auditevent_no_delete BEFORE DELETE ON {TABLE}
        BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only: DELETE refused'); END""",
    ],
}


class Command(flush.Command):
    help = f"{flush.Command.help} The audit trail is emptied too."

    def handle(self, **options: Any) -> None:
        database = options["database"]
        connection = connections[database]
        guarded = _guarded(connection)
        with transaction.atomic(using=database):
            _run(connection, LIFT[connection.vendor] if guarded else [])
            super().handle(**options)
            _run(connection, RESTORE[connection.vendor] if guarded else [])


def _guarded(connection: Any) -> bool:
    """Whether the trail's trigger is there (not before core's migrations, nor elsewhere)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_trigger WHERE tgname = %s",
                           ["core_auditevent_no_truncate"])
            return cursor.fetchone() is not None
    return connection.vendor == "sqlite" and TABLE in connection.introspection.table_names()


def _run(connection: Any, statements: list[str]) -> None:
    with connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)
