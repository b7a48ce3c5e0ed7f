"""First start: an admin account for a newcomer, and the banner that says where everything is.

``exitpool-server run`` on a database without any user account creates the
superuser ``admin`` with a random password and prints it in the banner. The
password exists only in this process's memory until it is hashed, so it can be
printed once and never again; later starts find the account and say how to log
in instead. ``EXITPOOL_ADMIN_PASSWORD`` chooses that password (then it is not
printed) and ``EXITPOOL_CREATE_ADMIN=0`` turns the whole thing off for
deployments that create their accounts themselves.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import IntegrityError

from server.config import ServerConfig

ADMIN_NAME = "admin"
PASSWORD_VARIABLE = "EXITPOOL_ADMIN_PASSWORD"
WILDCARD_HOSTS = ("0.0.0.0", "::", "")


@dataclass(frozen=True)
class AdminAccount:
    """What the banner says about admin accounts."""

    state: Literal["created", "exists", "missing"]
    password: str | None = None
    """The generated password of an account created just now; ``None`` in every other case."""


def ensure_first_admin() -> AdminAccount:
    """Create ``admin`` if the database has no user account at all (and creation is not off).

    Any existing account, even one that is not an admin, means someone has set
    accounts up already: nothing is created then.
    """
    users = get_user_model().objects
    if users.filter(is_superuser=True, is_active=True).exists():
        return AdminAccount("exists")
    if not settings.CREATE_FIRST_ADMIN or users.exists():
        return AdminAccount("missing")
    chosen = os.environ.get(PASSWORD_VARIABLE, "")
    if chosen:
        try:
            validate_password(chosen)
        except ValidationError as exc:
            raise ValueError(f"{PASSWORD_VARIABLE}: {' '.join(exc.messages)}") from None
    password = chosen or secrets.token_urlsafe(12)
    try:
        users.create_superuser(ADMIN_NAME, email="", password=password)
    except IntegrityError:  # another process made it between our check and now
        return AdminAccount("exists")
    return AdminAccount("created", None if chosen else password)


def banner(config: ServerConfig, admin: AdminAccount, command: str) -> str:
    """The start-up text: where the admin, dashboard, agents and proxy are, and how to begin.

    ``command`` is how to run ``exitpool-server`` again from here. Its first
    line, "Exitpool server ready", is what scripts and tests wait for.
    """
    web, websocket, proxy_host = _public_addresses(config)
    proxy_port = config.proxy_address[1]
    agent_url = f"{websocket}/ws/agent"
    lines = ["Exitpool server ready", f"  admin:      {web}/admin/"]
    if admin.state == "created" and admin.password is not None:
        lines += [
            f"              first admin account created: user {ADMIN_NAME},"
            f" password: {admin.password}",
            "              this password is shown only this once; change it with:"
            f"  {command} changepassword {ADMIN_NAME}",
        ]
    elif admin.state == "created":
        lines.append(
            f"              first admin account created: user {ADMIN_NAME},"
            f" with the password set in {PASSWORD_VARIABLE}"
        )
    elif admin.state == "exists":
        lines += [
            f"              log in with an admin account; another one: {command} createsuperuser",
            f"              forgotten password: {command} changepassword NAME",
        ]
    else:
        lines.append(f"              no admin account yet: {command} createsuperuser")
    lines += [
        f"  dashboard:  {web}/dashboard/",
        f"  agents:     {agent_url}",
        f'              a key:      {command} enrollkey --label "Berlin office"',
        f"              on the PC:  exitpool-agent --headless --server {agent_url} --key KEY",
        f"  proxy:      http://USER:PASSWORD@{proxy_host}:{proxy_port}",
        f"              a user:     {command} proxyuser NAME",
        f"  metrics:    {web}/metrics",
    ]
    if not settings.PUBLIC_URL and config.http_address[0] in WILDCARD_HOSTS:
        lines.append(
            "  (listening on every interface: from other machines use this machine's"
            " address instead of 127.0.0.1, or set EXITPOOL_PUBLIC_URL)"
        )
    return "\n".join(lines)


def _public_addresses(config: ServerConfig) -> tuple[str, str, str]:
    """Web base URL, WebSocket base URL and proxy host, as people and agents should use them."""
    if settings.PUBLIC_URL:
        web = settings.PUBLIC_URL
        proxy_host = _url_host(urlsplit(web).hostname or "")
    else:
        http_host, http_port = config.http_address
        web = f"http://{_url_host(http_host)}:{http_port}"
        proxy_host = _url_host(config.proxy_address[0])
    return web, "ws" + web.removeprefix("http"), proxy_host


def _url_host(host: str) -> str:
    if host in WILDCARD_HOSTS:
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host
