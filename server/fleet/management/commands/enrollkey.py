from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from server.fleet.database import ensure_migrated
from server.fleet.models import EnrollmentKey


class Command(BaseCommand):
    help = "Create an enrollment key for new agents; the key is the last line of output."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--label", default="", help="a note for admins, e.g. 'Berlin office'")

    def handle(self, *args: Any, **options: Any) -> None:
        ensure_migrated()
        _, raw = EnrollmentKey.issue(label=options["label"])
        self.stdout.write(
            "New enrollment key (shown once; agents exchange it for their own credential):"
        )
        self.stdout.write(raw)
