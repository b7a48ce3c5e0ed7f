"""Settings for tests that use Django in the pytest process itself.

Django reads its settings once per process, so the data directory is chosen
here, before any test module imports them: one throwaway directory for the
whole run. Servers started as processes get their own ``--data-dir``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator

import pytest

os.environ["DJANGO_SETTINGS_MODULE"] = "server.settings"
DATA_DIR = tempfile.mkdtemp(prefix="exitpool-tests-")
os.environ["EXITPOOL_DATA_DIR"] = DATA_DIR
os.environ.pop("DATABASE_URL", None)


@pytest.fixture(scope="session")
def django_db() -> Iterator[None]:
    """A migrated database in the run's data directory, with a fast password hasher."""
    import django

    django.setup()
    from django.core.management import call_command
    from django.test.utils import override_settings

    with override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"]):
        call_command("migrate", verbosity=0)
        yield
    shutil.rmtree(DATA_DIR, ignore_errors=True)
