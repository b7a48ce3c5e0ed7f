from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from server.fleet.database import ensure_migrated
from server.fleet.models import Agent


class Command(BaseCommand):
    help = "Revoke an agent's credential: it is refused from its next connection on."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name")

    def handle(self, *args: Any, **options: Any) -> None:
        ensure_migrated()
        agent = Agent.objects.filter(name=options["name"]).first()
        if agent is None:
            raise CommandError(f"no agent named {options['name']!r}")
        agent.revoke()
        self.stdout.write(f"revoked agent {agent.name}")
