"""A TCP listener for bench/tcp_capacity.py, in its own process so that accepting thousands of
connections a second costs the harness nothing. It accepts and closes every connection.

Reads commands on standard input: `close` stops listening (connections are refused), `open`
listens again on the same port. Answers each with the CLOCK_MONOTONIC time (ns) at which it
was done; that clock is the machine's, so the bench compares it with the harness's samples.
"""

from __future__ import annotations

import contextlib
import socket
import sys
import threading
import time


class Listener:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.server: socket.socket | None = None
        self.port = 0

    def open(self) -> int:
        server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", self.port))
        server.listen(4096)
        done = time.monotonic_ns()
        server.settimeout(0.01)
        with self.lock:
            self.server, self.port = server, server.getsockname()[1]
        return done

    def close(self) -> int:
        with self.lock:
            server, self.server = self.server, None
        if server is not None:
            # shutdown stops listening at once, even while accept() waits on it in the other
            # thread (a bare close would wait for that call to return)
            with contextlib.suppress(OSError):
                server.shutdown(socket.SHUT_RDWR)
            done = time.monotonic_ns()
            server.close()
            return done
        return time.monotonic_ns()

    def accept_forever(self) -> None:
        while True:
            with self.lock:
                server = self.server
            if server is None:
                time.sleep(0.001)
                continue
            try:
                conn, _ = server.accept()
            except OSError:  # timed out, or closed under it
                continue
            conn.close()


def main() -> int:
    listener = Listener()
    listener.open()
    print(listener.port, flush=True)
    threading.Thread(target=listener.accept_forever, daemon=True).start()
    for line in sys.stdin:
        command = line.strip()
        done = listener.close() if command == "close" else listener.open()
        print(done, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
