"""The installer's pre-configuration: ``exitpool-agent.json`` from the admin page.

IT downloads one file per fleet from the admin's "Add office PCs" page and
puts it where the agent looks (beside the Windows installer, in ``/etc`` on
Linux, beside the app on a Mac), so thirty PCs join without anyone typing a
server address. The file holds the server's agent URL, an enrollment key and
an optional name prefix::

    {"server": "wss://exitpool.example.com/ws/agent",
     "enrollment_key": "epk_...", "name_prefix": "office-"}

Only a PC that has not joined yet uses it; after that, the agent's own
settings and credential rule. This module never imports Qt.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import platformdirs

from desktop_agent.engine.client import websocket_url

log = logging.getLogger(__name__)

PRECONFIG_FILE = "exitpool-agent.json"
MAX_FILE_BYTES = 64 * 1024
"""A pre-configuration is a few hundred bytes; anything bigger is not one."""
MAX_NAME_PREFIX = 40
"""The prefix leaves room for the host name within the server's 100-character names."""


class PreconfigError(ValueError):
    """The file is there but cannot be used; the message names the file and the problem."""


@dataclass(frozen=True)
class Preconfig:
    server: str
    enrollment_key: str
    name_prefix: str
    source: Path
    """Where it was read from, shown to the owner before they agree."""

    def agent_name(self, host: str | None = None) -> str:
        """``office-`` + this PC's host name: what the admin sees in the agent list."""
        return f"{self.name_prefix}{host or socket.gethostname()}"


def load(path: Path) -> Preconfig:
    """Read and check one file; :class:`PreconfigError` says what is wrong with it."""
    try:
        with path.open("rb") as file:
            raw = file.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise PreconfigError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if len(raw) > MAX_FILE_BYTES:
        raise PreconfigError(f"{path} is larger than {MAX_FILE_BYTES} bytes")
    try:
        data: Any = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PreconfigError(f"{path} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise PreconfigError(f"{path} must hold a JSON object")
    server, key, prefix = data.get("server"), data.get("enrollment_key"), data.get("name_prefix")
    if not isinstance(server, str) or not server.strip():
        raise PreconfigError(f'{path} has no "server"')
    try:
        websocket_url(server)
    except ValueError as exc:
        raise PreconfigError(f"{path}: {exc}") from exc
    if not isinstance(key, str) or not key.strip():
        raise PreconfigError(f'{path} has no "enrollment_key"')
    if prefix is None:
        prefix = ""
    if not isinstance(prefix, str) or len(prefix) > MAX_NAME_PREFIX:
        raise PreconfigError(f'{path}: "name_prefix" must be text of at most {MAX_NAME_PREFIX}')
    return Preconfig(server.strip(), key.strip(), prefix.strip(), path)


def search_paths(config_dir: Path, include_downloads: bool = False) -> list[Path]:
    """Where the file may be, most specific first (installer/README.md lists them too)."""
    places = [config_dir, *_beside_executable(), _system_dir()]
    if include_downloads:
        places.append(Path(platformdirs.user_downloads_dir()))
    return [place / PRECONFIG_FILE for place in places]


def locate(
    explicit: Path | None, config_dir: Path, include_downloads: bool = False
) -> Preconfig | None:
    """``--config FILE`` when given (its problems are the caller's to show), else :func:`find`."""
    return load(explicit) if explicit is not None else find(config_dir, include_downloads)


def find(config_dir: Path, include_downloads: bool = False) -> Preconfig | None:
    """The first usable file; a broken one is logged and skipped, so the next place still counts."""
    for path in search_paths(config_dir, include_downloads):
        if not path.is_file():
            continue
        try:
            found = load(path)
        except PreconfigError as exc:
            log.warning("ignoring the pre-configuration: %s", exc)
            continue
        log.info("pre-configuration found in %s", path)
        return found
    return None


def _beside_executable() -> list[Path]:
    """The installed bundle's folder; for a macOS app, the folder that holds the ``.app``."""
    if not getattr(sys, "frozen", False):
        return []
    folder = Path(sys.executable).resolve().parent
    if sys.platform == "darwin" and folder.name == "MacOS" and folder.parent.name == "Contents":
        return [folder.parent.parent.parent]
    return [folder]


def _system_dir() -> Path:
    if sys.platform == "win32":
        return Path(os.environ.get("PROGRAMDATA", r"C:\ProgramData")) / "Exitpool"
    if sys.platform == "darwin":
        return Path("/Library/Application Support/Exitpool")
    return Path("/etc/exitpool-agent")
