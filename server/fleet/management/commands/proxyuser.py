import secrets
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from server.fleet.database import ensure_migrated
from server.fleet.models import ProxyUser, validate_proxy_user_name


class Command(BaseCommand):
    help = (
        "Create or update a user of the proxy and the API; prints the password, and the "
        "API token when one is made (a new user, or --new-token)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name")
        parser.add_argument("--password", help="the password (default: a new random one)")
        parser.add_argument("--disable", action="store_true", help="refuse this user from now on")
        parser.add_argument(
            "--new-token",
            action="store_true",
            help="replace the user's API token (the old one stops working); new users get "
            "one anyway. An existing user keeps their password unless --password is given.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        ensure_migrated()
        name = options["name"]
        try:
            validate_proxy_user_name(name)
        except ValidationError as exc:
            raise CommandError(f"invalid name {name!r}: {' '.join(exc.messages)}") from None
        if options["password"] is not None and ":" in options["password"]:
            raise CommandError("a proxy password may not contain ':' (Basic auth)")
        user, created = ProxyUser.objects.get_or_create(name=name)
        password: str | None = None
        if created or options["password"] is not None or not options["new_token"]:
            password = options["password"] or secrets.token_urlsafe(12)
            user.set_password(password)
        user.is_active = not options["disable"]
        token = user.new_api_token() if created or options["new_token"] else None
        user.save()
        self.stdout.write(f"{'created' if created else 'updated'} proxy user {name}")
        if password is not None:
            self.stdout.write(f"password: {password}")
        if token is not None:
            # Stored hashed: this is the only time it can be shown.
            self.stdout.write(f"api token: {token}")
