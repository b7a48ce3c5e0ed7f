"""The agent's durable state: its identity per server, kept in the user's config dir.

Written atomically (temporary file, then rename) with owner-only permissions:
the credential is what lets this PC carry traffic, so it is treated like a
password. The engine reads and writes the credential only through a
:class:`CredentialStore`; the headless agent's default store keeps it in this
same file, the tray app hands the engine one backed by the OS keyring.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Protocol

STATE_FILE = "agent-state.json"


class AgentState:
    """Per-server entries of ``agent-state.json``: credential (by default), id and name."""

    def __init__(self, config_dir: Path) -> None:
        self.path = Path(config_dir) / STATE_FILE

    def _load(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text())
        except (FileNotFoundError, ValueError):
            return {"servers": {}}
        if not isinstance(data, dict) or not isinstance(data.get("servers"), dict):
            return {"servers": {}}  # unreadable state: start over (the agent re-enrolls)
        return data

    def for_server(self, server_url: str) -> dict[str, Any]:
        entry = self._load()["servers"].get(server_url)
        return dict(entry) if isinstance(entry, dict) else {}

    def credential(self, server_url: str) -> str | None:
        value = self.for_server(server_url).get("credential")
        return value if isinstance(value, str) and value else None

    def update(self, server_url: str, **values: Any) -> None:
        data = self._load()
        entry = data["servers"].get(server_url)
        data["servers"][server_url] = {**(entry if isinstance(entry, dict) else {}), **values}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".state-")
        try:
            with os.fdopen(fd, "w") as handle:
                json.dump(data, handle, indent=2)
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


class CredentialStore(Protocol):
    """Where the engine keeps the agent's credential, one per server URL.

    ``get`` answers None (or an empty string) when there is none; ``set`` keeps a new
    one, replacing the old. The server URL is the engine's WebSocket URL.
    """

    def get(self, server_url: str) -> str | None: ...

    def set(self, server_url: str, credential: str) -> None: ...


class StateFileCredentials:
    """The default :class:`CredentialStore`: the credential in ``agent-state.json``."""

    def __init__(self, state: AgentState) -> None:
        self.state = state

    def get(self, server_url: str) -> str | None:
        return self.state.credential(server_url)

    def set(self, server_url: str, credential: str) -> None:
        self.state.update(server_url, credential=credential)
