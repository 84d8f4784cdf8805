"""Audit events get a keyed signature, and PostgreSQL refuses TRUNCATE of the trail.

Events recorded before this migration are signed here, as they stand, with
HELDOUT_AUDIT_KEY: from then on every event must carry a valid signature, so there is no
"unsigned, hence old" class of event that a forger could hide in. Signing does not repair
anything: an event that was edited before now still fails its hash (its stored hash is what
gets signed), and a broken link stays broken, so `audit_verify` names them as before.
"""

import hashlib
import hmac

from django.conf import settings
from django.db import migrations, models

BATCH = 2000

POSTGRESQL = [
    # TRUNCATE is not a row operation: the row triggers of 0002 never see it.
    """CREATE TRIGGER core_auditevent_no_truncate BEFORE TRUNCATE ON core_auditevent
    FOR EACH STATEMENT EXECUTE FUNCTION heldout_audit_append_only()""",
]
POSTGRESQL_UNDO = ["DROP TRIGGER IF EXISTS core_auditevent_no_truncate ON core_auditevent"]
# Adding a column with a default makes Django rebuild an SQLite table, which drops its
# triggers: the ones of 0002 are made again (SQLite has no TRUNCATE).
SQLITE = [
    """CREATE TRIGGER IF NOT EXISTS core_auditevent_no_update BEFORE UPDATE ON core_auditevent
    BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only: UPDATE refused'); END""",
    """CREATE TRIGGER IF NOT EXISTS core_auditevent_no_delete BEFORE DELETE ON core_auditevent
    BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only: DELETE refused'); END""",
]
# While the existing events are signed (the only UPDATE the trail ever gets).
ALLOW_SIGNING = {
    "postgresql": ["ALTER TABLE core_auditevent DISABLE TRIGGER core_auditevent_append_only"],
    "sqlite": ["DROP TRIGGER IF EXISTS core_auditevent_no_update"],
}
REFUSE_AGAIN = {
    "postgresql": ["ALTER TABLE core_auditevent ENABLE TRIGGER core_auditevent_append_only"],
    "sqlite": SQLITE,
}


def _run(schema_editor, statements):
    for statement in statements:
        schema_editor.execute(statement, params=None)  # no placeholders: `%` is literal


def sign_existing_events(apps, schema_editor):
    AuditEvent = apps.get_model("core", "AuditEvent")
    unsigned = AuditEvent.objects.filter(signature="").order_by("id").only("id", "hash")
    if not unsigned.exists():
        return
    vendor = schema_editor.connection.vendor
    key = settings.HELDOUT_AUDIT_KEY.encode()
    _run(schema_editor, ALLOW_SIGNING.get(vendor, []))
    batch = []
    for event in unsigned.iterator(chunk_size=BATCH):
        event.signature = hmac.new(key, event.hash.encode(), hashlib.sha256).hexdigest()
        batch.append(event)
        if len(batch) == BATCH:
            AuditEvent.objects.bulk_update(batch, ["signature"])
            batch = []
    AuditEvent.objects.bulk_update(batch, ["signature"])
    _run(schema_editor, REFUSE_AGAIN.get(vendor, []))


def refuse_truncate(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    _run(schema_editor, {"postgresql": POSTGRESQL, "sqlite": SQLITE}.get(vendor, []))


def allow_truncate(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    _run(schema_editor, {"postgresql": POSTGRESQL_UNDO}.get(vendor, []))


class Migration(migrations.Migration):

    dependencies = [
        ('core', '0002_audit_chain'),
    ]

    operations = [
        migrations.AddField(
            model_name='auditevent',
            name='signature',
            field=models.CharField(blank=True, default='', max_length=64),
        ),
        migrations.RunPython(refuse_truncate, allow_truncate),
        migrations.RunPython(sign_existing_events, migrations.RunPython.noop),
    ]
