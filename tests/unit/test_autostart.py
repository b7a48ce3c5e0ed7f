"""Start at login on Linux (autostart file), Windows (Run key) and macOS (LaunchAgent).

Every OS is tested on every OS: the home directory is a temporary one and the
Windows registry an in-memory ``RunKey``.
"""

from __future__ import annotations

import plistlib
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from desktop_agent.ui.autostart import (
    APP_NAME,
    Autostart,
    WindowsRunKey,
    agent_command,
    desktop_entry,
    exec_argument,
)

COMMAND = ["/opt/exitpool/bin/exitpool-agent"]
SPACED_COMMAND = [r"C:\Program Files\Exitpool\exitpool-agent.exe", "--config-dir", r"C:\Users\a b"]


class MemoryRunKey:
    def __init__(self) -> None:
        self.values: dict[str, str] = {}

    def get(self, name: str) -> str | None:
        return self.values.get(name)

    def set(self, name: str, value: str) -> None:
        self.values[name] = value

    def delete(self, name: str) -> None:
        self.values.pop(name, None)


@pytest.fixture(autouse=True)
def no_xdg_config_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """This machine's own ``/etc/xdg`` never leaks in: no system entry unless a test makes one."""
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    monkeypatch.setenv("XDG_CONFIG_DIRS", str(tmp_path / "no-system-config"))


def system_entry(tmp_path: Path) -> Path:
    """The entry the .deb installs in ``/etc/xdg/autostart``, under a temporary root."""
    entry = tmp_path / "etc" / "xdg" / "autostart" / "exitpool-agent.desktop"
    entry.parent.mkdir(parents=True)
    entry.write_text(desktop_entry(["/opt/exitpool-agent/exitpool-agent"]))
    return entry


def test_it_writes_a_freedesktop_autostart_file_and_removes_it(tmp_path: Path) -> None:
    autostart = Autostart(COMMAND, system="Linux", home=tmp_path)
    assert not autostart.is_enabled()
    autostart.enable()
    path = tmp_path / ".config" / "autostart" / "exitpool-agent.desktop"
    assert autostart.path == path
    text = path.read_text()
    assert "Exec=/opt/exitpool/bin/exitpool-agent\n" in text
    assert "X-GNOME-Autostart-enabled=true\n" in text
    assert autostart.is_enabled()
    assert autostart.where() == f"the autostart entry {path}"
    autostart.disable()
    assert not path.exists()
    assert not autostart.is_enabled()


def test_it_turns_the_packages_all_users_entry_off_for_one_user_only(tmp_path: Path) -> None:
    entry = system_entry(tmp_path)
    home = tmp_path / "home"
    autostart = Autostart(COMMAND, system="Linux", home=home, xdg_config_dirs=[entry.parents[1]])
    assert autostart.system_entry == entry
    assert autostart.is_enabled()  # installed means started at login
    autostart.disable()
    opt_out = home / ".config" / "autostart" / "exitpool-agent.desktop"
    assert "Hidden=true\n" in opt_out.read_text()
    assert not autostart.is_enabled()
    assert entry.exists()  # the package's file is not the user's to delete
    assert autostart.where() == f"the autostart entry {entry}, turned off for you by {opt_out}"
    autostart.enable()
    assert not opt_out.exists()  # no second entry: the package's one starts it
    assert autostart.is_enabled()


def test_it_reads_xdg_config_dirs_for_the_all_users_entry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    entry = system_entry(tmp_path)
    monkeypatch.setenv(
        "XDG_CONFIG_DIRS", f"relative/ignored:{tmp_path / 'none'}:{entry.parents[1]}"
    )
    assert Autostart(COMMAND, system="Linux", home=tmp_path).system_entry == entry
    assert Autostart(COMMAND, system="Darwin", home=tmp_path).system_entry is None


def test_it_follows_xdg_config_home_when_it_is_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    assert Autostart(COMMAND, system="Linux", home=tmp_path).path == (
        tmp_path / "cfg" / "autostart" / "exitpool-agent.desktop"
    )
    monkeypatch.setenv("XDG_CONFIG_HOME", "relative/cfg")  # the spec says: ignore it
    assert Autostart(COMMAND, system="Linux", home=tmp_path).path == (
        tmp_path / ".config" / "autostart" / "exitpool-agent.desktop"
    )


def test_it_uses_the_freedesktop_file_on_the_bsds(tmp_path: Path) -> None:
    autostart = Autostart(COMMAND, system="FreeBSD", home=tmp_path)
    autostart.enable()
    assert (tmp_path / ".config" / "autostart" / "exitpool-agent.desktop").is_file()


@pytest.mark.parametrize("switch_off", ["X-GNOME-Autostart-enabled=false", "Hidden=true"])
def test_it_is_off_when_the_desktop_switched_the_entry_off(tmp_path: Path, switch_off: str) -> None:
    autostart = Autostart(COMMAND, system="Linux", home=tmp_path)
    autostart.enable()
    text = autostart.path.read_text().replace("X-GNOME-Autostart-enabled=true\n", "")
    autostart.path.write_text(text + switch_off + "\n")
    assert not autostart.is_enabled()
    autostart.enable()
    assert autostart.is_enabled()


