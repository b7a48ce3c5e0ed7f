"""Render the hand-written SVG icons into the PNG, ICO and ICNS files the trays and installers use.

Run from the repository root after editing anything in ``resources/icons/src``::

    QT_QPA_PLATFORM=offscreen .venv/bin/python resources/build_icons.py

and commit the outputs with the sources (``tests/unit/test_icons.py`` fails when
they drift apart). Rendering uses Qt's own SVG renderer, the one the tray app
would use, so what is committed is what Qt draws. The ICO and ICNS containers
are written here from PNG payloads: Qt's ICO writer keeps one size only, and
its ICNS writer keeps only the largest.
"""

from __future__ import annotations

import os
import struct
import sys
from collections.abc import Iterable
from pathlib import Path

from PySide6.QtCore import QBuffer, QByteArray, QIODevice, QRectF, Qt
from PySide6.QtGui import QGuiApplication, QImage, QImageWriter, QPainter
from PySide6.QtSvg import QSvgRenderer

RESOURCES = Path(__file__).resolve().parent
SOURCE_DIR = RESOURCES / "icons" / "src"
PNG_DIR = RESOURCES / "icons" / "png"
ICO_DIR = RESOURCES / "icons" / "ico"
ICNS_DIR = RESOURCES / "icons" / "icns"

STATES = ("sharing", "paused", "connecting", "error")
"""The tray icon's states: connected and sharing, paused, (re)connecting, needs attention."""

THEMES = ("light", "dark")
"""Taskbar themes: ``light`` icons have dark strokes, ``dark`` icons light ones."""

TRAY_ICONS = tuple(f"tray-{state}-{theme}" for state in STATES for theme in THEMES)
APP_ICON = "exitpool-agent"
ICONS = (*TRAY_ICONS, APP_ICON)

PNG_SIZES = (16, 20, 22, 24, 32, 48, 64, 128, 256)
"""Every tray size in use (16-32 at 100-200 % scaling, 22 on most Linux panels) and app sizes."""

ICO_SIZES = (16, 20, 24, 32, 48, 256)
"""What Windows asks an .ico for: the notification area at 100/125/150/200 %, lists, Explorer."""

ICNS_TYPES = (
    (b"icp4", 16),
    (b"icp5", 32),
    (b"ic11", 32),  # 16 pt @2x
    (b"icp6", 64),
    (b"ic12", 64),  # 32 pt @2x
    (b"ic07", 128),
    (b"ic08", 256),
    (b"ic13", 256),  # 128 pt @2x
    (b"ic09", 512),
    (b"ic14", 512),  # 256 pt @2x
    (b"ic10", 1024),  # 512 pt @2x
)
"""The PNG-payload entries of a macOS .icns (OSType, pixel size), 16 pt to 512 pt @2x."""


def render(svg: Path, size: int) -> QImage:
    """``svg`` drawn antialiased into a transparent ``size`` x ``size`` image (ARGB32)."""
    renderer = QSvgRenderer(str(svg))
    if not renderer.isValid():
        raise ValueError(f"{svg}: not an SVG Qt can draw")
    image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
    renderer.render(painter, QRectF(0, 0, size, size))
    painter.end()
    return image.convertToFormat(QImage.Format.Format_ARGB32)


def png_bytes(image: QImage) -> bytes:
    """The image encoded as PNG."""
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    writer = QImageWriter(buffer, QByteArray(b"png"))
    if not writer.write(image):
        raise RuntimeError(f"Qt could not encode a PNG: {writer.errorString()}")
    buffer.close()
    return bytes(data.data())


def ico_bytes(pngs: Iterable[tuple[int, bytes]]) -> bytes:
    """A Windows .ico holding one PNG per size (Windows Vista and later read PNG entries).

    Layout: ICONDIR (reserved 0, type 1, count), one 16-byte ICONDIRENTRY per
    image (width and height as one byte each, 0 meaning 256; colour count,
    reserved, planes 1, 32 bits per pixel, payload length, payload offset), then
    the payloads.
    """
    entries = list(pngs)
    header = struct.pack("<HHH", 0, 1, len(entries))
    offset = len(header) + 16 * len(entries)
    directory = b""
    for size, payload in entries:
        if not 1 <= size <= 256:
            raise ValueError(f"an .ico entry is 1-256 px, not {size}")
        side = size % 256  # 256 is written as 0
        directory += struct.pack("<BBBBHHII", side, side, 0, 0, 1, 32, len(payload), offset)
        offset += len(payload)
    return header + directory + b"".join(payload for _, payload in entries)


def icns_bytes(entries: Iterable[tuple[bytes, bytes]]) -> bytes:
    """A macOS .icns: ``icns`` + total length, then (OSType, length incl. 8-byte header, PNG)."""
    body = b"".join(struct.pack(">4sI", kind, 8 + len(png)) + png for kind, png in entries)
    return struct.pack(">4sI", b"icns", 8 + len(body)) + body


def build() -> list[Path]:
    """Write every output from the sources; returns the files written."""
    for folder in (PNG_DIR, ICO_DIR, ICNS_DIR):
        folder.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []

    def write(path: Path, data: bytes) -> None:
        path.write_bytes(data)
        written.append(path)

    for name in ICONS:
        svg = SOURCE_DIR / f"{name}.svg"
        pngs = {size: png_bytes(render(svg, size)) for size in PNG_SIZES}
        for size, png in pngs.items():
            write(PNG_DIR / f"{name}-{size}.png", png)
        write(ICO_DIR / f"{name}.ico", ico_bytes((size, pngs[size]) for size in ICO_SIZES))
    app_svg = SOURCE_DIR / f"{APP_ICON}.svg"
    large = {size: png_bytes(render(app_svg, size)) for size in {size for _, size in ICNS_TYPES}}
    write(
        ICNS_DIR / f"{APP_ICON}.icns", icns_bytes((kind, large[size]) for kind, size in ICNS_TYPES)
    )
    return written


def main() -> None:
    # A GUI application gives the renderer fonts, should an icon ever hold text; no screen needed.
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    app = QGuiApplication.instance() or QGuiApplication(sys.argv[:1])
    written = build()
    print(f"wrote {len(written)} files under {os.path.relpath(RESOURCES)}")
    del app


if __name__ == "__main__":
    main()
