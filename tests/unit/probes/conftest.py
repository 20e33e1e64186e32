"""A tiny local HTTP server whose answers the tests choose by path, and a closed port."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from tests.unit.probes.raw_http import RawServer, Script

# path -> (status, headers, body); a `delay` header in seconds holds the answer back.
Answer = tuple[int, dict[str, str], str]
Routes = dict[str, Answer]


class _Handler(BaseHTTPRequestHandler):
    routes: ClassVar[Routes] = {}
    seen: ClassVar[list[tuple[str, str, str]]] = []

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        self.seen.append((self.command, self.path, body))
        status, headers, text = self.routes.get(self.path.split("?")[0], (404, {}, "no route"))
        time.sleep(float(headers.get("delay", 0)))
        data = text.encode()
        self.send_response(status)
        for key, value in headers.items():
            if key != "delay":
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        with contextlib.suppress(ConnectionError):  # the client gave up waiting
            self.wfile.write(data)

    do_GET = do_POST = _answer

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def http_server() -> Iterator[Callable[..., tuple[str, list[tuple[str, str, str]]]]]:
    """Start a server with the given routes (HTTP/1.0, or HTTP/1.1 keeping connections alive);
    returns its base URL and the requests it saw."""
    servers: list[ThreadingHTTPServer] = []

    def start(routes: Routes, keep_alive: bool = False) -> tuple[str, list[tuple[str, str, str]]]:
        seen: list[tuple[str, str, str]] = []
        version = "HTTP/1.1" if keep_alive else "HTTP/1.0"
        attributes = {"routes": routes, "seen": seen, "protocol_version": version}
        handler = type("Handler", (_Handler,), attributes)
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}", seen

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
def closed_port() -> int:
    """A local port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def serve() -> Iterator[Callable[[Script], RawServer]]:
    servers: list[RawServer] = []

    def start(script: Script) -> RawServer:
        servers.append(RawServer(script))
        return servers[-1]

    yield start
    for server in servers:
        server.close()
