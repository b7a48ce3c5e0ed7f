"""The Windows installer recipe, checked on any OS (ISCC itself runs only on Windows).

The .iss is read the way ISCC reads it, as far as this script needs: ISPP's
``#define``/``#ifndef``/``#error`` and ``{#Name}``, then sections of
``Key=Value`` directives and ``Name: value; ...`` entries. What the tests
compare it with is the real thing: the app's autostart constants and the
agent's pre-configuration file name.
"""

from __future__ import annotations

import ast
import re
import stat
from pathlib import Path, PureWindowsPath
from typing import Any

import pytest

from desktop_agent.engine.preconfig import PRECONFIG_FILE
from desktop_agent.ui.autostart import APP_NAME, RUN_KEY_PATH, Autostart
from exitpool import __version__
from installer.windows.build import (
    EXE_NAME,
    ISS_FILE,
    build_setup,
    file_version,
    find_iscc,
    iscc_command,
    setup_name,
    version_file,
)

REPO = Path(__file__).resolve().parents[2]
APP_ID = "{{0935A665-BB23-4930-841A-62C429607492}"
"""Pinned: a new AppId would install a second copy instead of upgrading the first."""
BUNDLE = REPO / "dist" / "exitpool-agent"
"""Where the PyInstaller spec puts the one-folder bundle (installer/README.md)."""
VERSIONS = {"AppVersion": "9.8.7", "FileVersion": "9.8.7.0"}


class IssError(Exception):
    """An ``#error`` the script raised while being preprocessed."""


def preprocess(text: str, defines: dict[str, str]) -> str:
    """ISPP, as much of it as this script uses; ``{#Name}`` of an undefined name raises KeyError."""
    defines = dict(defines)
    skipping: list[bool] = []
    lines = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("#"):
            word, _, rest = stripped[1:].partition(" ")
            rest = rest.strip()
            if word == "ifndef":
                skipping.append(rest in defines)
            elif word == "if":
                # The one #if is the compiler-version guard, which a current ISCC passes.
                skipping.append(True)
            elif word == "endif":
                skipping.pop()
            elif any(skipping):
                continue
            elif word == "define":
                name, _, value = rest.partition(" ")
                defines[name] = value.strip().strip('"')
            elif word == "error":
                raise IssError(rest)
            continue
        if not any(skipping):
            lines.append(re.sub(r"\{#(\w+)\}", lambda m: defines[m.group(1)], line))
    assert not skipping, "an #if without #endif"
    return "\n".join(lines)


def sections(text: str) -> dict[str, list[str]]:
    """Section name → its lines, without blank lines and ``;`` comments (kept in [Code])."""
    found: dict[str, list[str]] = {}
    current = ""
    for line in text.splitlines():
        stripped = line.strip()
        header = re.fullmatch(r"\[(\w+)\]", stripped)
        if header:
            current = header.group(1)
            found.setdefault(current, [])
        elif current == "Code" or (stripped and not stripped.startswith(";")):
            found.setdefault(current, []).append(line)
    return found


def entry(line: str) -> dict[str, str]:
    """``Name: "a;b"; Flags: x y`` → ``{"Name": "a;b", "Flags": "x y"}`` (``""`` is one quote)."""
    parts, current, quoted = [], "", False
    for char in line:
        if char == '"':
            quoted = not quoted
        if char == ";" and not quoted:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    params = {}
    for part in filter(str.strip, parts):
        name, _, value = part.partition(":")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1].replace('""', '"')
        params[name.strip()] = value
    return params


def iss(**defines: str) -> dict[str, list[str]]:
    return sections(preprocess(ISS_FILE.read_text(encoding="ascii"), {**VERSIONS, **defines}))


def setup() -> dict[str, str]:
    return dict(line.split("=", 1) for line in iss()["Setup"])


def entries(section: str) -> list[dict[str, str]]:
    return [entry(line) for line in iss()[section]]


def code() -> str:
    return "\n".join(iss()["Code"])


def test_it_is_plain_ascii_because_iscc_reads_a_script_without_bom_as_ansi() -> None:
    ISS_FILE.read_bytes().decode("ascii")


def test_it_refuses_to_compile_without_the_version_from_the_build() -> None:
    text = ISS_FILE.read_text(encoding="ascii")
    with pytest.raises(IssError, match="AppVersion"):
        preprocess(text, {})
    with pytest.raises(IssError, match="FileVersion"):
        preprocess(text, {"AppVersion": "9.8.7"})
    assert re.search(r"^#ifndef AppVersion\n\s*#error ", text, re.MULTILINE)


