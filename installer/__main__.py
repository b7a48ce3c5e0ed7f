"""``python -m installer build [--dist DIR] [--bundle-only]``."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from installer.build import DIST, WORK, build


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m installer")
    commands = parser.add_subparsers(dest="command", required=True)
    build_command = commands.add_parser("build", help="build every installer this OS can build")
    build_command.add_argument("--dist", type=Path, default=DIST, help="where results go")
    build_command.add_argument("--work", type=Path, default=WORK, help="scratch folder")
    build_command.add_argument(
        "--bundle-only", action="store_true", help="only the PyInstaller bundle"
    )
    args = parser.parse_args(argv)
    try:
        report = build(args.dist.resolve(), args.work.resolve(), args.bundle_only)
    except (FileNotFoundError, subprocess.CalledProcessError) as exc:
        print(f"installer: {exc}", file=sys.stderr)
        return 1
    print("\n".join(report.lines()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
