"""Talking to the proxy port with bare sockets, for tests that must see exactly what a user sees.

``requests`` hides how a connection ended; these helpers report it: a clean end (``"eof"``),
a reset (``"reset"``) or nothing more within the timeout (``"timeout"``).
"""

from __future__ import annotations

import base64
import contextlib
import socket
import threading
import time

from tests.support.processes import ServerProcess


def basic_auth(user: str, password: str) -> str:
    """The value of a ``Proxy-Authorization`` header for ``user:password``."""
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def connect(server: ServerProcess, timeout: float = 10.0) -> socket.socket:
    """A TCP connection to the server's proxy port."""
    return socket.create_connection(("127.0.0.1", server.proxy_port), timeout=timeout)


def open_tunnel(
    server: ServerProcess, user: str, password: str, authority: str, timeout: float = 10.0
) -> tuple[socket.socket, bytes]:
    """A CONNECT tunnel to ``authority`` left open: the socket and the proxy's answer head.

    The head is what arrived up to the blank line (less, if the proxy closed first).
    """
    sock = connect(server, timeout)
    sock.sendall(
        f"CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n"
        f"Proxy-Authorization: {basic_auth(user, password)}\r\n\r\n".encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(4096)
        if not chunk:
            break
        head += chunk
    return sock, head


def read_to_end(sock: socket.socket, timeout: float = 10.0) -> tuple[bytes, str]:
    """Everything the peer sends until it closes, and how it closed: eof, reset or timeout.

    ``timeout`` bounds the whole read, not each ``recv``.
    """
    received = bytearray()
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return bytes(received), "timeout"
        sock.settimeout(left)
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return bytes(received), "reset"
        except TimeoutError:
            return bytes(received), "timeout"
        if not chunk:
            return bytes(received), "eof"
        received += chunk


def exchange(server: ServerProcess, payload: bytes, timeout: float = 10.0) -> tuple[bytes, str]:
    """Send ``payload`` on a new proxy connection; what comes back and how the connection ended."""
    with connect(server, timeout) as sock:
        sock.sendall(payload)
        return read_to_end(sock, timeout)


def status_of(answer: bytes) -> int:
    """The status code of a raw HTTP response (0 if ``answer`` is not one)."""
    line = answer.split(b"\r\n", 1)[0].split()
    return int(line[1]) if len(line) >= 2 and line[0].startswith(b"HTTP/") else 0


def header_of(answer: bytes, name: str) -> str | None:
    """One header's value from a raw HTTP response head."""
    head = answer.split(b"\r\n\r\n", 1)[0].decode("latin-1")
    for line in head.split("\r\n")[1:]:
        key, _, value = line.partition(":")
        if key.strip().lower() == name.lower():
            return value.strip()
    return None


class BackgroundDownload(threading.Thread):
    """A GET through the proxy read as fast as it comes, in a thread, on a bare socket.

    ``received`` counts body and head bytes so far; ``ended`` says how the connection ended
    (eof, reset, timeout) once it has, and ``ended_at`` when. ``stop()`` closes it early.
    """

    def __init__(self, server: ServerProcess, user: str, password: str, url: str) -> None:
        super().__init__(daemon=True)
        host = url.split("/")[2]
        self.request = (
            f"GET {url} HTTP/1.1\r\nHost: {host}\r\n"
            f"Proxy-Authorization: {basic_auth(user, password)}\r\n\r\n"
        ).encode()
        self.sock = connect(server)
        self.received = 0
        self.ended: str | None = None
        self.ended_at = 0.0
        self._stopping = False

    def run(self) -> None:
        self.sock.sendall(self.request)
        self.sock.settimeout(60)
        try:
            while chunk := self.sock.recv(65536):
                self.received += len(chunk)
            ended = "eof"
        except ConnectionResetError:
            ended = "reset"
        except OSError:
            ended = "timeout"
        self.ended = "stopped" if self._stopping else ended
        self.ended_at = time.monotonic()

    def stop(self) -> None:
        """Close the connection from our side and wait for the thread."""
        self._stopping = True
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes the blocked recv; close would not
        self.join(10)
        self.sock.close()
