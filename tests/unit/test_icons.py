"""The committed icons: every state, theme and size exists, the containers parse, and the
outputs are what the SVG sources render to (so the two cannot drift apart).

Rendering needs no screen: QSvgRenderer draws into a QImage without a QGuiApplication.
"""

from __future__ import annotations

import itertools
import shutil
import struct
import subprocess
from pathlib import Path

import pytest
from PySide6.QtGui import QImage

from resources.build_icons import (
    APP_ICON,
    ICNS_DIR,
    ICNS_TYPES,
    ICO_DIR,
    ICO_SIZES,
    ICONS,
    PNG_DIR,
    PNG_SIZES,
    RESOURCES,
    SOURCE_DIR,
    STATES,
    THEMES,
    TRAY_ICONS,
    icns_bytes,
    ico_bytes,
    render,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

DRIFT_THRESHOLD = 32
"""A channel differing by more than this counts a pixel as changed (antialiasing noise is less)."""

DRIFT_TOLERANCE = 0.02
"""The share of changed pixels a re-render may show (another Qt version's antialiasing)."""

DRIFT_MEAN_TOLERANCE = 1.0
"""The mean difference per channel a re-render may show; a changed colour moves it further."""

DISTINCT_PIXELS = 0.15
"""The share of pixels by which any two 16 px states must differ, at the least."""


def pixels(image: QImage) -> bytes:
    return bytes(image.convertToFormat(QImage.Format.Format_ARGB32).constBits())


def difference(a: QImage, b: QImage) -> tuple[int, float]:
    """Pixels differing by more than DRIFT_THRESHOLD in a channel, and the mean difference."""
    pa, pb = pixels(a), pixels(b)
    assert len(pa) == len(pb)
    if pa == pb:
        return 0, 0.0
    deltas = [abs(x - y) for x, y in zip(pa, pb, strict=True)]
    changed = sum(1 for i in range(0, len(deltas), 4) if max(deltas[i : i + 4]) > DRIFT_THRESHOLD)
    return changed, sum(deltas) / len(deltas)


def png_size(payload: bytes) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk."""
    assert payload.startswith(PNG_SIGNATURE)
    assert payload[12:16] == b"IHDR"
    width, height = struct.unpack(">II", payload[16:24])
    return width, height


def test_it_has_a_tray_icon_for_every_state_and_taskbar_theme() -> None:
    assert set(TRAY_ICONS) == {f"tray-{s}-{t}" for s in STATES for t in THEMES}
    assert len(TRAY_ICONS) == 8
    for name in ICONS:
        assert (SOURCE_DIR / f"{name}.svg").is_file()


@pytest.mark.parametrize("name", ICONS)
def test_it_has_every_png_size_of_every_icon(name: str) -> None:
    for size in PNG_SIZES:
        image = QImage(str(PNG_DIR / f"{name}-{size}.png"))
        assert not image.isNull(), f"{name}-{size}.png is missing or unreadable"
        assert (image.width(), image.height()) == (size, size)
        assert image.hasAlphaChannel()


def test_it_keeps_no_outputs_without_a_source() -> None:
    expected = {f"{name}-{size}.png" for name in ICONS for size in PNG_SIZES}
    assert {p.name for p in PNG_DIR.iterdir()} == expected
    assert {p.name for p in ICO_DIR.iterdir()} == {f"{name}.ico" for name in ICONS}
    assert {p.name for p in ICNS_DIR.iterdir()} == {f"{APP_ICON}.icns"}


@pytest.mark.parametrize("name", ICONS)
def test_it_writes_an_ico_whose_directory_matches_its_png_entries(name: str) -> None:
    data = (ICO_DIR / f"{name}.ico").read_bytes()
    reserved, kind, count = struct.unpack("<HHH", data[:6])
    assert (reserved, kind, count) == (0, 1, len(ICO_SIZES))
    end = 6 + 16 * count
    for index, size in enumerate(ICO_SIZES):
        width, height, colours, _, planes, bits, length, offset = struct.unpack(
            "<BBBBHHII", data[6 + 16 * index : 22 + 16 * index]
        )
        assert (width or 256, height or 256) == (size, size)
        assert (colours, planes, bits) == (0, 1, 32)
        assert offset == end, "payloads follow the directory back to back"
        payload = data[offset : offset + length]
        assert png_size(payload) == (size, size)
        assert payload == (PNG_DIR / f"{name}-{size}.png").read_bytes()
        end = offset + length
    assert end == len(data)


def test_it_refuses_an_ico_entry_larger_than_256_px() -> None:
    assert ico_bytes([(256, b"png")])[6] == 0  # 256 is written as 0
    with pytest.raises(ValueError, match="1-256"):
        ico_bytes([(257, b"png")])


def test_it_writes_an_icns_with_every_size_from_16_pt_to_512_pt_at_2x() -> None:
    data = (ICNS_DIR / f"{APP_ICON}.icns").read_bytes()
    magic, total = struct.unpack(">4sI", data[:8])
    assert (magic, total) == (b"icns", len(data))
    offset, seen = 8, []
    while offset < len(data):
        kind, length = struct.unpack(">4sI", data[offset : offset + 8])
        seen.append((kind, png_size(data[offset + 8 : offset + length])[0]))
        offset += length
    assert offset == len(data)
    assert seen == list(ICNS_TYPES)
    assert icns_bytes([]) == b"icns\x00\x00\x00\x08"


@pytest.mark.parametrize("name", ICONS)
def test_it_commits_what_the_svg_sources_render_to(name: str) -> None:
    for size in PNG_SIZES:
        committed = QImage(str(PNG_DIR / f"{name}-{size}.png"))
        fresh = render(SOURCE_DIR / f"{name}.svg", size)
        changed, mean = difference(committed, fresh)
        assert changed <= DRIFT_TOLERANCE * size * size and mean <= DRIFT_MEAN_TOLERANCE, (
            f"{name}-{size}.png differs from its source in {changed} pixels "
            f"(mean channel difference {mean:.2f}): "
            "run resources/build_icons.py and commit the outputs"
        )


@pytest.mark.parametrize("theme", THEMES)
def test_it_draws_the_four_states_distinctly_at_16_px(theme: str) -> None:
    images = {s: QImage(str(PNG_DIR / f"tray-{s}-{theme}-16.png")) for s in STATES}
    for a, b in itertools.combinations(STATES, 2):
        changed, _ = difference(images[a], images[b])
        assert changed >= DISTINCT_PIXELS * 16 * 16, f"{a} and {b} differ in {changed} pixels"


def test_it_draws_light_and_dark_variants_differently() -> None:
    for state in ("paused", "connecting", "error"):
        light = QImage(str(PNG_DIR / f"tray-{state}-light-16.png"))
        dark = QImage(str(PNG_DIR / f"tray-{state}-dark-16.png"))
        assert difference(light, dark)[0] >= DISTINCT_PIXELS * 16 * 16


def test_it_ships_a_menu_entry_that_starts_the_agent_with_its_icon() -> None:
    lines = (RESOURCES / "exitpool-agent.desktop").read_text().splitlines()
    assert lines[0] == "[Desktop Entry]"
    for line in (
        "Name=Exitpool Agent",
        "Exec=exitpool-agent",
        "Icon=exitpool-agent",
        "Terminal=false",
        "Categories=Network;",
        "StartupNotify=false",
    ):
        assert line in lines


@pytest.mark.skipif(not shutil.which("desktop-file-validate"), reason="desktop-file-utils")
def test_it_ships_a_menu_entry_that_desktop_file_validate_accepts() -> None:
    path: Path = RESOURCES / "exitpool-agent.desktop"
    result = subprocess.run(
        ["desktop-file-validate", str(path)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == ""
