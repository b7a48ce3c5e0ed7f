"""The Debian package: the PyInstaller bundle under ``/opt``, a menu entry, and autostart for all.

Built with plain ``dpkg-deb`` (no debhelper): a staging tree, a ``control``
file and three maintainer scripts. What the office worker gets:

- ``/opt/exitpool-agent/`` the bundle, ``/usr/bin/exitpool-agent`` a link to it;
- the menu entry and its icons (``/usr/share/applications``, ``hicolor``);
- ``/etc/xdg/autostart/exitpool-agent.desktop``: the agent starts at every login
  for every user; a user who turns it off gets a ``Hidden=true`` file of their
  own (``desktop_agent/ui/autostart.py``);
- ``/etc/exitpool-agent/``: where IT drops ``exitpool-agent.json``.

The autostart entry is deliberately *not* a conffile: ``apt remove`` must leave
no autostart behind, and dpkg keeps conffiles until a purge. ``prerm`` stops
running agents (SIGTERM, so each tells the server goodbye), so removal leaves
no process either.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from desktop_agent.ui.autostart import DESKTOP_FILE, desktop_entry

PACKAGE = "exitpool-agent"
INSTALL_DIR = Path("/opt/exitpool-agent")
EXECUTABLE = INSTALL_DIR / "exitpool-agent"
PRECONFIG_DIR = Path("/etc/exitpool-agent")
ICON_SIZES = (16, 22, 24, 32, 48, 64, 128, 256)
# What the bundle loads from the system rather than carrying: glibc (PySide6 wheels are
# manylinux_2_28), the X and Wayland client libraries and the GL dispatchers, which must
# match the PC's own display stack (found with ldd over the bundle; installer/README.md).
DEPENDS = (
    "libc6 (>= 2.28), libxcb1, libegl1, libgl1, "
    "libwayland-client0, libwayland-cursor0, libwayland-egl1"
)
MAINTAINER = "Exitpool <it@exitpool.invalid>"
DESCRIPTION = """Share this PC's internet connection with an Exitpool server
 The Exitpool agent lives next to the clock. With the owner's agreement it
 carries web requests from the company's crawler and QA teams out through this
 PC's internet connection, shows every site it reached, and can be paused at
 any time. It never reaches the office network or this PC itself."""
REPO = Path(__file__).resolve().parents[2]
RESOURCES = REPO / "resources"

# Stop every running agent on removal, politely first: SIGTERM makes each one say goodbye to
# the server; anything still there after 5 s is killed. Processes are found by their
# executable, however they were started (menu, autostart, /usr/bin link). Upgrades stop them
# too (the files under them are replaced); autostart brings them back at the next login.
# Paths honour $DPKG_ROOT, so `dpkg --root DIR --force-script-chrootless` (the tests) acts on
# DIR only.
PRERM = f"""#!/bin/sh
set -e
exe="$DPKG_ROOT{EXECUTABLE}"
running() {{
    for proc in /proc/[0-9]*; do
        [ "$(readlink "$proc/exe" 2>/dev/null)" = "$exe" ] && echo "${{proc#/proc/}}"
    done
    return 0
}}
pids=$(running)
if [ -n "$pids" ]; then
    kill -TERM $pids 2>/dev/null || true
    for _ in 1 2 3 4 5 6 7 8 9 10; do
        pids=$(running)
        [ -z "$pids" ] && break
        sleep 0.5
    done
    [ -n "$pids" ] && kill -KILL $pids 2>/dev/null || true
fi
exit 0
"""
POSTINST = """#!/bin/sh
set -e
if [ "$1" = configure ] && [ -z "$DPKG_ROOT" ]; then
    command -v update-desktop-database >/dev/null 2>&1 && update-desktop-database -q || true
    command -v gtk-update-icon-cache >/dev/null 2>&1 \\
        && gtk-update-icon-cache -q -t /usr/share/icons/hicolor || true
