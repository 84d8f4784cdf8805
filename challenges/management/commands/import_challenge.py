from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from challenges.bundles import import_challenge
from challenges.exceptions import BundleError


class Command(BaseCommand):
    help = "Create or update a challenge from a bundle folder holding challenge.yaml."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", type=Path)

    def handle(self, *args: Any, path: Path, **options: Any) -> None:
        try:
            challenge, changed = import_challenge(path)
        except BundleError as error:
            lines = "\n".join(f"  - {problem}" for problem in error.problems)
            raise CommandError(f"{path} is not a valid challenge bundle:\n{lines}") from None
        verb = "imported" if changed else "unchanged"
        self.stdout.write(f"{challenge.slug}: {verb} ({challenge.phases.count()} phases)")
