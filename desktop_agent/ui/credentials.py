"""Where the agent keeps its credential: the OS keyring, or a private file when there is none.

The credential (one secret token per server URL) is what lets this PC carry
traffic, so it belongs in the system keyring (Windows Credential Manager, the
macOS Keychain, SecretService/KWallet on Linux). Some desktops have no keyring,
or one that fails at runtime (no D-Bus session, a locked store that cannot be
unlocked); the agent must still work there, so it then keeps the credential in
a JSON file only the user can read. Both stores fit the engine's
``CredentialStore`` protocol (``get``/``set``) and add ``delete`` and a
``description`` the settings dialog shows.

This module never imports Qt: the engine and the headless agent may use it.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Protocol

import keyring
import keyring.errors
from keyring.backend import KeyringBackend
from keyring.backends import chainer

log = logging.getLogger(__name__)

SERVICE = "exitpool-agent"
"""The keyring service name; the username is the server URL."""

CREDENTIALS_FILE = "credentials.json"
"""The fallback file's name inside the agent's config dir."""

# Display names for the keyring backends people meet, keyed by the backend's module name.
_BACKEND_NAMES = {
    "SecretService": "SecretService",
    "kwallet": "KWallet",
    "Windows": "Windows Credential Manager",
    "macOS": "macOS Keychain",
}


class CredentialStore(Protocol):
    """What the tray app needs from a store.

    A superset of the engine's ``CredentialStore`` (``get`` and ``set``), so any
    store from ``open_store`` can be handed to the engine as it is.
    """

    @property
    def description(self) -> str: ...

    def get(self, server_url: str) -> str | None: ...

    def set(self, server_url: str, credential: str) -> None: ...

    def delete(self, server_url: str) -> None: ...


class FileStore:
    """Credentials in ``<config_dir>/credentials.json``, mode 0600, replaced atomically.

    Every call reads the file again, so two instances (or two processes) over the
    same directory see each other's writes. An unreadable file counts as empty:
    the agent then asks for an enrollment key again rather than failing to start.
    """

    def __init__(self, config_dir: Path) -> None:
        self.path = Path(config_dir) / CREDENTIALS_FILE

    @property
    def description(self) -> str:
        return f"a file readable only by you: {self.path}"

    def get(self, server_url: str) -> str | None:
        value = self._load().get(server_url)
        return value if isinstance(value, str) and value else None

    def set(self, server_url: str, credential: str) -> None:
        servers = self._load()
        servers[server_url] = credential
        self._save(servers)

    def delete(self, server_url: str) -> None:
        servers = self._load()
        if servers.pop(server_url, None) is not None:
            self._save(servers)

    def _load(self) -> dict[str, object]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as error:
            log.warning("ignoring unreadable credential file %s: %s", self.path, error)
            return {}
        servers = data.get("servers") if isinstance(data, dict) else None
        return dict(servers) if isinstance(servers, dict) else {}

    def _save(self, servers: dict[str, object]) -> None:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".credentials-")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump({"servers": servers}, handle, indent=2)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(tmp, 0o600)  # mkstemp already uses 0600; say it where it matters
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


class KeyringStore:
    """Credentials in the OS keyring (service ``exitpool-agent``, username = server URL).

    With a ``fallback`` file store, a keyring that fails on use (any
    ``KeyringError``) is given up for the rest of this instance's life and the
    fallback takes over, so a keyring that breaks mid-session never stops the
    agent. A credential found only in the fallback file (written while there was
    no keyring) is still read, and moves into the keyring at the next ``set``.
    Without a fallback, keyring errors propagate.
    """

    def __init__(
        self, backend: KeyringBackend | None = None, fallback: FileStore | None = None
    ) -> None:
        self.backend = backend if backend is not None else keyring.get_keyring()
        self.fallback = fallback
        self._failed = False

    @property
    def description(self) -> str:
        if self._failed and self.fallback is not None:
            return self.fallback.description
        return f"the system keyring ({backend_name(self.backend)})"

    def get(self, server_url: str) -> str | None:
        if not self._failed:
            try:
                value = self.backend.get_password(SERVICE, server_url)
            except keyring.errors.KeyringError as error:
                self._give_up(error)
            else:
                if value:
                    return value
        return self.fallback.get(server_url) if self.fallback is not None else None

    def set(self, server_url: str, credential: str) -> None:
        if not self._failed:
            try:
                self.backend.set_password(SERVICE, server_url, credential)
            except keyring.errors.KeyringError as error:
                self._give_up(error)
            else:
                if self.fallback is not None:
                    self.fallback.delete(server_url)  # no second copy in a file
                return
        if self.fallback is not None:
            self.fallback.set(server_url, credential)

    def delete(self, server_url: str) -> None:
        if not self._failed:
            try:
                self.backend.delete_password(SERVICE, server_url)
            except keyring.errors.PasswordDeleteError:
                pass  # nothing stored: forgetting it is already done
            except keyring.errors.KeyringError as error:
                self._give_up(error)
        if self.fallback is not None:
            self.fallback.delete(server_url)

    def _give_up(self, error: keyring.errors.KeyringError) -> None:
        if self.fallback is None:
            raise error
        log.warning(
            "the system keyring failed (%s); keeping the credential in %s instead",
            error,
            self.fallback.path,
        )
        self._failed = True


def backend_name(backend: KeyringBackend) -> str:
    """A short display name for a keyring backend, e.g. ``SecretService``."""
    if isinstance(backend, chainer.ChainerBackend) and backend.backends:
        backend = backend.backends[0]  # the one that is asked first
    module = type(backend).__module__.rpartition(".")[2]
    return _BACKEND_NAMES.get(module, str(type(backend).name))


def usable_backend(backend: KeyringBackend) -> bool:
    """Whether a backend actually stores secrets.

    keyring hands out ``fail.Keyring`` (raises on use), ``null.Keyring``
    (silently forgets) or a ``ChainerBackend`` with nothing to chain (silently
    forgets) when the system has no keyring; all of these have priority <= 0.
    """
    if isinstance(backend, chainer.ChainerBackend):
        return bool(backend.backends)
    try:
        return float(backend.priority) > 0
    except Exception:  # a backend's priority raises when it is not viable here
        return False


def open_store(config_dir: Path) -> CredentialStore:
    """The store to use: the system keyring if there is a usable one, else the private file."""
    fallback = FileStore(config_dir)
    backend = keyring.get_keyring()
    if usable_backend(backend):
        return KeyringStore(backend, fallback=fallback)
    log.info("no usable system keyring (%s); using %s", backend, fallback.path)
    return fallback