fi
exit 0
"""
# A purge also forgets IT's pre-configuration; each user's own settings stay in their home.
POSTRM = f"""#!/bin/sh
set -e
if [ "$1" = purge ]; then
    rm -rf "$DPKG_ROOT{PRECONFIG_DIR}"
fi
exit 0
"""


def deb_name(version: str, architecture: str) -> str:
    return f"{PACKAGE}_{version}_{architecture}.deb"


def architecture() -> str:
    """The host's Debian architecture (the bundle holds this machine's binaries)."""
    return subprocess.run(
        ["dpkg", "--print-architecture"], capture_output=True, text=True, check=True
    ).stdout.strip()


def control(version: str, arch: str, installed_kib: int) -> str:
    return (
        f"Package: {PACKAGE}\n"
        f"Version: {version}\n"
        f"Architecture: {arch}\n"
        f"Maintainer: {MAINTAINER}\n"
        f"Installed-Size: {installed_kib}\n"
        f"Depends: {DEPENDS}\n"
        "Section: net\n"
        "Priority: optional\n"
        f"Description: {DESCRIPTION}\n"
    )


def menu_entry() -> str:
    """The menu's desktop file from ``resources/``, pointed at the installed executable."""
    lines = (RESOURCES / "exitpool-agent.desktop").read_text(encoding="utf-8").splitlines()
    return "".join(
        f"Exec={EXECUTABLE}\n" if line.startswith("Exec=") else f"{line}\n" for line in lines
    )


def stage(bundle: Path, root: Path, version: str, arch: str) -> Path:
    """Lay out the package's tree under ``root`` (emptied first) and return it."""
    if not (bundle / "exitpool-agent").is_file():
        raise FileNotFoundError(f"no agent bundle at {bundle} (run PyInstaller first)")
    shutil.rmtree(root, ignore_errors=True)
    opt = root / INSTALL_DIR.relative_to("/")
    shutil.copytree(bundle, opt, symlinks=True)
    usr = root / "usr"
    (usr / "bin").mkdir(parents=True)
    (usr / "bin" / "exitpool-agent").symlink_to(EXECUTABLE)
    _write(usr / "share" / "applications" / DESKTOP_FILE, menu_entry())
    for size in ICON_SIZES:
        icon = usr / "share" / "icons" / "hicolor" / f"{size}x{size}" / "apps" / f"{PACKAGE}.png"
        icon.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(RESOURCES / "icons" / "png" / f"exitpool-agent-{size}.png", icon)
    _write(root / "etc" / "xdg" / "autostart" / DESKTOP_FILE, desktop_entry([str(EXECUTABLE)]))
    (root / PRECONFIG_DIR.relative_to("/")).mkdir(parents=True)
    _write(
        usr / "share" / "doc" / PACKAGE / "copyright",
        "Exitpool Agent. License: MIT.\nBundles Python, Qt (LGPLv3) and PySide6 (LGPLv3).\n",
    )
    installed_kib = sum(p.lstat().st_size for p in root.rglob("*") if not p.is_dir()) // 1024
    debian = root / "DEBIAN"
    _write(debian / "control", control(version, arch, installed_kib))
    for name, text in (("prerm", PRERM), ("postinst", POSTINST), ("postrm", POSTRM)):
        _write(debian / name, text, mode=0o755)
    return root


def build_deb(bundle: Path, out_dir: Path, version: str, work: Path) -> Path:
    """Stage and pack the package with ``dpkg-deb`` (files owned by root); returns its path."""
    if shutil.which("dpkg-deb") is None:
        raise FileNotFoundError("dpkg-deb is not installed (Debian package dpkg)")
    arch = architecture()
    root = stage(bundle, work / "deb-root", version, arch)
    out_dir.mkdir(parents=True, exist_ok=True)
    deb = out_dir / deb_name(version, arch)
    subprocess.run(
        ["dpkg-deb", "--root-owner-group", "-Zxz", "--build", str(root), str(deb)],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return deb


def _write(path: Path, text: str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    path.chmod(mode)
