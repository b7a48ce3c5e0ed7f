"""The credential store: the system keyring when there is one, a private file when there is not.

The keyrings here are real ``keyring`` backends kept in memory, installed with
``keyring.set_keyring`` the way a user's keyringrc would choose one.
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Iterator
from pathlib import Path

import keyring
import keyring.errors
import pytest
from keyring.backend import KeyringBackend
from keyring.backends import SecretService, Windows, chainer, fail, kwallet, macOS, null

from desktop_agent.ui.credentials import (
    CREDENTIALS_FILE,
    SERVICE,
    FileStore,
    KeyringStore,
    backend_name,
    open_store,
    usable_backend,
)

URL = "wss://pool.example.com/ws/agent"
OTHER_URL = "wss://other.example.com/ws/agent"


class MemoryKeyring(KeyringBackend):
    """A working keyring that keeps secrets in a dict."""

    priority = 1

    def __init__(self) -> None:
        super().__init__()
        self.secrets: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.secrets.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.secrets[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        if self.secrets.pop((service, username), None) is None:
            raise keyring.errors.PasswordDeleteError("not found")


class LockedKeyring(KeyringBackend):
    """A keyring that looks fine but fails on every use, like a store that cannot be unlocked."""

    priority = 1

    def get_password(self, service: str, username: str) -> str | None:
        raise keyring.errors.KeyringLocked("the collection is locked")

    def set_password(self, service: str, username: str, password: str) -> None:
        raise keyring.errors.KeyringLocked("the collection is locked")

    def delete_password(self, service: str, username: str) -> None:
        raise keyring.errors.KeyringLocked("the collection is locked")


# keyring registers every backend class it sees and may pick one as the process-wide default;
# these two exist only for the tests that install them explicitly.
KeyringBackend._classes.difference_update({MemoryKeyring, LockedKeyring})  # type: ignore[attr-defined]


@pytest.fixture
def installed() -> Iterator[list[KeyringBackend]]:
    """Install a keyring for one test (append it to the list) and restore the previous one."""
    previous = keyring.get_keyring()
    chosen: list[KeyringBackend] = []
    yield chosen
    keyring.set_keyring(previous)


def install(installed: list[KeyringBackend], backend: KeyringBackend) -> None:
    installed.append(backend)
    keyring.set_keyring(backend)


def test_it_reads_back_what_it_wrote_in_the_file_per_server(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    assert store.get(URL) is None
    store.set(URL, "secret-1")
    store.set(OTHER_URL, "secret-2")
    assert store.get(URL) == "secret-1"
    assert store.get(OTHER_URL) == "secret-2"
    store.set(URL, "secret-3")
    assert store.get(URL) == "secret-3"


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permissions")
def test_it_keeps_the_file_readable_only_by_its_owner(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "config")
    store.set(URL, "secret")
    assert stat.S_IMODE(os.stat(store.path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(store.path.parent).st_mode) == 0o700


def test_it_leaves_no_temporary_file_behind(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    store.set(URL, "secret")
    store.set(OTHER_URL, "secret")
    assert [p.name for p in tmp_path.iterdir()] == [CREDENTIALS_FILE]


def test_it_reads_in_one_file_store_what_another_wrote(tmp_path: Path) -> None:
    FileStore(tmp_path).set(URL, "secret")
    reader = FileStore(tmp_path)
    assert reader.get(URL) == "secret"
    FileStore(tmp_path).delete(URL)
    assert reader.get(URL) is None


def test_it_forgets_a_server_in_the_file_and_ignores_unknown_ones(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    store.set(URL, "secret-1")
    store.set(OTHER_URL, "secret-2")
    store.delete(URL)
    store.delete("wss://never-seen.example.com/")
    assert store.get(URL) is None
    assert store.get(OTHER_URL) == "secret-2"


def test_it_treats_an_unreadable_file_as_empty_and_overwrites_it(tmp_path: Path) -> None:
    (tmp_path / CREDENTIALS_FILE).write_text("{not json")
    store = FileStore(tmp_path)
    assert store.get(URL) is None
    store.set(URL, "secret")
    assert FileStore(tmp_path).get(URL) == "secret"


def test_it_describes_the_file_with_its_path(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    assert store.description == f"a file readable only by you: {tmp_path / CREDENTIALS_FILE}"


def test_it_keeps_the_credential_in_the_keyring_and_not_in_a_file(
    tmp_path: Path, installed: list[KeyringBackend]
) -> None:
    backend = MemoryKeyring()
    install(installed, backend)
    store = open_store(tmp_path)
    assert isinstance(store, KeyringStore)
    store.set(URL, "secret")
    assert backend.secrets == {(SERVICE, URL): "secret"}
    assert store.get(URL) == "secret"
    assert open_store(tmp_path).get(URL) == "secret"
    assert not (tmp_path / CREDENTIALS_FILE).exists()
    assert store.description == "the system keyring (test credentials MemoryKeyring)"


def test_it_forgets_a_server_in_the_keyring_and_ignores_unknown_ones(
    tmp_path: Path, installed: list[KeyringBackend]
) -> None:
    backend = MemoryKeyring()
    install(installed, backend)
    store = open_store(tmp_path)
    store.set(URL, "secret")
    store.delete(URL)
    store.delete(OTHER_URL)
    assert store.get(URL) is None
    assert backend.secrets == {}


@pytest.mark.parametrize(
    ("backend", "name"),
    [
        (SecretService.Keyring, "SecretService"),
        (kwallet.DBusKeyring, "KWallet"),
        (Windows.WinVaultKeyring, "Windows Credential Manager"),
        (macOS.Keyring, "macOS Keychain"),
    ],
)
def test_it_names_the_keyrings_people_know(backend: type[KeyringBackend], name: str) -> None:
    assert backend_name(backend()) == name


@pytest.mark.parametrize(
    "backend", [fail.Keyring(), null.Keyring()], ids=["fail-keyring", "null-keyring"]
)
def test_it_uses_the_file_when_the_system_has_no_keyring(
    tmp_path: Path, installed: list[KeyringBackend], backend: KeyringBackend
) -> None:
    install(installed, backend)
    store = open_store(tmp_path)
    assert isinstance(store, FileStore)
    store.set(URL, "secret")
    assert FileStore(tmp_path).get(URL) == "secret"


def test_it_uses_the_file_when_the_keyring_chain_is_empty(
    tmp_path: Path, installed: list[KeyringBackend], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(chainer.ChainerBackend, "backends", [])
    backend = chainer.ChainerBackend()
    assert not usable_backend(backend)
    install(installed, backend)
    assert isinstance(open_store(tmp_path), FileStore)


def test_it_falls_back_to_the_file_when_the_keyring_fails_on_use(
    tmp_path: Path, installed: list[KeyringBackend]
) -> None:
    install(installed, LockedKeyring())
    store = open_store(tmp_path)
    assert isinstance(store, KeyringStore)
    assert store.description.startswith("the system keyring")
    store.set(URL, "secret")
    assert FileStore(tmp_path).get(URL) == "secret"
    assert store.get(URL) == "secret"
    assert store.description == FileStore(tmp_path).description
    store.delete(URL)
    assert FileStore(tmp_path).get(URL) is None


def test_it_raises_keyring_errors_when_it_has_no_fallback() -> None:
    store = KeyringStore(LockedKeyring())
    with pytest.raises(keyring.errors.KeyringLocked):
        store.get(URL)


def test_it_moves_a_credential_from_the_file_into_a_keyring_that_appeared(
    tmp_path: Path, installed: list[KeyringBackend]
) -> None:
    FileStore(tmp_path).set(URL, "from-the-file")
    backend = MemoryKeyring()
    install(installed, backend)
    store = open_store(tmp_path)
    assert store.get(URL) == "from-the-file"
    store.set(URL, "renewed")
    assert backend.secrets == {(SERVICE, URL): "renewed"}
    assert FileStore(tmp_path).get(URL) is None
