from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from challenges.bundles import export_challenge, export_challenge_zip, exported_labels
from challenges.exceptions import BundleError
from challenges.models import Challenge
from core.services import audit_record


class Command(BaseCommand):
    help = ("Write a challenge (with its hidden data) back as a bundle folder, or as a zip "
            "(the admin's “Export as bundle”) when PATH ends in .zip.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug")
        parser.add_argument("path", type=Path)

    def handle(self, *args: Any, slug: str, path: Path, **options: Any) -> None:
        challenge = Challenge.objects.filter(slug=slug).first()
        if challenge is None:
            raise CommandError(f"No challenge with slug {slug!r}.")
        try:
            if path.suffix.lower() == ".zip":
                facts = export_challenge_zip(challenge, path)
            else:
                export_challenge(challenge, path)
                facts = {"folder": True, "labels_sha256": exported_labels(challenge)}
        except BundleError as error:
            raise CommandError("; ".join(error.problems)) from None
        # The bundle holds the hidden labels: a copy leaves the platform, as from the admin,
        # and is recorded the same way (no actor: the server's shell).
        audit_record(verb="challenge.exported", challenge=challenge,
                     data={**facts, "via": "export_challenge"})
        self.stdout.write(f"{slug}: exported to {path}")
