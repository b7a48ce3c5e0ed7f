"""The tray and window icons, loaded from ``resources/icons/png`` (drawn from SVG sources).

Every size is added to one QIcon so each platform's tray picks the pixels
drawn for its size (16-24 px on Windows and Linux, 22/44 on macOS) rather
than scaling a large image down into a blur.
"""

from __future__ import annotations

import sys
from functools import cache
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication, QIcon

from desktop_agent.ui.status import TrayState

SIZES = (16, 20, 22, 24, 32, 48, 64, 128, 256)


def resources_dir() -> Path:
    """``resources/`` beside the source tree, or inside a PyInstaller bundle."""
    bundle = getattr(sys, "_MEIPASS", None)
    if bundle:
        return Path(bundle) / "resources"
    return Path(__file__).resolve().parents[2] / "resources"


@cache
def _load(name: str) -> QIcon:
    icon = QIcon()
    folder = resources_dir() / "icons" / "png"
    for size in SIZES:
        path = folder / f"{name}-{size}.png"
        if path.exists():
            icon.addFile(str(path))
    return icon


def taskbar_theme(choice: str) -> str:
    """``"light"`` or ``"dark"``: the owner's choice, or for ``"auto"`` the system's scheme."""
    if choice in ("light", "dark"):
        return choice
    scheme = QGuiApplication.styleHints().colorScheme()
    return "dark" if scheme == Qt.ColorScheme.Dark else "light"


def tray_icon(state: TrayState, theme: str) -> QIcon:
    """The icon for ``state`` on a ``theme`` ("light" or "dark") taskbar."""
    return _load(f"tray-{state.value}-{theme}")


def app_icon() -> QIcon:
    return _load("exitpool-agent")
