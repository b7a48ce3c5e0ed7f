"""Compile the Windows installer from the PyInstaller bundle, and stamp the exe's version.

Runs only on Windows (Inno Setup's ISCC.exe is a Windows program), but the
command line and the version resource are plain data, so their tests run
anywhere. The version comes in as an argument: the script never spells it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path

ISS_FILE = Path(__file__).with_name("exitpool-agent.iss")
EXE_NAME = "exitpool-agent.exe"
ISCC_NAME = "ISCC.exe"
INNO_FOLDER = "Inno Setup 6"
"""Where Inno Setup 6 installs itself under Program Files (or, per user, under
``%LOCALAPPDATA%\\Programs``)."""


def setup_name(version: str) -> str:
    """The installer's file name; the .iss builds the same from ``AppVersion``."""
    return f"exitpool-agent-{version}-setup.exe"


def file_version(version: str) -> tuple[int, int, int, int]:
    """``0.2.0`` → ``(0, 2, 0, 0)``: Windows version resources hold four numbers below 65536.

    A pre-release suffix (``0.3.0rc1``) is dropped: Windows has no place for it,
    and the text version keeps it.
    """
    match = re.match(r"\d+(?:\.\d+){0,3}", version)
    if match is None:
        raise ValueError(f"{version!r} does not start with a version number")
    numbers = [int(part) for part in match.group().split(".")]
    if any(number > 0xFFFF for number in numbers):
        raise ValueError(f"{version!r}: Windows version numbers stop at 65535")
    padded = (*numbers, 0, 0, 0)
    return padded[0], padded[1], padded[2], padded[3]


def find_iscc(environ: Mapping[str, str] | None = None) -> Path | None:
    """ISCC.exe on PATH, else in the folders Inno Setup 6's installer (or choco, winget) uses."""
    env = os.environ if environ is None else environ
    on_path = shutil.which(ISCC_NAME, path=env.get("PATH"))
    if on_path:
        return Path(on_path)
    roots = [env.get("ProgramFiles(x86)"), env.get("ProgramFiles")]
    if env.get("LOCALAPPDATA"):
        roots.append(str(Path(env["LOCALAPPDATA"]) / "Programs"))
    for root in roots:
        if root and (candidate := Path(root) / INNO_FOLDER / ISCC_NAME).is_file():
            return candidate
    return None


def iscc_command(
    iscc: Path, bundle: Path, out_dir: Path, version: str, script: Path = ISS_FILE
) -> list[str]:
    """The ISCC command line that packs ``bundle`` into ``out_dir/<setup_name(version)>``."""
    numeric = ".".join(str(number) for number in file_version(version))
    return [
        str(iscc),
        f"/DAppVersion={version}",
        f"/DFileVersion={numeric}",
        f"/DBundleDir={bundle}",
        f"/O{out_dir}",
        str(script),
    ]


def build_setup(bundle: Path, out_dir: Path, version: str) -> Path:
    """Compile the installer and return its path; says what is missing instead of guessing."""
    if not (bundle / EXE_NAME).is_file():
        raise FileNotFoundError(f"no {EXE_NAME} in {bundle}: build the PyInstaller bundle first")
    iscc = find_iscc()
    if iscc is None:
        raise FileNotFoundError(
            f"{ISCC_NAME} not found: install Inno Setup 6 (choco install innosetup, "
            "or winget install JRSoftware.InnoSetup)"
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    subprocess.run(iscc_command(iscc, bundle.resolve(), out_dir.resolve(), version), check=True)
    setup = out_dir / setup_name(version)
    if not setup.is_file():
        raise FileNotFoundError(f"ISCC finished but {setup} is not there")
    return setup


def version_file(version: str, path: Path) -> Path:
    """Write the version resource PyInstaller's ``EXE(version=path)`` stamps into the exe.

    Explorer's Properties → Details then shows the agent's version, so support
    staff can read it without starting the agent.
    PyInstaller reads this file with ``eval()`` (its ``VSVersionInfo`` text form).
    """
    numbers = file_version(version)
    strings = {
        "CompanyName": "Exitpool",
        "FileDescription": "Exitpool Agent",
        "FileVersion": version,
        "InternalName": "exitpool-agent",
        "OriginalFilename": EXE_NAME,
        "ProductName": "Exitpool Agent",
        "ProductVersion": version,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    structs = ",\n          ".join(f"StringStruct({k!r}, {v!r})" for k, v in strings.items())
    path.write_text(
        f"""# UTF-8
VSVersionInfo(
  ffi=FixedFileInfo(
    filevers={numbers!r},
    prodvers={numbers!r},
    mask=0x3F,
    flags=0x0,
    OS=0x40004,
    fileType=0x1,
    subtype=0x0,
    date=(0, 0),
  ),
  kids=[
    StringFileInfo([
      StringTable(
        '040904B0',
        [
          {structs},
        ],
      ),
    ]),
    VarFileInfo([VarStruct('Translation', [0x0409, 1200])]),
  ],
)
""",
        encoding="utf-8",
    )
    return path
