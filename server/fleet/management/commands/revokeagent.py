from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from server import agent_control
from server.config import ServerConfig
from server.fleet.database import ensure_migrated
from server.fleet.models import Agent


class Command(BaseCommand):
    help = (
        "Revoke an agent's credential: a running server cuts it off within its flush "
        "interval, and it is refused from then on."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name")

    def handle(self, *args: Any, **options: Any) -> None:
        ensure_migrated()
        agent = Agent.objects.filter(name=options["name"]).first()
        if agent is None:
            raise CommandError(f"no agent named {options['name']!r}")
        if agent.revoked_at is not None:
            self.stdout.write(f"agent {agent.name} was already revoked")
            return
        # In this process there is no live server: the running one reads the
        # revocation from the database at its next flush and cuts the agent off.
        agent_control.revoke([agent])
        flush = ServerConfig.from_env().flush_interval
        self.stdout.write(
            f"revoked agent {agent.name}; a running server cuts it off within {flush:g} s"
        )
