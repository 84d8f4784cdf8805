from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from core.audit import checkpoint_path
from core.services import audit_checkpoint_write


class Command(BaseCommand):
    help = ("Append a signed checkpoint of the audit trail's head (count, head event and hash, "
            "time) to HELDOUT_AUDIT_CHECKPOINT_FILE and print it. Beat writes one every "
            "HELDOUT_AUDIT_CHECKPOINT_SECONDS.")

    def handle(self, *args: Any, **options: Any) -> None:
        checkpoint = audit_checkpoint_write()
        self.stdout.write(f"{checkpoint.describe()} (appended to {checkpoint_path()})")
        self.stdout.write(checkpoint.json_line(), ending="")
