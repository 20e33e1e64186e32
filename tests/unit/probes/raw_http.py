"""A server of the test's own that writes its answers byte for byte (the http probes' tests)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable

# Given the request's head (bytes up to the blank line), write the answer to the connection.
Script = Callable[[socket.socket, bytes], None]


class RawServer:
    """Accepts connections one at a time; each request's head goes to the script."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.heads: list[bytes] = []
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            with conn:
                self._requests(conn)

    def _requests(self, conn: socket.socket) -> None:
        buffered = b""
        while True:
            while b"\r\n\r\n" not in buffered:
                data = conn.recv(65536)
                if not data:
                    return
                buffered += data
            head, buffered = buffered.split(b"\r\n\r\n", 1)
            self.heads.append(head)
            self.script(conn, head)
            if conn.fileno() < 0:
                return

    def headers(self, index: int) -> dict[str, str]:
        lines = self.heads[index].decode("latin-1").split("\r\n")[1:]
        return {k.lower(): v.strip() for k, v in (line.split(":", 1) for line in lines)}

    def close(self) -> None:
        self.server.close()


def reply(status: str, headers: dict[str, str], body: bytes = b"") -> Script:
    def script(conn: socket.socket, head: bytes) -> None:
        fields = {"Content-Length": str(len(body))} | headers
        lines = [f"HTTP/1.1 {status}", *(f"{k}: {v}" for k, v in fields.items()), "", ""]
        conn.sendall("\r\n".join(lines).encode("latin-1") + body)

    return script
