from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from challenges.bundles import export_challenge
from challenges.models import Challenge


class Command(BaseCommand):
    help = "Write a challenge (with its hidden data) back as a bundle folder."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug")
        parser.add_argument("path", type=Path)

    def handle(self, *args: Any, slug: str, path: Path, **options: Any) -> None:
        challenge = Challenge.objects.filter(slug=slug).first()
        if challenge is None:
            raise CommandError(f"No challenge with slug {slug!r}.")
        export_challenge(challenge, path)
        self.stdout.write(f"{slug}: exported to {path}")
