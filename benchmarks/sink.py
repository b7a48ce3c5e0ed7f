"""Upload target: reads HTTP requests with a Content-Length body, discards it, answers 200.

nginx answers a POST to a static file with 405 before reading the body, so
the upload workload needs a target that really reads every byte. One thread
per connection with ``recv_into`` a reused buffer: several GB/s on loopback,
far above any proxy measured here.

    python -m benchmarks.sink --port P [--host 127.0.0.1]
"""

from __future__ import annotations

import argparse
import socket
import threading

BUFFER = 1 << 20
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"


def serve_connection(conn: socket.socket) -> None:
    view = memoryview(bytearray(BUFFER))
    pending = b""
    with conn:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        while True:
            while b"\r\n\r\n" not in pending:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                pending += chunk
            head, _, pending = pending.partition(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            left = length - len(pending)
            pending = pending[length:] if left <= 0 else b""
            while left > 0:
                n = conn.recv_into(view, min(left, BUFFER))
                if not n:
                    return
                left -= n
            conn.sendall(OK)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    listener = socket.create_server((args.host, args.port), backlog=1024)
    print("sink ready", flush=True)
    while True:
        conn, _ = listener.accept()
        threading.Thread(target=serve_connection, args=(conn,), daemon=True).start()


if __name__ == "__main__":
    main()
