from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from core.audit import verify_chain


class Command(BaseCommand):
    help = ("Check the audit trail's hash chain: exit 0 with the number of events when it is "
            "intact, 1 naming the first event that was edited, removed or inserted.")

    def handle(self, *args: Any, **options: Any) -> None:
        report = verify_chain()
        if not report.intact:
            self.stderr.write(f"audit trail broken after {report.count} intact events: "
                              f"{report.problem}")
            raise SystemExit(1)
        self.stdout.write(f"audit trail intact: {report.count} events")
