import secrets
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from server.fleet.database import ensure_migrated
from server.fleet.models import ProxyUser, validate_proxy_user_name


class Command(BaseCommand):
    help = "Create or update a user of the proxy and the API; prints the password."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name")
        parser.add_argument("--password", help="the password (default: a new random one)")
        parser.add_argument("--disable", action="store_true", help="refuse this user from now on")

    def handle(self, *args: Any, **options: Any) -> None:
        ensure_migrated()
        name = options["name"]
        try:
            validate_proxy_user_name(name)
        except ValidationError as exc:
            raise CommandError(f"invalid name {name!r}: {' '.join(exc.messages)}") from None
        password = options["password"] or secrets.token_urlsafe(12)
        if ":" in password:
            raise CommandError("a proxy password may not contain ':' (Basic auth)")
        user, created = ProxyUser.objects.get_or_create(name=name)
        user.set_password(password)
        user.is_active = not options["disable"]
        user.save()
        self.stdout.write(f"{'created' if created else 'updated'} proxy user {name}")
        self.stdout.write(f"password: {password}")
