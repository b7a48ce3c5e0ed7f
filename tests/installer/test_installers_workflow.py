"""The CI workflow that builds the installers (it runs on GitHub's runners, never here).

What can be checked here: it parses, each OS has its job, each job builds
with the same command a developer runs, and it uploads the file the build
names — a pattern that matched nothing would only show up on the runner.
"""

from __future__ import annotations

from fnmatch import fnmatch
from pathlib import Path
from typing import Any

import pytest
import yaml

from exitpool import __version__
from installer.macos.build import dmg_name
from installer.windows.build import setup_name

WORKFLOW = Path(__file__).resolve().parents[2] / ".github" / "workflows" / "installers.yml"


def jobs() -> dict[str, Any]:
    workflow = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    # YAML 1.1 reads the key `on` as the boolean true.
    assert workflow.get("on", workflow.get(True))
    jobs: dict[str, Any] = workflow["jobs"]
    return jobs


def runs(job: str) -> list[str]:
    return [step["run"].strip() for step in jobs()[job]["steps"] if "run" in step]


def upload(job: str) -> str:
    (step,) = [s for s in jobs()[job]["steps"] if s.get("uses", "").startswith("actions/upload")]
    assert step["with"]["if-no-files-found"] == "error"
    path: str = step["with"]["path"]
    return path


@pytest.mark.parametrize(
    ("job", "runner", "command"),
    [
        ("windows", "windows-latest", "python -m installer build"),
        ("macos", "macos-latest", "python -m installer build"),
        ("linux", "ubuntu-latest", "make installer"),
    ],
)
def test_it_builds_each_installer_with_the_local_build_command(
    job: str, runner: str, command: str
) -> None:
    assert jobs()[job]["runs-on"] == runner
    assert command in runs(job)
    python = [s for s in jobs()[job]["steps"] if s.get("uses", "").startswith("actions/setup-py")]
    assert python[0]["with"]["python-version"] == "3.11"


def test_it_installs_the_agent_and_pyinstaller_where_it_runs_pyinstaller_itself() -> None:
    for job in ("windows", "macos"):
        assert 'python -m pip install ".[desktop]" pyinstaller' in runs(job)


def test_it_installs_inno_setup_only_when_the_build_would_not_find_it() -> None:
    (step,) = [run for run in runs("windows") if "choco install innosetup" in run]
    assert "find_iscc()" in step


def test_it_uploads_the_files_the_build_writes() -> None:
    assert fnmatch(f"dist/{setup_name(__version__)}", upload("windows"))
    assert fnmatch(f"dist/{dmg_name(__version__)}", upload("macos"))
    assert upload("linux") == "dist/*.deb"
