import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from server.config import ServerConfig, split_host_port
from server.forwarded import parse_trusted_proxies
from server.runner import serve


def _address(value: str) -> str:
    split_host_port(value)  # validate early, with argparse's error message
    return value


class Command(BaseCommand):
    help = "Run the Exitpool server: web (admin, agents' WebSocket) and the proxy port."
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--http", type=_address, help="HOST:PORT for web and agents (0.0.0.0:8000)"
        )
        parser.add_argument(
            "--proxy", type=_address, help="HOST:PORT for proxy users (0.0.0.0:8899)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            config = ServerConfig.from_env().with_overrides(
                http=options["http"], proxy=options["proxy"]
            )
            parse_trusted_proxies(config.trusted_proxies)  # a bad entry stops the start here
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        sys.exit(serve(config))
