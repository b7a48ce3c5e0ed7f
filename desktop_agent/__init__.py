"""The Exitpool agent: a Qt-free engine (``engine/``) and the tray app over it (``ui/``)."""

from exitpool import __version__

__all__ = ["__version__"]
