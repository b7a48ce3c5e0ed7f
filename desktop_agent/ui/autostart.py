"""Start the agent at login, the way each desktop expects it.

- Linux and the BSDs (freedesktop): ``$XDG_CONFIG_HOME/autostart/exitpool-agent.desktop``.
- Windows: the value ``Exitpool Agent`` in the current user's
  ``Software\\Microsoft\\Windows\\CurrentVersion\\Run`` key.
- macOS: ``~/Library/LaunchAgents/com.exitpool.agent.plist``.

All three are per-user and need no administrator rights. The Linux package
also starts the agent for every user from ``/etc/xdg/autostart``; there a
user's "off" is a ``Hidden=true`` file of the same name in their own folder,
and "on" removes that file. The registry sits
behind the small ``RunKey`` protocol so tests on any OS can use an in-memory
one; the real one imports ``winreg`` only when used. This module never imports
Qt.
"""

from __future__ import annotations

import os
import platform
import plistlib
import subprocess
import sys
from pathlib import Path
from typing import Protocol

APP_NAME = "Exitpool Agent"
"""The entry's name in the Windows Run key and the autostart file."""

DESKTOP_FILE = "exitpool-agent.desktop"
LAUNCH_AGENT_LABEL = "com.exitpool.agent"
RUN_KEY_PATH = r"Software\Microsoft\Windows\CurrentVersion\Run"

# Characters that make an Exec argument need quotes (Desktop Entry spec, "The Exec key").
_EXEC_RESERVED = frozenset(" \t\n\"'\\><~|&;$*?#()`")
# Inside quotes these four are escaped with a backslash.
_EXEC_QUOTED_ESCAPES = frozenset('"`$\\')
# Then the whole value is escaped as a desktop-entry string.
_STRING_ESCAPES = {"\\": "\\\\", "\n": "\\n", "\t": "\\t", "\r": "\\r"}


class RunKey(Protocol):
    """The values of one registry key (the Windows Run key, or an in-memory stand-in)."""

    def get(self, name: str) -> str | None: ...

    def set(self, name: str, value: str) -> None: ...

    def delete(self, name: str) -> None: ...


class WindowsRunKey:
    """``HKEY_CURRENT_USER\\Software\\Microsoft\\Windows\\CurrentVersion\\Run`` via ``winreg``."""

    def get(self, name: str) -> str | None:
        if sys.platform != "win32":
            raise OSError("the Windows registry exists only on Windows")
        import winreg

        try:
            with winreg.OpenKey(winreg.HKEY_CURRENT_USER, RUN_KEY_PATH) as key:
                value, _kind = winreg.QueryValueEx(key, name)
        except FileNotFoundError:
            return None
        return str(value)

    def set(self, name: str, value: str) -> None:
        if sys.platform != "win32":
            raise OSError("the Windows registry exists only on Windows")
        import winreg

        with winreg.CreateKeyEx(
            winreg.HKEY_CURRENT_USER, RUN_KEY_PATH, 0, winreg.KEY_SET_VALUE
        ) as key:
            winreg.SetValueEx(key, name, 0, winreg.REG_SZ, value)

    def delete(self, name: str) -> None:
        if sys.platform != "win32":
            raise OSError("the Windows registry exists only on Windows")
        import winreg

        try:
            with winreg.OpenKey(
                winreg.HKEY_CURRENT_USER, RUN_KEY_PATH, 0, winreg.KEY_SET_VALUE
            ) as key:
                winreg.DeleteValue(key, name)
        except FileNotFoundError:
            pass


