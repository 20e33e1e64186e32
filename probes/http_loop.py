"""`http` on the event loop (drills.loop_runner): plain http:// to an IP address, one kept-alive
connection per client, the exchange parsed by h11 (HTTP/1.1 without I/O of its own).

It sends what requests would send (probes.http_answer), keeps cookies, follows redirects on
its own host and port, and judges samples as `probes.http.HttpClient` does. Sampled on threads
instead: https:// (certificates checked as requests checks them), a host name (it would be
looked up while every other probe waits), credentials in the URL, a URL that requests would
send through a proxy, and an Accept-Encoding the loop cannot decode.
"""

from __future__ import annotations

import contextlib
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
import requests
import requests.utils

from drills.history import Outcome
from drills.probe import READ, WRITE, Exchange, LoopClient, Sample, Wait, run_to_end
from probes import http_answer as answer
from probes.http import HttpConfig
from probes.http_settings import session_for

CONNECT_TIMEOUT = "ConnectTimeout: timed out"
READ_TIMEOUT = "ReadTimeout: Read timed out"
NO_RESPONSE = "RemoteDisconnected('Remote end closed connection without response')"
CHUNKS_PER_TURN = 16  # reads of a long body before the loop gets a turn
Answer = tuple[int, dict[str, str], list[tuple[bytes, bytes]], bytes]


class _Failed(Exception):
    """The sample failed, with the detail requests' client would give."""


class HttpLoopClient(LoopClient):
    def __init__(
        self, config: HttpConfig, family: socket.AddressFamily, session: requests.Session
    ) -> None:
        url = urlsplit(config.url)
        assert url.hostname is not None
        self.config = config
        self.family = family
        self.address = (url.hostname, url.port or 80)
        self.session = session
        self.pattern = re.compile(config.body) if config.body else None
        self.base = self._prepare(config.method, config.url)
        self.sock: socket.socket | None = None
        self.conn: h11.Connection | None = None

    def warm_up(self) -> None:
        with contextlib.suppress(Exception):  # the samples will say what is wrong
            run_to_end(self._connect(time.monotonic_ns() + round(self.config.timeout * 1e9)))

    def exchange(self, seq: int) -> Exchange:
        give_up = time.monotonic_ns() + round(self.config.timeout * 1e9)
        try:
            return (yield from self._exchange(give_up))
        except (_Failed, answer.AnswerError) as failed:
            detail = str(failed)
        except h11.RemoteProtocolError as exc:
            detail = _broken(exc)
        except (OSError, h11.ProtocolError) as exc:
            detail = f"ConnectionError: ('Connection aborted.', {exc!r})"
        self.close()
        self.session = session_for(self.config)  # as the threaded client does
        self.base = self._prepare(self.config.method, self.config.url)
        return Sample(Outcome.FAIL, detail[:140])

    def _exchange(self, give_up: int) -> Generator[Wait, None, Sample]:
        url, request = self.config.url, self.base
        method: str = self.config.method
        for _ in range(answer.MAX_REDIRECTS + 1):
            status, headers, fields, body = yield from self._round_trip(url, request, give_up)
            if answer.keep_cookies(self.session, request, fields):
                self.base = self._prepare(self.config.method, self.config.url)
            hop = answer.next_hop(status, headers, url, method)
            if hop is None or not self.config.follow_redirects:
                return self._judge(status, headers, answer.decoded(headers, body))
            url, method = hop
            if urlsplit(url)[:2] != urlsplit(self.config.url)[:2]:
                raise _Failed(f"redirected to {url}: on the event loop, only to its own host")
            request = self._prepare(method, url)
        raise _Failed(f"TooManyRedirects: Exceeded {answer.MAX_REDIRECTS} redirects.")

    def _round_trip(
        self, url: str, request: requests.PreparedRequest, give_up: int
    ) -> Generator[Wait, None, Answer]:
        if self.sock is None or self.conn is None or _dropped(self.sock):
            self.close()
            yield from self._connect(give_up)
        assert self.sock is not None and self.conn is not None
        headers = [("Host", answer.host_header(url)), *request.headers.items()]
        out = h11.Request(method=request.method or "GET", target=request.path_url, headers=headers)
        data = (self.conn.send(out) or b"") + (self.conn.send(h11.EndOfMessage()) or b"")
        yield from _send(self.sock, data, give_up)
        found = yield from _answer(self.sock, self.conn, give_up)
        if h11.MUST_CLOSE in (self.conn.our_state, self.conn.their_state):
            self.close()
        else:
            self.conn.start_next_cycle()
        return found

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
            raise _Failed(f"ConnectionError: [Errno {code}] {os.strerror(code)}")

    def _prepare(self, method: str, url: str) -> requests.PreparedRequest:
        return answer.prepared(self.session, method, url, self.config.headers)

    def _judge(self, status: int, headers: dict[str, str], body: bytes) -> Sample:
        cfg = self.config
        site = headers.get(cfg.site_header.lower())
        tags = {"site": site} if site else None
        if status not in cfg.expect:
            text = answer.text(status, headers, body)
            return Sample(Outcome.FAIL, f"HTTP {status}: {text[:80]}", tags=tags)
        if self.pattern is not None and not self.pattern.search(answer.text(status, headers, body)):
            return Sample(Outcome.FAIL, f"body does not match {cfg.body!r}", tags=tags)
        return Sample(Outcome.OK, "", tags=tags)

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
        self.sock, self.conn = None, None


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


