"""Which agents run software older than the server asks for (``EXITPOOL_MIN_AGENT_VERSION``).

An old agent keeps working — the protocol version is checked separately at
HELLO — but the admin should know which PCs still need the new installer.
"""

from __future__ import annotations

from collections.abc import Iterable

from packaging.version import InvalidVersion, Version


def minimum() -> str:
    """The running server's minimum (or the environment's, outside ``exitpool-server run``)."""
    from server import live  # live imports the accounting, which imports the models

    return live.config().min_agent_version


def is_outdated(agent_version: str, least: str) -> bool:
    """Older than ``least``; an agent that told no version, or a garbled one, is not flagged."""
    try:
        return Version(agent_version) < Version(least)
    except InvalidVersion:
        return False


def count_outdated(versions: Iterable[tuple[str, int]], least: str) -> int:
    """Agents older than ``least``, from (version, how many agents run it) pairs."""
    return sum(count for version, count in versions if is_outdated(version, least))
