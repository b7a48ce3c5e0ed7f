"""The macOS disk image recipe, checked on any OS (``ditto`` and ``hdiutil`` exist only on macOS).

``build_dmg`` runs for real here against two small stand-in scripts named
``ditto`` and ``hdiutil`` on PATH, so the staging folder, the Applications
link and the retry on "Resource busy" are exercised; the image itself is not.
"""

from __future__ import annotations

import os
import plistlib
import subprocess
from pathlib import Path

import pytest

from exitpool import __version__
from installer.macos import build
from installer.macos.build import (
    HDIUTIL_ATTEMPTS,
    MINIMUM_MACOS,
    build_dmg,
    dmg_commands,
    dmg_name,
    info_plist,
)

DITTO = '#!/bin/sh\ncp -R "$1" "$2"\n'
HDIUTIL = """#!/bin/sh
# Fails the first $HDIUTIL_FAILS calls like a busy runner, then lists -srcfolder into the "image".
count=$(($(cat "$HDIUTIL_COUNT" 2>/dev/null || echo 0) + 1))
echo "$count" > "$HDIUTIL_COUNT"
if [ "$count" -le "$HDIUTIL_FAILS" ]; then
  echo "hdiutil: create failed - Resource busy" >&2
  exit 1
fi
while [ $# -gt 1 ]; do
  [ "$1" = -srcfolder ] && src=$2
  shift
done
ls -l "$src" > "$1"
"""


def test_it_keeps_the_app_in_the_menu_bar_with_the_given_version() -> None:
    assert info_plist("9.8.7") == {
        "CFBundleShortVersionString": "9.8.7",
        "CFBundleVersion": "9.8.7",
        "LSUIElement": True,
        "NSHighResolutionCapable": True,
        "LSMinimumSystemVersion": MINIMUM_MACOS,
    }


def test_it_writes_info_plist_keys_that_survive_a_plist_round_trip() -> None:
    keys = info_plist(__version__)
    assert plistlib.loads(plistlib.dumps(keys)) == keys


def test_it_stages_the_app_beside_an_applications_link_and_images_that_folder() -> None:
    app, staging, dmg = Path("dist/Exitpool Agent.app"), Path("/tmp/s"), Path("dist/x.dmg")
    assert dmg_commands(app, staging, dmg) == [
        ["ditto", "dist/Exitpool Agent.app", "/tmp/s/Exitpool Agent.app"],
        ["ln", "-s", "/Applications", "/tmp/s/Applications"],
        ["hdiutil", "create", "-volname", "Exitpool Agent", "-srcfolder", "/tmp/s",
         "-ov", "-format", "UDZO", "dist/x.dmg"],
    ]  # fmt: skip


def test_it_names_the_image_after_the_version() -> None:
    assert dmg_name("9.8.7") == "exitpool-agent-9.8.7.dmg"


@pytest.fixture
def mac_tools(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Stand-in ``ditto`` and ``hdiutil`` first on PATH; returns a made-up .app."""
    tools = tmp_path / "tools"
    tools.mkdir()
    for name, script in (("ditto", DITTO), ("hdiutil", HDIUTIL)):
        (tools / name).write_text(script)
        (tools / name).chmod(0o755)
    monkeypatch.setenv("PATH", f"{tools}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("HDIUTIL_COUNT", str(tmp_path / "hdiutil-calls"))
    monkeypatch.setattr(build, "HDIUTIL_RETRY_PAUSE", 0.0)
    app = tmp_path / "dist" / "Exitpool Agent.app"
    (app / "Contents").mkdir(parents=True)
    (app / "Contents" / "Info.plist").write_bytes(plistlib.dumps(info_plist("9.8.7")))
    return app


def hdiutil_calls() -> int:
    return int(Path(os.environ["HDIUTIL_COUNT"]).read_text())


def test_it_builds_the_image_after_hdiutil_was_busy_a_few_times(
    mac_tools: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HDIUTIL_FAILS", str(HDIUTIL_ATTEMPTS - 1))
    dmg = build_dmg(mac_tools, mac_tools.parent, "9.8.7")
    assert dmg == mac_tools.parent / "exitpool-agent-9.8.7.dmg"
    listing = dmg.read_text()
    assert "Exitpool Agent.app" in listing
    assert "Applications -> /Applications" in listing
    assert hdiutil_calls() == HDIUTIL_ATTEMPTS


def test_it_gives_up_when_hdiutil_stays_busy(
    mac_tools: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HDIUTIL_FAILS", str(HDIUTIL_ATTEMPTS))
    with pytest.raises(subprocess.CalledProcessError):
        build_dmg(mac_tools, mac_tools.parent, "9.8.7")
    assert hdiutil_calls() == HDIUTIL_ATTEMPTS


def test_it_refuses_a_folder_that_is_not_an_app_bundle(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="PyInstaller"):
        build_dmg(tmp_path, tmp_path, "9.8.7")
