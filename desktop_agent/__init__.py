"""The Exitpool agent: a Qt-free engine (``engine/``) and the tray app over it (``ui/``)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("exitpool")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+source"
