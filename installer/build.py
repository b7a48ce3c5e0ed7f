"""Build every installer this host can build, and say which ones it skipped and why.

The PyInstaller bundle comes first (one folder, from ``exitpool-agent.spec``);
each OS then wraps it its own way. A missing tool skips that installer with
its reason instead of failing the others, but a tool that is there and fails
fails the build.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from exitpool import __version__

REPO = Path(__file__).resolve().parents[1]
SPEC = REPO / "installer" / "exitpool-agent.spec"
DIST = REPO / "dist"
WORK = REPO / "build" / "installer"
APPIMAGE_SKIPPED = (
    "an AppImage needs the AppImage runtime and appimagetool, which no package registry "
    "carries (the PyPI tools download them from GitHub at build time)"
)


@dataclass
class BuildReport:
    built: list[Path] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    """(what, why)."""

    def lines(self) -> list[str]:
        return [f"built    {path}" for path in self.built] + [
            f"skipped  {what}: {why}" for what, why in self.skipped
        ]


def bundle_path(dist: Path, platform: str = sys.platform) -> Path:
    """The folder (Linux, Windows) or ``.app`` (macOS) PyInstaller writes."""
    return dist / ("Exitpool Agent.app" if platform == "darwin" else "exitpool-agent")


def build_bundle(dist: Path = DIST, work: Path = WORK) -> Path:
    """Run PyInstaller with this Python (whose packages go into the bundle)."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "PyInstaller",
            "--noconfirm",
            "--log-level=WARN",
            "--distpath",
            str(dist),
            "--workpath",
            str(work / "pyinstaller"),
            str(SPEC),
        ],
        check=True,
        cwd=REPO,
    )
    return bundle_path(dist)


def build(dist: Path = DIST, work: Path = WORK, bundle_only: bool = False) -> BuildReport:
    report = BuildReport()
    bundle = build_bundle(dist, work)
    report.built.append(bundle)
    if bundle_only:
        return report
    if sys.platform.startswith("linux"):
        from installer.linux.deb import build_deb

        try:
            report.built.append(build_deb(bundle, dist, __version__, work))
        except FileNotFoundError as exc:
            report.skipped.append((".deb", str(exc)))
        report.skipped.append(("AppImage", APPIMAGE_SKIPPED))
    else:
        report.skipped.append((".deb", "built on Linux only"))
    if sys.platform == "win32":
        from installer.windows.build import build_setup

        report.built.append(build_setup(bundle, dist, __version__))
    else:
        report.skipped.append(
            ("Windows setup", "needs Inno Setup on Windows (.github/workflows/installers.yml)")
        )
    if sys.platform == "darwin":
        from installer.macos.build import build_dmg

        report.built.append(build_dmg(bundle, dist, __version__))
    else:
        report.skipped.append(
            ("macOS .dmg", "needs hdiutil on macOS (.github/workflows/installers.yml)")
        )
    return report
