"""What a proxy username asks for: ``NAME``, ``NAME-session-ID``, ``NAME-agent-AGENT``.

Bright Data style options ride in the username so every client that can set a
proxy URL can use them. Option values run to the next option marker, so agent
names with dashes (``NAME-agent-office-pc-7``) work.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_OPTION = re.compile(r"-(session|agent)-")


@dataclass(frozen=True, slots=True)
class Route:
    user: str
    session: str | None = None
    agent: str | None = None


def parse_username(username: str) -> Route:
    """Split a proxy username into the user's name and its routing options."""
    parts = _OPTION.split(username)
    options: dict[str, str] = {}
    for key, value in zip(parts[1::2], parts[2::2], strict=True):
        if value:
            options[key] = value
    return Route(user=parts[0], session=options.get("session"), agent=options.get("agent"))
