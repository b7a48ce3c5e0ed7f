"""Commands an admin may type before the server ever ran still find their tables."""

from django.core.management import call_command


def ensure_migrated() -> None:
    """Apply pending migrations (a no-op when the database is current)."""
    call_command("migrate", interactive=False, verbosity=0)