def test_it_writes_no_version_number_of_its_own() -> None:
    text = ISS_FILE.read_text(encoding="ascii")
    assert __version__ not in text
    assert not re.search(r"#define (AppVersion|FileVersion)", text)
    script = [line for line in text.splitlines() if not re.match(r"\s*(;|#error )", line)]
    dotted = set(re.findall(r"\d+(?:\.\d+)+", "\n".join(script)))
    assert dotted == {"10.0"}, "only MinVersion (Windows 10) may be a dotted number"
    assert setup()["AppVersion"] == "9.8.7"
    assert setup()["VersionInfoVersion"] == "9.8.7.0"


def test_it_names_the_setup_the_way_the_build_looks_for_it() -> None:
    assert f"{setup()['OutputBaseFilename']}.exe" == setup_name("9.8.7")


def test_it_installs_per_user_without_administrator_rights() -> None:
    assert setup()["PrivilegesRequired"] == "lowest"
    assert setup()["DefaultDirName"] == r"{autopf}\Exitpool Agent"


def test_it_keeps_its_app_id_a_stable_guid() -> None:
    assert setup()["AppId"] == APP_ID
    assert re.fullmatch(r"\{\{[0-9A-F]{8}(-[0-9A-F]{4}){3}-[0-9A-F]{12}\}", APP_ID)


def test_it_packs_the_one_folder_bundle_the_spec_builds() -> None:
    text = ISS_FILE.read_text(encoding="ascii")
    (default,) = re.findall(r'^\s*#define BundleDir "(.*)"$', text, re.MULTILINE)
    assert (ISS_FILE.parent / PureWindowsPath(default).as_posix()).resolve() == BUNDLE
    assert EXE_NAME == "exitpool-agent.exe"
    files = [entry(line) for line in iss(BundleDir=r"C:\build\dist\exitpool-agent")["Files"]]
    assert files[0]["Source"] == r"C:\build\dist\exitpool-agent\*"
    assert files[0]["DestDir"] == "{app}"
    assert {"recursesubdirs", "createallsubdirs"} <= set(files[0]["Flags"].split())


def test_it_names_only_source_files_that_exist_in_the_repository() -> None:
    icon = PureWindowsPath(setup()["SetupIconFile"]).as_posix()
    assert (ISS_FILE.parent / icon).resolve() == REPO / "resources/icons/ico/exitpool-agent.ico"
    assert (ISS_FILE.parent / icon).is_file()
    for files in entries("Files"):
        source = files["Source"]
        built = source.startswith("..\\..\\dist")
        if not built and "external" not in files.get("Flags", ""):
            assert (ISS_FILE.parent / PureWindowsPath(source).as_posix()).exists(), source


def test_it_starts_at_login_with_the_same_run_value_the_app_writes() -> None:
    (run,) = [e for e in entries("Registry") if e.get("Subkey") == RUN_KEY_PATH]
    assert run["Root"] == "HKCU"
    assert run["ValueName"] == APP_NAME
    assert run["Tasks"] == "startatlogin"
    assert "uninsdeletevalue" in run["Flags"].split()

    app = r"C:\Users\Office Worker\AppData\Local\Programs\Exitpool Agent"

    class MemoryRunKey(dict[str, str]):
        def set(self, name: str, value: str) -> None:
            self[name] = value

        def delete(self, name: str) -> None:
            self.pop(name, None)

    registry = MemoryRunKey()
    Autostart([f"{app}\\{EXE_NAME}"], system="Windows", registry=registry).enable()
    assert run["ValueData"].replace("{app}", app) == registry[APP_NAME]


def test_it_removes_the_run_value_on_uninstall_even_when_the_app_wrote_it() -> None:
    assert f"RegDeleteValue(HKEY_CURRENT_USER, '{RUN_KEY_PATH}', '{APP_NAME}')" in code()


def test_it_offers_the_start_at_login_task_checked_and_the_desktop_icon_unchecked() -> None:
    tasks = {e["Name"]: e for e in entries("Tasks")}
    assert "Flags" not in tasks["startatlogin"]
    assert tasks["desktopicon"]["Flags"] == "unchecked"
    assert any("Start Exitpool Agent when I log in" in line for line in iss()["CustomMessages"])


def test_it_adds_a_start_menu_entry_and_offers_to_launch_the_agent() -> None:
    icons = {e["Name"]: e for e in entries("Icons")}
    assert icons[r"{autoprograms}\Exitpool Agent"]["Filename"] == rf"{{app}}\{EXE_NAME}"
    assert icons[r"{autodesktop}\Exitpool Agent"]["Tasks"] == "desktopicon"
    (launch,) = entries("Run")
    assert launch["Filename"] == rf"{{app}}\{EXE_NAME}"
    assert {"postinstall", "nowait"} <= set(launch["Flags"].split())


