"""`http` on the event loop (drills.loop_runner): plain http:// to an IP address, one kept-alive
connection per client, the exchange parsed by h11 (HTTP/1.1 without I/O of its own).

Samples are judged as `probes.http.HttpClient` judges them. Sampled on threads instead:
https:// (certificate checks as requests makes them), a host name (it would be looked up while
every other probe waits) and a URL that requests would send through a proxy.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import re
import select
import socket
import time
from collections.abc import Generator
from urllib.parse import urlsplit

import h11
import requests.utils

from drills.history import Outcome
from drills.probe import READ, WRITE, Exchange, LoopClient, Sample, Wait
from probes.http import HttpConfig

CONNECT_TIMEOUT = "ConnectTimeout: timed out"
READ_TIMEOUT = "ReadTimeout: Read timed out"
Steps = Generator[Wait, None, Sample]


class _Failed(Exception):
    """The sample failed, with the detail requests' client would give."""


class HttpLoopClient(LoopClient):
    def __init__(self, config: HttpConfig, family: socket.AddressFamily) -> None:
        url = urlsplit(config.url)
        assert url.hostname is not None
        self.config = config
        self.family = family
        self.address = (url.hostname, url.port or 80)
        self.request = h11.Request(
            method=config.method,
            target=(url.path or "/") + (f"?{url.query}" if url.query else ""),
            headers=_headers(config, url.netloc),
        )
        self.pattern = _pattern(config)
        self.sock: socket.socket | None = None
        self.conn: h11.Connection | None = None

    def exchange(self, seq: int) -> Exchange:
        give_up = time.monotonic_ns() + round(self.config.timeout * 1e9)
        try:
            return (yield from self._exchange(give_up))
        except _Failed as failed:
            self.close()
            return Sample(Outcome.FAIL, str(failed))
        except (OSError, h11.ProtocolError) as exc:
            self.close()
            return Sample(Outcome.FAIL, f"ConnectionError: {_reason(exc)}")

    def _exchange(self, give_up: int) -> Steps:
        if self.sock is None or self.conn is None or _dropped(self.sock):
            self.close()
            yield from self._connect(give_up)
        assert self.sock is not None and self.conn is not None
        yield from self._send(self.sock, self.conn.send(self.request) or b"", give_up)
        yield from self._send(self.sock, self.conn.send(h11.EndOfMessage()) or b"", give_up)
        status, headers, body = yield from self._answer(self.sock, self.conn, give_up)
        if h11.MUST_CLOSE in (self.conn.our_state, self.conn.their_state):
            self.close()
        else:
            self.conn.start_next_cycle()
        return self._judge(status, headers, body)

    def _connect(self, give_up: int) -> Generator[Wait, None, None]:
        sock = socket.socket(self.family, socket.SOCK_STREAM)
        self.sock, self.conn = sock, h11.Connection(h11.CLIENT)
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        code = sock.connect_ex(self.address)
        if code in (errno.EINPROGRESS, errno.EINTR):
            try:
                yield Wait(sock.fileno(), WRITE, give_up)
            except TimeoutError:
                raise _Failed(CONNECT_TIMEOUT) from None
            code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if code:
            raise OSError(code, os.strerror(code))

    @staticmethod
    def _send(sock: socket.socket, data: bytes, give_up: int) -> Generator[Wait, None, None]:
        view = memoryview(data)
        while view:
            try:
                view = view[sock.send(view) :]
            except BlockingIOError:
                try:
                    yield Wait(sock.fileno(), WRITE, give_up)
                except TimeoutError:
                    raise _Failed(READ_TIMEOUT) from None

    @staticmethod
    def _answer(
        sock: socket.socket, conn: h11.Connection, give_up: int
    ) -> Generator[Wait, None, tuple[int, dict[str, str], bytes]]:
        status, headers, body = 0, {}, bytearray()
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                try:
                    conn.receive_data(sock.recv(65536))
                except BlockingIOError:
                    try:
                        yield Wait(sock.fileno(), READ, give_up)
                    except TimeoutError:
                        raise _Failed(READ_TIMEOUT) from None
            elif isinstance(event, h11.Response):
                status = event.status_code
                headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in event.headers}
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                return status, headers, bytes(body)
            elif isinstance(event, h11.ConnectionClosed):
                raise _Failed("ConnectionError: the server closed the connection mid-answer")

    def _judge(self, status: int, headers: dict[str, str], body: bytes) -> Sample:
        cfg = self.config
        site = headers.get(cfg.site_header.lower())
        tags = {"site": site} if site else None
        text = _text(headers, body)
        if status not in cfg.expect:
            return Sample(Outcome.FAIL, f"HTTP {status}: {text[:80]}", tags=tags)
        if self.pattern is not None and not self.pattern.search(text):
            return Sample(Outcome.FAIL, f"body does not match {cfg.body!r}", tags=tags)
        return Sample(Outcome.OK, "", tags=tags)

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
        self.sock, self.conn = None, None


def http_loop_client(config: HttpConfig) -> HttpLoopClient | None:
    """A client for the event loop, or None when this URL must be sampled on a thread."""
    url = urlsplit(config.url)
    if url.scheme != "http" or url.hostname is None:
        return None
    try:
        address = ipaddress.ip_address(url.hostname)
    except ValueError:
        return None  # a name: looked up on a worker thread, never on the loop
    if requests.utils.get_environ_proxies(config.url):
        return None  # requests would go through the proxy; so must the sample
    family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
    return HttpLoopClient(config, family)


def _headers(config: HttpConfig, netloc: str) -> list[tuple[str, str]]:
    """requests' default headers (no compression asked for), then the probe's own."""
    merged = {
        "host": netloc,
        "user-agent": requests.utils.default_user_agent(),
        "accept": "*/*",
        "connection": "keep-alive",
    }
    if config.method not in ("GET", "HEAD"):
        merged["content-length"] = "0"  # as requests sends a request without a body
    merged.update({k.lower(): v for k, v in config.headers.items()})
    return list(merged.items())


def _pattern(config: HttpConfig) -> re.Pattern[str] | None:
    return re.compile(config.body) if config.body else None


def _text(headers: dict[str, str], body: bytes) -> str:
    encoding = requests.utils.get_encoding_from_headers(headers) or "utf-8"
    try:
        return body.decode(encoding, errors="replace")
    except LookupError:  # a charset Python does not know
        return body.decode("utf-8", errors="replace")


def _dropped(sock: socket.socket) -> bool:
    """Whether a kept-alive connection was closed by the server while idle (as urllib3 checks
    before it reuses one): readable with no request outstanding means EOF or garbage."""
    poll = select.poll()
    poll.register(sock, select.POLLIN)
    return bool(poll.poll(0))


def _reason(exc: Exception) -> str:
    if isinstance(exc, OSError) and exc.errno is not None:
        return f"[Errno {exc.errno}] {exc.strerror}"
    return str(exc) or type(exc).__name__
