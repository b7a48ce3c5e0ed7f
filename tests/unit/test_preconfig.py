"""The installer's pre-configuration file: what it must hold and where the agent finds it."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import pytest

from desktop_agent.engine import preconfig
from desktop_agent.engine.preconfig import (
    MAX_FILE_BYTES,
    PRECONFIG_FILE,
    Preconfig,
    PreconfigError,
    find,
    load,
    locate,
    search_paths,
)

GOOD = {
    "server": "wss://exitpool.example.com/ws/agent",
    "enrollment_key": "epk_abc",
    "name_prefix": "office-",
}


def write(folder: Path, content: object, name: str = PRECONFIG_FILE) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return path


@pytest.fixture(autouse=True)
def isolated_places(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No system folder or Downloads of this machine's own: each test makes the ones it uses."""
    monkeypatch.setattr(preconfig, "_system_dir", lambda: tmp_path / "system")
    monkeypatch.setattr(preconfig.platformdirs, "user_downloads_dir", lambda: str(tmp_path / "dl"))


def test_it_reads_the_file_the_admin_page_hands_out(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD)
    found = load(path)
    assert found == Preconfig("wss://exitpool.example.com/ws/agent", "epk_abc", "office-", path)
    assert found.agent_name("pc-17") == "office-pc-17"


def test_it_accepts_a_file_without_a_name_prefix(tmp_path: Path) -> None:
    found = load(write(tmp_path, {"server": "https://ep.example.com", "enrollment_key": "k"}))
    assert found.name_prefix == ""
    assert found.agent_name("pc-17") == "pc-17"


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("{not json", "is not valid JSON"),
        ("[1, 2]", "must hold a JSON object"),
        ({"enrollment_key": "k"}, 'has no "server"'),
        ({"server": "ftp://x", "enrollment_key": "k"}, "server URL must be ws://"),
        ({"server": "wss://x/ws/agent"}, 'has no "enrollment_key"'),
        ({"server": "wss://x/ws/agent", "enrollment_key": "  "}, 'has no "enrollment_key"'),
        ({**GOOD, "name_prefix": "x" * 41}, '"name_prefix" must be text of at most 40'),
        ({**GOOD, "name_prefix": 7}, '"name_prefix" must be text'),
        ("x" * (MAX_FILE_BYTES + 1), f"larger than {MAX_FILE_BYTES} bytes"),
    ],
)
def test_it_names_the_file_and_the_problem(tmp_path: Path, content: object, problem: str) -> None:
    path = write(tmp_path, content)
    with pytest.raises(PreconfigError, match=problem) as caught:
        load(path)
    assert str(path) in str(caught.value)


def test_it_says_when_the_file_cannot_be_read(tmp_path: Path) -> None:
    with pytest.raises(PreconfigError, match="cannot read"):
        load(tmp_path / "missing.json")


def test_it_looks_in_the_config_dir_before_the_system_folder(tmp_path: Path) -> None:
    write(tmp_path / "system", {**GOOD, "name_prefix": "from-system-"})
    assert find(tmp_path / "config") is not None
    assert find(tmp_path / "config").name_prefix == "from-system-"  # type: ignore[union-attr]
    write(tmp_path / "config", {**GOOD, "name_prefix": "from-config-"})
    assert find(tmp_path / "config").name_prefix == "from-config-"  # type: ignore[union-attr]


def test_it_skips_a_broken_file_and_says_why(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write(tmp_path / "config", "{broken")
    write(tmp_path / "system", GOOD)
    with caplog.at_level(logging.WARNING):
        found = find(tmp_path / "config")
    assert found is not None and found.source == tmp_path / "system" / PRECONFIG_FILE
    assert "ignoring the pre-configuration" in caplog.text and "not valid JSON" in caplog.text


def test_it_finds_nothing_when_no_file_is_anywhere(tmp_path: Path) -> None:
    assert find(tmp_path / "config", include_downloads=True) is None


def test_it_looks_in_downloads_only_when_asked(tmp_path: Path) -> None:
    write(tmp_path / "dl", GOOD)
    assert find(tmp_path / "config") is None
    assert find(tmp_path / "config", include_downloads=True) is not None


def test_an_explicit_file_is_read_even_when_another_would_be_found(tmp_path: Path) -> None:
    write(tmp_path / "config", GOOD)
    chosen = write(tmp_path / "elsewhere", {**GOOD, "name_prefix": "chosen-"})
    assert locate(chosen, tmp_path / "config").name_prefix == "chosen-"  # type: ignore[union-attr]
    with pytest.raises(PreconfigError):  # an explicit file's problems are not skipped
        locate(write(tmp_path / "bad", "{"), tmp_path / "config")


def test_it_looks_beside_a_frozen_executable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = tmp_path / "Programs" / "Exitpool Agent"
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "executable", str(app / "exitpool-agent.exe"))
    monkeypatch.setattr(sys, "platform", "win32")
    assert app / PRECONFIG_FILE in search_paths(tmp_path / "config")


def test_it_looks_beside_a_macos_app_bundle_not_inside_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bundle = tmp_path / "Applications" / "Exitpool Agent.app"
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "executable", str(bundle / "Contents" / "MacOS" / "exitpool-agent"))
    monkeypatch.setattr(sys, "platform", "darwin")
    assert tmp_path / "Applications" / PRECONFIG_FILE in search_paths(tmp_path / "config")


def test_a_source_checkout_does_not_look_beside_python(tmp_path: Path) -> None:
    assert search_paths(tmp_path / "config") == [
        tmp_path / "config" / PRECONFIG_FILE,
        tmp_path / "system" / PRECONFIG_FILE,
    ]
