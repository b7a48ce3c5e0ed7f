"""Exitpool's version: the one place it is written.

The package metadata (``pyproject.toml`` reads it as a dynamic attribute), the
agent's ``--version``, its About dialog and HELLO, the installers and the admin
page all take it from here, so a frozen agent (PyInstaller, no package
metadata) reports the same number as an installed one.
"""

__version__ = "0.2.0"