def _answer(
    sock: socket.socket, conn: h11.Connection, give_up: int
) -> Generator[Wait, None, Answer]:
    status, fields, body, reads = 0, [], bytearray(), 0
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            reads += 1
            try:
                if reads % CHUNKS_PER_TURN == 0:
                    raise BlockingIOError  # a long body: let the other probes have a turn
                conn.receive_data(sock.recv(65536))
            except BlockingIOError:
                try:
                    yield Wait(sock.fileno(), READ, give_up)
                except TimeoutError:
                    raise _Failed(READ_TIMEOUT) from None
        elif isinstance(event, h11.Response):
            status, fields = event.status_code, list(event.headers)
        elif isinstance(event, h11.Data):
            body += event.data
        elif isinstance(event, h11.EndOfMessage):
            return status, answer.joined(fields), fields, bytes(body)


def _broken(exc: h11.RemoteProtocolError) -> str:
    """requests' words for an answer cut short."""
    text = str(exc)
    if "ConnectionClosed" in text and "SEND_RESPONSE" in text:
        return f"ConnectionError: ('Connection aborted.', {NO_RESPONSE})"
    cut = re.search(r"received (\d+) bytes, expected (\d+)", text)
    if cut:
        read, more = int(cut[1]), int(cut[2]) - int(cut[1])
        short = f"IncompleteRead({read} bytes read, {more} more expected)"
        return f"ChunkedEncodingError: ('Connection broken: {short}', {short})"
    return f"ConnectionError: ('Connection aborted.', RemoteProtocolError({text!r}))"


def _dropped(sock: socket.socket) -> bool:
    """Whether a kept-alive connection was closed by the server while idle (as urllib3 checks
    before it reuses one): readable with no request outstanding means EOF or garbage."""
    poll = select.poll()
    poll.register(sock, select.POLLIN)
    return bool(poll.poll(0))


def http_loop_client(config: HttpConfig) -> HttpLoopClient | None:
    """A client for the event loop, or None when this URL must be sampled on a thread."""
    url = urlsplit(config.url)
    if url.scheme != "http" or url.hostname is None or url.username or url.password:
        return None
    try:
        address = ipaddress.ip_address(url.hostname)
        session = session_for(config)
        from_env = session.trust_env and requests.utils.get_environ_proxies(config.url)
        if session.proxies or (from_env and requests.utils.select_proxy(config.url, from_env)):
            return None  # requests would go through the proxy; so must the sample
        family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
        client = HttpLoopClient(config, family, session)
        if not answer.only_decodable(client.base):
            return None
        h11.Request(method=config.method, target=client.base.path_url, headers=[("Host", "x")])
    except (ValueError, requests.RequestException, h11.LocalProtocolError):
        return None  # a name (looked up on a thread, never on the loop), or what only requests
        # can send
    return client