class Autostart:
    """Turns "start at login" on and off for ``command`` on this (or the given) OS.

    ``system`` is a ``platform.system()`` name (``"Linux"``, ``"Windows"``,
    ``"Darwin"``, ``"FreeBSD"`` …); anything that is neither Windows nor macOS
    gets the freedesktop autostart file. ``home`` replaces the user's home
    directory and ``registry`` the Windows Run key, both for tests.
    """

    def __init__(
        self,
        command: list[str],
        *,
        system: str | None = None,
        home: Path | None = None,
        registry: RunKey | None = None,
        xdg_config_dirs: list[Path] | None = None,
    ) -> None:
        if not command:
            raise ValueError("the autostart command is empty")
        self.command = list(command)
        name = (system or platform.system()).lower()
        self.kind = (
            "windows" if name in ("windows", "win32") else "macos" if name == "darwin" else "xdg"
        )
        self.home = home if home is not None else Path.home()
        self._registry = registry
        self.xdg_config_dirs = (
            xdg_config_dirs if xdg_config_dirs is not None else _xdg_config_dirs()
        )

    @property
    def path(self) -> Path:
        """The file written on Linux and macOS (meaningless on Windows)."""
        if self.kind == "macos":
            return self.home / "Library" / "LaunchAgents" / f"{LAUNCH_AGENT_LABEL}.plist"
        config = os.environ.get("XDG_CONFIG_HOME", "")
        base = Path(config) if os.path.isabs(config) else self.home / ".config"
        return base / "autostart" / DESKTOP_FILE

    @property
    def system_entry(self) -> Path | None:
        """The all-users entry a package installed (``/etc/xdg/autostart``), if any.

        The .deb starts the agent for everyone this way; a user turns it off
        with a ``Hidden=true`` file of the same name in their own autostart
        folder, which the freedesktop spec lets win over the system one.
        """
        if self.kind != "xdg":
            return None
        for folder in self.xdg_config_dirs:
            entry = folder / "autostart" / DESKTOP_FILE
            if entry.is_file():
                return entry
        return None

    @property
    def registry(self) -> RunKey:
        if self._registry is None:
            self._registry = WindowsRunKey()
        return self._registry

    def is_enabled(self) -> bool:
        """Whether the agent starts at login (false too if the user turned it off elsewhere)."""
        if self.kind == "windows":
            return self.registry.get(APP_NAME) is not None
        if self.kind == "macos":
            try:
                plist = plistlib.loads(self.path.read_bytes())
            except (OSError, plistlib.InvalidFileException, ValueError):
                return False
            return isinstance(plist, dict) and not plist.get("Disabled", False)
        system = self.system_entry
        path = self.path if self.path.exists() or system is None else system
        try:
            entry = _desktop_entry_keys(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError):
            return False
        return (
            entry.get("Hidden", "false") != "true"
            and entry.get("X-GNOME-Autostart-enabled", "true") != "false"
        )

    def enable(self) -> None:
        """Start ``command`` at every login from now on (rewrites an older entry)."""
        if self.kind == "windows":
            self.registry.set(APP_NAME, subprocess.list2cmdline(self.command))
            return
        if self.kind == "macos":
            content = plistlib.dumps(
                {
                    "Label": LAUNCH_AGENT_LABEL,
                    "ProgramArguments": self.command,
                    "RunAtLoad": True,
                    "ProcessType": "Interactive",
                }
            )
        elif self.system_entry is not None:  # the package's entry starts it: drop the opt-out
            self.path.unlink(missing_ok=True)
            return
        else:
            content = desktop_entry(self.command).encode("utf-8")
        self._write(content)

    def disable(self) -> None:
        """Stop starting at login; nothing happens when it was not enabled."""
        if self.kind == "windows":
            self.registry.delete(APP_NAME)
        elif self.system_entry is not None:
            self._write(desktop_entry(self.command, hidden=True).encode("utf-8"))
        else:
            self.path.unlink(missing_ok=True)

    def _write(self, content: bytes) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        tmp.write_bytes(content)
        os.replace(tmp, self.path)

    def where(self) -> str:
        """What ``enable`` writes, in words for the settings dialog's tooltip."""
        if self.kind == "windows":
            return f'the "{APP_NAME}" value in HKEY_CURRENT_USER\\{RUN_KEY_PATH}'
        if self.kind == "macos":
            return f"the login item {self.path}"
        system = self.system_entry
        if system is not None:
            return f"the autostart entry {system}, turned off for you by {self.path}"
        return f"the autostart entry {self.path}"


def desktop_entry(command: list[str], hidden: bool = False) -> str:
    """The freedesktop autostart file that runs ``command`` (``hidden``: the user's opt-out)."""
    exec_line = " ".join(exec_argument(argument) for argument in command)
    return (
        "[Desktop Entry]\n"
        "Type=Application\n"
        f"Name={APP_NAME}\n"
        "Comment=Share this PC's internet connection with an Exitpool server\n"
        f"Exec={exec_line}\n"
        "Icon=exitpool-agent\n"
        "Terminal=false\n"
        f"X-GNOME-Autostart-enabled={'false' if hidden else 'true'}\n"
        + ("Hidden=true\n" if hidden else "")
    )


def exec_argument(argument: str) -> str:
    """One argument as the Desktop Entry spec wants it in an ``Exec`` value.

    ``%`` doubles (it starts field codes); an argument with a reserved
    character goes in double quotes with ``"``, `````, ``$`` and ``\\``
    backslash-escaped; then the value gets the string escapes (``\\`` → ``\\\\``),
    which is why a literal backslash ends up as four.
    """
    argument = argument.replace("%", "%%")
    if argument and not _EXEC_RESERVED.intersection(argument):
        return argument
    inner = "".join(f"\\{c}" if c in _EXEC_QUOTED_ESCAPES else c for c in argument)
    return "".join(_STRING_ESCAPES.get(c, c) for c in f'"{inner}"')


def agent_command() -> list[str]:
    """The command that starts this app the way it is installed.

    A frozen build (PyInstaller) is its own executable; an installed package has
    the ``exitpool-agent`` script beside its Python; otherwise run the module.
    """
    if getattr(sys, "frozen", False):
        return [sys.executable]
    scripts = Path(sys.executable).parent  # not resolved: a venv's python is a symlink
    for name in ("exitpool-agent", "exitpool-agent.exe"):
        if (scripts / name).is_file():
            return [str(scripts / name)]
    return [sys.executable, "-m", "desktop_agent.cli"]


def _xdg_config_dirs() -> list[Path]:
    """``$XDG_CONFIG_DIRS`` (default ``/etc/xdg``): where all-users autostart entries live."""
    value = os.environ.get("XDG_CONFIG_DIRS", "") or "/etc/xdg"
    return [Path(part) for part in value.split(":") if os.path.isabs(part)]


def _desktop_entry_keys(text: str) -> dict[str, str]:
    """The keys of a desktop file's ``[Desktop Entry]`` group (enough to read two booleans)."""
    keys: dict[str, str] = {}
    group = ""
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("[") and line.endswith("]"):
            group = line[1:-1]
        elif group == "Desktop Entry" and "=" in line and not line.startswith("#"):
            key, _, value = line.partition("=")
            keys[key.strip()] = value.strip()
    return keys
