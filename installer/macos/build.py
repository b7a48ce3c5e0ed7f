"""The macOS app's Info.plist keys and the disk image that carries it.

The disk image is the usual Mac install: open it, drag "Exitpool Agent" onto
the Applications link beside it. It runs only on macOS (``ditto`` and
``hdiutil`` are macOS tools), but the commands are plain data, so their tests
run anywhere. The version comes in as an argument: nothing here spells it.
"""

from __future__ import annotations

import subprocess
import tempfile
import time
from pathlib import Path

VOLUME_NAME = "Exitpool Agent"
MINIMUM_MACOS = "13.0"
"""The oldest macOS PySide6 6.11's wheels support (their tag is ``macosx_13_0``)."""
HDIUTIL_ATTEMPTS = 4
"""``hdiutil create`` fails now and then with "Resource busy" on GitHub's macOS
runners (actions/runner-images#7522); a retry is the known cure."""
HDIUTIL_RETRY_PAUSE = 5.0
"""Seconds between two ``hdiutil create`` attempts."""


def dmg_name(version: str) -> str:
    return f"exitpool-agent-{version}.dmg"


def info_plist(version: str) -> dict[str, object]:
    """The keys the PyInstaller spec passes to ``BUNDLE(info_plist=...)``.

    ``LSUIElement`` keeps the agent out of the Dock and the app switcher: it
    lives in the menu bar, like the tray icon elsewhere, and its windows still open.
    """
    return {
        "CFBundleShortVersionString": version,
        "CFBundleVersion": version,
        "LSUIElement": True,
        "NSHighResolutionCapable": True,
        "LSMinimumSystemVersion": MINIMUM_MACOS,
    }


def dmg_commands(app: Path, staging: Path, dmg: Path) -> list[list[str]]:
    """Copy the app into ``staging`` beside an Applications link, then image that folder.

    ``ditto`` keeps the bundle's symlinks and extended attributes that a plain
    copy could break; UDZO is the compressed read-only format every macOS opens.
    """
    return [
        ["ditto", str(app), str(staging / app.name)],
        ["ln", "-s", "/Applications", str(staging / "Applications")],
        [
            "hdiutil", "create",
            "-volname", VOLUME_NAME,
            "-srcfolder", str(staging),
            "-ov", "-format", "UDZO",
            str(dmg),
        ],
    ]  # fmt: skip


def build_dmg(app: Path, out_dir: Path, version: str) -> Path:
    """Build ``out_dir/exitpool-agent-<version>.dmg`` from the ``.app`` and return its path."""
    if not (app / "Contents" / "Info.plist").is_file():
        raise FileNotFoundError(f"{app} is not an app bundle: build it with PyInstaller first")
    out_dir.mkdir(parents=True, exist_ok=True)
    dmg = out_dir / dmg_name(version)
    with tempfile.TemporaryDirectory(prefix="exitpool-dmg-") as staging:
        *prepare, create = dmg_commands(app, Path(staging), dmg)
        for command in prepare:
            subprocess.run(command, check=True)
        for attempt in range(1, HDIUTIL_ATTEMPTS + 1):
            try:
                subprocess.run(create, check=True)
                break
            except subprocess.CalledProcessError:
                if attempt == HDIUTIL_ATTEMPTS:
                    raise
                time.sleep(HDIUTIL_RETRY_PAUSE)
    return dmg