def test_it_quotes_exec_arguments_as_the_desktop_entry_spec_says() -> None:
    assert exec_argument("/usr/bin/exitpool-agent") == "/usr/bin/exitpool-agent"
    assert exec_argument("/opt/Exitpool Agent/run") == '"/opt/Exitpool Agent/run"'
    assert exec_argument("") == '""'
    assert exec_argument("100%") == "100%%"
    assert exec_argument('say "hi" $HOME `x`') == r'"say \\"hi\\" \\$HOME \\`x\\`"'
    assert exec_argument(r"C:\dir") == r'"C:\\\\dir"'  # four backslashes for one


@pytest.mark.skipif(not shutil.which("desktop-file-validate"), reason="desktop-file-utils")
def test_it_writes_an_autostart_file_that_desktop_file_validate_accepts(tmp_path: Path) -> None:
    path = tmp_path / "exitpool-agent.desktop"
    path.write_text(desktop_entry(["/opt/Exitpool Agent/bin/exitpool-agent", "--name", "a%b"]))
    result = subprocess.run(
        ["desktop-file-validate", str(path)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == ""
    path.write_text(desktop_entry(["/opt/exitpool-agent/exitpool-agent"], hidden=True))
    result = subprocess.run(["desktop-file-validate", str(path)], capture_output=True, text=True)
    assert (result.returncode, result.stdout) == (0, ""), result.stdout + result.stderr


def test_it_writes_the_windows_run_key_and_deletes_it() -> None:
    registry = MemoryRunKey()
    autostart = Autostart(SPACED_COMMAND, system="Windows", registry=registry)
    assert not autostart.is_enabled()
    autostart.enable()
    assert registry.values == {
        APP_NAME: r'"C:\Program Files\Exitpool\exitpool-agent.exe" --config-dir "C:\Users\a b"'
    }
    assert autostart.is_enabled()
    assert "HKEY_CURRENT_USER\\Software\\Microsoft\\Windows\\CurrentVersion\\Run" in (
        autostart.where()
    )
    autostart.disable()
    assert registry.values == {}
    assert not autostart.is_enabled()


@pytest.mark.skipif(sys.platform == "win32", reason="the real registry is there")
def test_it_refuses_the_real_registry_outside_windows() -> None:
    with pytest.raises(OSError, match="only on Windows"):
        WindowsRunKey().get(APP_NAME)


def test_it_writes_a_macos_launch_agent_and_removes_it(tmp_path: Path) -> None:
    autostart = Autostart(SPACED_COMMAND, system="Darwin", home=tmp_path)
    assert not autostart.is_enabled()
    autostart.enable()
    path = tmp_path / "Library" / "LaunchAgents" / "com.exitpool.agent.plist"
    assert plistlib.loads(path.read_bytes()) == {
        "Label": "com.exitpool.agent",
        "ProgramArguments": SPACED_COMMAND,
        "RunAtLoad": True,
        "ProcessType": "Interactive",
    }
    assert autostart.is_enabled()
    assert autostart.where() == f"the login item {path}"
    autostart.disable()
    assert not path.exists()
    assert not autostart.is_enabled()


@pytest.mark.parametrize("system", ["Linux", "Windows", "Darwin"])
def test_it_does_nothing_when_disabling_what_was_never_enabled(tmp_path: Path, system: str) -> None:
    registry = MemoryRunKey()
    Autostart(COMMAND, system=system, home=tmp_path, registry=registry).disable()
    assert registry.values == {}
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("system", ["Linux", "Windows", "Darwin"])
def test_it_replaces_an_older_entry_with_the_current_command(tmp_path: Path, system: str) -> None:
    registry = MemoryRunKey()
    Autostart(["/old/exitpool-agent"], system=system, home=tmp_path, registry=registry).enable()
    autostart = Autostart(COMMAND, system=system, home=tmp_path, registry=registry)
    autostart.enable()
    written = registry.values.get(APP_NAME) or autostart.path.read_text(errors="replace")
    assert "/old/" not in written
    assert COMMAND[0] in written


def test_it_refuses_an_empty_command() -> None:
    with pytest.raises(ValueError, match="empty"):
        Autostart([])


def test_it_starts_a_frozen_build_by_its_own_executable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "executable", str(tmp_path / "Exitpool Agent.exe"))
    assert agent_command() == [str(tmp_path / "Exitpool Agent.exe")]


@pytest.mark.parametrize("script", ["exitpool-agent", "exitpool-agent.exe"])
def test_it_starts_the_console_script_beside_python(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, script: str
) -> None:
    monkeypatch.delattr(sys, "frozen", raising=False)
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    (tmp_path / script).write_text("")
    assert agent_command() == [str(tmp_path / script)]


def test_it_runs_the_module_when_there_is_no_script(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delattr(sys, "frozen", raising=False)
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    assert agent_command() == [str(tmp_path / "python"), "-m", "desktop_agent.cli"]
