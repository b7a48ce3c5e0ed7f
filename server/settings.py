"""Django settings, read from the environment and the data directory.

The data directory (``EXITPOOL_DATA_DIR``, default ``./var``) holds the SQLite
database and the secret key, which is generated on first start and kept there
so sessions survive restarts. ``DATABASE_URL`` selects another database.

Production (docs/deploy.md): ``EXITPOOL_ALLOWED_HOSTS`` and, behind a TLS
reverse proxy, ``EXITPOOL_TLS=1`` (cookies only over HTTPS) with the proxy in
``EXITPOOL_TRUSTED_PROXIES``. The proxy's ``X-Forwarded-*`` headers are applied
to the ASGI scope by ``server/forwarded.py`` for trusted peers only; Django is
deliberately not told to read them (no ``SECURE_PROXY_SSL_HEADER``), since it
cannot tell a trusted proxy from a client that forges the header.
"""

import os
import secrets
from pathlib import Path

import dj_database_url

from server.config import default_data_dir

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def envbool(name: str, default: bool) -> bool:
    """``1/true/yes/on`` or ``0/false/no/off``; anything else is an error, not a silent "no"."""
    value = os.environ.get(name, str(default)).strip().lower()
    if value not in _TRUE | _FALSE:
        raise ValueError(
            f"{name}={value!r} is not a yes/no value (1, true, yes, on / 0, false, no, off)"
        )
    return value in _TRUE


def envint(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        number = int(value)
    except ValueError:
        raise ValueError(f"{name}={value!r} is not a whole number") from None
    if number < 0:
        raise ValueError(f"{name}={value!r} must be >= 0")
    return number


def envlist(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def envurl(name: str) -> str:
    """An ``http(s)://host[:port]`` base URL without a trailing slash, or ``""`` when unset."""
    value = os.environ.get(name, "").strip().rstrip("/")
    if value and not value.startswith(("http://", "https://")):
        raise ValueError(f"{name}={value!r} must start with http:// or https://")
    return value


def _secret_key(data_dir: Path) -> str:
    if key := os.environ.get("EXITPOOL_SECRET_KEY"):
        return key
    path = data_dir / "secret_key"
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(50))
    return path.read_text().strip()


BASE_DIR = Path(__file__).resolve().parent
DATA_DIR = default_data_dir()
SECRET_KEY = _secret_key(DATA_DIR)
DEBUG = envbool("EXITPOOL_DEBUG", False)
ALLOWED_HOSTS = envlist("EXITPOOL_ALLOWED_HOSTS", "*")
CSRF_TRUSTED_ORIGINS = envlist("EXITPOOL_CSRF_TRUSTED_ORIGINS", "")

PUBLIC_URL = envurl("EXITPOOL_PUBLIC_URL")
"""How people and agents reach the web port (e.g. ``https://exitpool.example.com`` behind
nginx); only used to print the right URLs. Empty: the ``--http`` address is shown."""
CREATE_FIRST_ADMIN = envbool("EXITPOOL_CREATE_ADMIN", True)
"""On the first start (no user account at all), create ``admin`` with a password printed once."""

# Behind TLS (the reverse proxy terminates it): cookies never travel in clear text.
TLS = envbool("EXITPOOL_TLS", False)
SESSION_COOKIE_SECURE = TLS
CSRF_COOKIE_SECURE = TLS
SECURE_HSTS_SECONDS = envint("EXITPOOL_HSTS_SECONDS", 0)  # sent on HTTPS responses only
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": f"django.contrib.auth.password_validation.{name}"}
    for name in (
        "UserAttributeSimilarityValidator",
        "MinimumLengthValidator",
        "CommonPasswordValidator",
        "NumericPasswordValidator",
    )
]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "server.fleet",
    "server.dashboard",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "server.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

DATABASES = {
    "default": dj_database_url.config(
        default=f"sqlite:///{DATA_DIR / 'exitpool.sqlite3'}", conn_max_age=600
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the dashboard read while a flush writes; busy timeout rides out short locks.
    DATABASES["default"]["OPTIONS"] = {
        # A transaction that reads then writes (an admin save, a flush) takes the write lock
        # up front: upgrading a read lock fails at once with "database is locked" when
        # another writer got in between, whatever the busy timeout.
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LANGUAGE_CODE = "en-us"
TIME_ZONE = os.environ.get("EXITPOOL_TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "static"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["stderr"], "level": os.environ.get("EXITPOOL_LOG_LEVEL", "INFO")},
    "loggers": {
        "django.channels.server": {"level": "WARNING"},
        "daphne": {"level": "WARNING"},
    },
}
