"""`python manage.py station_add NAME`: register a data station and print its token on the
last line (shown once; only its sha256 is stored)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from challenges.exceptions import BundleError
from challenges.stations import station_add


class Command(BaseCommand):
    help = "Register a data station; prints its token on the last line (shown once)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name", help="lower-case letters, digits, - and _")

    def handle(self, *args: Any, name: str, **options: Any) -> None:
        try:
            station, token = station_add(name=name)
        except BundleError as error:
            raise CommandError("; ".join(error.problems)) from None
        except Exception as error:  # full_clean: a name that is not a slug
            raise CommandError(str(error)) from None
        self.stdout.write(f"Registered station {station.name}. Run it next to its data with:")
        self.stdout.write("  heldout-station --url <platform URL> --token <token> --data DIR")
        self.stdout.write("Its token (shown once; store it at the station):")
        self.stdout.write(token)