def test_it_copies_the_preconfiguration_from_beside_the_setup_or_from_the_config_switch() -> None:
    _bundle, beside, switch = entries("Files")
    assert beside["Source"] == rf"{{src}}\{PRECONFIG_FILE}"
    assert beside["DestDir"] == "{app}"
    assert {"external", "skipifsourcedoesntexist"} <= set(beside["Flags"].split())
    assert beside["Check"] == "not HasConfigParam"
    assert switch["Source"] == "{code:ConfigParam}"
    assert switch["DestName"] == PRECONFIG_FILE
    assert switch["Check"] == "HasConfigParam"
    assert "ExpandConstant('{param:CONFIG}')" in code()


def test_it_stops_the_running_agent_before_replacing_or_removing_its_files() -> None:
    assert f"'/F /IM {EXE_NAME}'" in code()
    assert (
        "function PrepareToInstall(var NeedsRestart: Boolean): String;\nbegin\n  StopAgent;"
        in code()
    )
    assert "CurUninstallStep = usUninstall then\n    StopAgent;" in code()


def test_it_compiles_with_the_version_the_bundle_and_the_output_folder() -> None:
    command = iscc_command(Path("ISCC.exe"), Path("b"), Path("out"), "0.2.0")
    assert command == [
        "ISCC.exe",
        "/DAppVersion=0.2.0",
        "/DFileVersion=0.2.0.0",
        "/DBundleDir=b",
        "/Oout",
        str(ISS_FILE),
    ]


@pytest.mark.parametrize(
    ("version", "numbers"),
    [("0.2.0", (0, 2, 0, 0)), ("1.2", (1, 2, 0, 0)), ("1.2.3.4.5", (1, 2, 3, 4)),
     ("0.3.0rc1", (0, 3, 0, 0))],
)  # fmt: skip
def test_it_turns_the_version_into_four_windows_numbers(
    version: str, numbers: tuple[int, ...]
) -> None:
    assert file_version(version) == numbers


@pytest.mark.parametrize("version", ["dev", "1.65536.0"])
def test_it_refuses_a_version_windows_cannot_hold(version: str) -> None:
    with pytest.raises(ValueError):
        file_version(version)


def test_it_finds_iscc_on_path_or_in_the_inno_setup_folder(tmp_path: Path) -> None:
    assert find_iscc({"PATH": str(tmp_path)}) is None
    installed = tmp_path / "Program Files (x86)" / "Inno Setup 6" / "ISCC.exe"
    installed.parent.mkdir(parents=True)
    installed.touch()
    env = {"PATH": str(tmp_path), "ProgramFiles(x86)": str(installed.parents[1])}
    assert find_iscc(env) == installed
    on_path = tmp_path / "bin" / "ISCC.exe"
    on_path.parent.mkdir()
    on_path.touch(mode=0o755 | stat.S_IEXEC)
    assert find_iscc({**env, "PATH": str(on_path.parent)}) == on_path


def test_it_says_what_is_missing_instead_of_running_iscc(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(FileNotFoundError, match="PyInstaller"):
        build_setup(tmp_path, tmp_path / "out", "0.2.0")
    (tmp_path / EXE_NAME).touch()
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    for name in ("ProgramFiles(x86)", "ProgramFiles", "LOCALAPPDATA"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(FileNotFoundError, match="Inno Setup"):
        build_setup(tmp_path, tmp_path / "out", "0.2.0")


def test_it_writes_a_version_resource_pyinstaller_can_read(tmp_path: Path) -> None:
    """PyInstaller ``eval()``s this file with its own classes; stand-ins record what it gets."""

    def record(name: str) -> Any:
        return lambda *args, **kwargs: (name, args, kwargs)

    names = ["VSVersionInfo", "FixedFileInfo", "StringFileInfo", "StringTable",
             "StringStruct", "VarFileInfo", "VarStruct"]  # fmt: skip
    text = version_file(__version__, tmp_path / "version.txt").read_text(encoding="utf-8")
    ast.parse(text, mode="eval")
    info = eval(text, {name: record(name) for name in names})

    name, _, kwargs = info
    assert name == "VSVersionInfo"
    _, _, fixed = kwargs["ffi"]
    assert fixed["filevers"] == fixed["prodvers"] == file_version(__version__)
    strings = {args[0]: args[1] for kind, args, _ in _calls(info) if kind == "StringStruct"}
    assert strings["ProductVersion"] == strings["FileVersion"] == __version__
    assert strings["OriginalFilename"] == EXE_NAME


def _calls(node: Any) -> list[Any]:
    """Every recorded call below ``node``, depth first."""
    found = []
    if isinstance(node, tuple) and len(node) == 3 and isinstance(node[0], str):
        found.append(node)
        node = [*node[1], *node[2].values()]
    if isinstance(node, list | tuple):
        for child in node:
            found.extend(_calls(child))
    return found
