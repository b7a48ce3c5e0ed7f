"""One tray app per user: a second launch asks the first to come forward, then exits.

A local socket (a named pipe on Windows, a Unix socket elsewhere) named
after the user and the config folder. The first instance listens; a later
one connects, sends ``show`` and leaves. A socket left by a crashed instance
is detected (nobody answers) and replaced.
"""

from __future__ import annotations

import getpass
import hashlib
from pathlib import Path

from PySide6.QtCore import QObject, Signal
from PySide6.QtNetwork import QLocalServer, QLocalSocket

CONNECT_TIMEOUT_MS = 1000
"""How long a second launch waits for the first instance to answer."""
SHOW = b"show\n"


def instance_name(config_dir: Path) -> str:
    """The socket name for this user and config folder (tests use their own folders)."""
    digest = hashlib.sha256(f"{getpass.getuser()}\0{config_dir}".encode()).hexdigest()
    return f"exitpool-agent-{digest[:16]}"


class SingleInstance(QObject):
    activated = Signal()
    """Another launch asked this instance to show itself."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name
        self.server = QLocalServer(self)
        self.server.setSocketOptions(QLocalServer.SocketOption.UserAccessOption)
        self.server.newConnection.connect(self._accept)

    def claim(self) -> bool:
        """True if this is the first instance; otherwise signal the first and return False."""
        if self._tell_first():
            return False
        # Asking first matters: with owner-only access Qt moves the new socket into
        # place over an existing one, so listening first would orphan the first app.
        QLocalServer.removeServer(self.name)  # left behind by an instance that crashed
        return self.server.listen(self.name)

    def _tell_first(self) -> bool:
        socket = QLocalSocket()
        socket.connectToServer(self.name)
        if not socket.waitForConnected(CONNECT_TIMEOUT_MS):
            return False
        socket.write(SHOW)
        socket.waitForBytesWritten(CONNECT_TIMEOUT_MS)
        socket.disconnectFromServer()
        if socket.state() != QLocalSocket.LocalSocketState.UnconnectedState:
            socket.waitForDisconnected(CONNECT_TIMEOUT_MS)
        return True

    def _accept(self) -> None:
        while self.server.hasPendingConnections():
            connection = self.server.nextPendingConnection()
            # The other launch writes at once and leaves: a short blocking read is enough.
            arrived = connection.bytesAvailable() or connection.waitForReadyRead(CONNECT_TIMEOUT_MS)
            if arrived and bytes(connection.readAll().data()).startswith(SHOW.strip()):
                self.activated.emit()
            connection.abort()
            connection.deleteLater()

    def close(self) -> None:
        self.server.close()
