"""The frozen agent's entry point: PyInstaller starts here, the same ``main`` as the console script.

A windowed Windows build has no console, so ``sys.stdout`` is ``None`` and
``--version`` or an error message would crash the print; they go nowhere instead.
"""

import os
import sys

from desktop_agent.cli import main

if sys.stdout is None:
    sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the process
if sys.stderr is None:
    sys.stderr = open(os.devnull, "w")  # noqa: SIM115

main()
