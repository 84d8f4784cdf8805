from __future__ import annotations

import re
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from core.audit import Checkpoint, checkpoint_path, noted_head, verify_chain

NOTED = re.compile(r"(\d+):([0-9a-f]{64})")


class Command(BaseCommand):
    help = ("Check the audit trail: every hash link and signature, and every checkpoint in "
            "HELDOUT_AUDIT_CHECKPOINT_FILE. Exit 0 with the number of events when it is intact, "
            "1 naming the problem: an event edited, removed or inserted, a forged event, a "
            "rewritten chain, a removed tail or a truncation.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--noted", action="append", default=[], metavar="COUNT:HASH",
            help="a count and head hash noted down from the organisers' dashboard (or any "
                 "checkpoint kept elsewhere), checked like a checkpoint; may be repeated")

    def handle(self, *args: Any, **options: Any) -> None:
        report = verify_chain(noted=[_noted(text) for text in options["noted"]])
        if not report.intact:
            self.stderr.write(f"audit trail broken after {report.count} intact events: "
                              f"{report.problem}")
            raise SystemExit(1)
        self.stdout.write(f"audit trail intact: {report.count} events")
        if report.checkpoint is None:
            self.stdout.write(f"no checkpoint yet in {checkpoint_path()}: a removed tail cannot "
                              "be told until one is written (manage.py audit_checkpoint)")
        else:
            self.stdout.write(f"matches every checkpoint; the last: {report.checkpoint.describe()}")


def _noted(text: str) -> Checkpoint:
    match = NOTED.fullmatch(text.strip().lower())
    if match is None:
        raise CommandError(f"--noted {text!r}: expected COUNT:HASH (64 hexadecimal digits)")
    return noted_head(count=int(match[1]), head_hash=match[2])
