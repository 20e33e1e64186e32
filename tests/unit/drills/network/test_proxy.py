"""The fault proxy against real sockets on 127.0.0.1: an echo server behind one or two links.

Every client socket has a timeout and every loop is bounded in count and time, so a proxy
that misbehaves fails a test instead of hanging it.
"""

from __future__ import annotations

import os
import socket
import statistics
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from drills.network.proxy import Proxy, ProxyError
from drills.network.toxics import Toxic

HOST = "127.0.0.1"
Connect = Callable[[int], socket.socket]
Event = tuple[str, str, int]


class EchoServer:
    """Echoes every byte back on each connection; closes its side when the peer does."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((HOST, 0))
        self.sock.listen(64)
        self.sock.settimeout(0.05)
        self.addr: tuple[str, int] = (HOST, self.sock.getsockname()[1])
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._conns: set[socket.socket] = set()
        self._deadline = time.monotonic() + 120  # a hard bound on every loop below

    def start(self) -> None:
        thread = threading.Thread(target=self._accept_loop, name="echo-accept", daemon=True)
        thread.start()
        self._threads.append(thread)

    def open_connections(self) -> int:
        with self._lock:
            return len(self._conns)

    def _running(self) -> bool:
        return not self._stopping.is_set() and time.monotonic() < self._deadline

    def _accept_loop(self) -> None:
        while self._running():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self._conns.add(conn)
                thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
                self._threads.append(thread)
            thread.start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            while self._running():
                conn.settimeout(0.05)
                try:
                    data = conn.recv(65536)
                except TimeoutError:
                    continue
                except OSError:
                    return
                if not data:
                    return
                conn.settimeout(5)
                try:
                    conn.sendall(data)
                except OSError:
                    return
        finally:
            with self._lock:
                self._conns.discard(conn)
            conn.close()

    def stop(self) -> None:
        self._stopping.set()
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(timeout=2)
        self.sock.close()
        with self._lock:
            for conn in self._conns:
                conn.close()
            self._conns.clear()
        assert not any(t.is_alive() for t in threads), "echo server threads did not stop"


# -- helpers --------------------------------------------------------------------------------


def recv_exact(sock: socket.socket, n: int, within: float = 5.0) -> bytes:
    buf = bytearray()
    deadline = time.monotonic() + within
    for _ in range(n + 1):  # each pass reads at least one byte or leaves the loop
        if len(buf) >= n:
            break
        if time.monotonic() > deadline:
            raise AssertionError(f"only {len(buf)} of {n} bytes within {within} s")
        chunk = sock.recv(min(65536, n - len(buf)))
        if not chunk:
            raise AssertionError(f"connection closed after {len(buf)} of {n} bytes")
        buf += chunk
    return bytes(buf)


def round_trip(sock: socket.socket, payload: bytes = b"ping") -> float:
    start = time.monotonic()
    sock.sendall(payload)
    assert recv_exact(sock, len(payload)) == payload
    return time.monotonic() - start


def wait_end(sock: socket.socket, within: float = 1.0) -> tuple[str, float]:
    """Wait for the connection to end; return how ('reset' or 'eof') and after how long."""
    start = time.monotonic()
    sock.settimeout(within)
    for _ in range(100):
        try:
            data = sock.recv(65536)
        except ConnectionResetError:
            return "reset", time.monotonic() - start
        except TimeoutError:
            break
        if not data:
            return "eof", time.monotonic() - start
        if time.monotonic() - start > within:
            break
    raise AssertionError(f"the connection did not end within {within} s")


def poll(condition: Callable[[], bool], within: float = 2.0) -> bool:
    deadline = time.monotonic() + within
    for _ in range(int(within / 0.01) + 1):
        if condition():
            return True
        if time.monotonic() > deadline:
            break
        time.sleep(0.01)
    return condition()


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def proxy_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "fault-proxy"]


# -- fixtures -------------------------------------------------------------------------------


@pytest.fixture
def echo() -> Iterator[EchoServer]:
    server = EchoServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def events() -> list[Event]:
    return []


@pytest.fixture
def proxy(events: list[Event]) -> Iterator[Proxy]:
    lock = threading.Lock()

    def record(link: str, change: str, ns: int) -> None:
        with lock:
            events.append((link, change, ns))

    p = Proxy(on_change=record)
    p.start()
    try:
        yield p
    finally:
        p.stop()


@pytest.fixture
def link(proxy: Proxy, echo: EchoServer) -> int:
    return proxy.add_link("db", upstream=echo.addr)


@pytest.fixture
def connect() -> Iterator[Connect]:
    socks: list[socket.socket] = []

    def _connect(port: int) -> socket.socket:
        sock = socket.create_connection((HOST, port), timeout=5)
        socks.append(sock)
        return sock

    try:
        yield _connect
    finally:
        for sock in socks:
            sock.close()


# -- pass-through -------------------------------------------------------------------------


def test_pass_through_both_ways(link: int, connect: Connect) -> None:
    sock = connect(link)
    for i in range(5):
        msg = f"hello {i}".encode()
        sock.sendall(msg)
        assert recv_exact(sock, len(msg)) == msg


def test_one_megabyte_is_echoed_intact(link: int, connect: Connect) -> None:
    payload = os.urandom(1 << 20)
    sock = connect(link)
    sender = threading.Thread(target=sock.sendall, args=(payload,), daemon=True)
    sender.start()
    assert recv_exact(sock, len(payload)) == payload
    sender.join(timeout=5)
    assert not sender.is_alive()


def test_half_close_passes_through(link: int, connect: Connect) -> None:
    sock = connect(link)
    sock.sendall(b"last words")
    sock.shutdown(socket.SHUT_WR)
    assert recv_exact(sock, 10) == b"last words"
    how, _ = wait_end(sock)
    assert how == "eof"


# -- link down ------------------------------------------------------------------------------


def test_link_down_refuses_and_resets_then_comes_back(
    proxy: Proxy, link: int, connect: Connect
) -> None:
    sock = connect(link)
    round_trip(sock)

    proxy.set_enabled("db", False)
    with pytest.raises(ConnectionRefusedError):
        connect(link)
    _, took = wait_end(sock, within=1.0)
    assert took < 0.5
    assert proxy.connections("db") == 0
    assert proxy.snapshot()["db"]["enabled"] is False

    proxy.set_enabled("db", True)
    again = connect(link)  # the same port
    round_trip(again, b"back again")
    assert proxy.snapshot()["db"]["enabled"] is True


# -- blackhole (timeout toxic) ------------------------------------------------------------


def test_blackhole_holds_then_releases_intact(proxy: Proxy, link: int, connect: Connect) -> None:
    sock = connect(link)
    round_trip(sock)
    proxy.add_toxic("db", Toxic("hole", "timeout", "downstream", attributes={"timeout": 0}))

    payload = os.urandom(200_000)
    sock.sendall(payload)
    sock.settimeout(0.3)
    with pytest.raises(TimeoutError):
        sock.recv(65536)
    sock.settimeout(5)

    proxy.remove_toxic("db", "hole")
    assert recv_exact(sock, len(payload)) == payload
    round_trip(sock)


def test_blackhole_upstream_holds_the_request(proxy: Proxy, link: int, connect: Connect) -> None:
    proxy.add_toxic("db", Toxic("hole", "timeout", "upstream", attributes={"timeout": 0}))
    sock = connect(link)
    sock.sendall(b"request")
    sock.settimeout(0.3)
    with pytest.raises(TimeoutError):
        sock.recv(65536)
    sock.settimeout(5)
    proxy.remove_toxic("db", "hole")
    assert recv_exact(sock, 7) == b"request"


def test_blackhole_with_timeout_closes_the_connection(
    proxy: Proxy, link: int, connect: Connect
) -> None:
    sock = connect(link)
    round_trip(sock)
    proxy.add_toxic("db", Toxic("hole", "timeout", "downstream", attributes={"timeout": 200}))
    sock.sendall(b"anyone there?")
    _, took = wait_end(sock, within=2.0)
    assert 0.15 <= took <= 0.6, took
    assert poll(lambda: proxy.connections("db") == 0)


# -- latency ----------------------------------------------------------------------------------


def median_round_trip(sock: socket.socket, samples: int = 3) -> float:
    return statistics.median(round_trip(sock, f"sample {i}".encode()) for i in range(samples))


def test_latency_downstream_only(proxy: Proxy, link: int, connect: Connect) -> None:
    sock = connect(link)
    assert median_round_trip(sock) < 0.05  # no toxic: fast
    proxy.add_toxic("db", Toxic("slow", "latency", "downstream", attributes={"latency": 100}))
    rtt = median_round_trip(sock)
    assert 0.090 <= rtt <= 0.160, rtt


def test_latency_both_directions_adds_up(proxy: Proxy, link: int, connect: Connect) -> None:
    sock = connect(link)
    proxy.add_toxic("db", Toxic("up", "latency", "upstream", attributes={"latency": 50}))
    proxy.add_toxic("db", Toxic("down", "latency", "downstream", attributes={"latency": 100}))
    rtt = median_round_trip(sock)
    assert 0.140 <= rtt <= 0.220, rtt


def test_jitter_keeps_byte_order(proxy: Proxy, link: int, connect: Connect) -> None:
    for stream in ("upstream", "downstream"):
        proxy.add_toxic(
            "db",
            Toxic(f"jitter_{stream}", "latency", stream, attributes={"latency": 20, "jitter": 20}),
        )
    sock = connect(link)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    count = 40
    for i in range(count):
        sock.sendall(f"{i:04d};".encode())
        time.sleep(0.002)  # separate chunks, so each gets its own random delay
    got = recv_exact(sock, 5 * count).decode()
    assert got.split(";")[:-1] == [f"{i:04d}" for i in range(count)]


# -- bandwidth ------------------------------------------------------------------------------


def test_bandwidth_limits_the_rate(proxy: Proxy, link: int, connect: Connect) -> None:
    proxy.add_toxic("db", Toxic("narrow", "bandwidth", "downstream", attributes={"rate": 100}))
    sock = connect(link)
    payload = os.urandom(50_000)
    start = time.monotonic()
    sock.sendall(payload)
    assert recv_exact(sock, len(payload)) == payload
    took = time.monotonic() - start
    assert 0.4 <= took <= 2.0, took


# -- reset_peer -------------------------------------------------------------------------------


def test_reset_peer_resets_an_open_connection(proxy: Proxy, link: int, connect: Connect) -> None:
    sock = connect(link)
    round_trip(sock)
    start = time.monotonic()
    proxy.add_toxic("db", Toxic("rst", "reset_peer", "downstream", attributes={"timeout": 100}))
    how, _ = wait_end(sock, within=2.0)
    took = time.monotonic() - start
    assert how == "reset"
    assert 0.08 <= took <= 0.6, took
    assert poll(lambda: proxy.connections("db") == 0)


def test_reset_peer_resets_new_connections_too(proxy: Proxy, link: int, connect: Connect) -> None:
    proxy.add_toxic("db", Toxic("rst", "reset_peer", "downstream", attributes={"timeout": 100}))
    start = time.monotonic()
    sock = connect(link)
    round_trip(sock)  # usable until the timeout
    how, _ = wait_end(sock, within=2.0)
    took = time.monotonic() - start
    assert how == "reset"
    assert 0.08 <= took <= 0.6, took


# -- heal and reset ---------------------------------------------------------------------------


def spoil(proxy: Proxy, name: str) -> None:
    proxy.add_toxic(name, Toxic("slow", "latency", "downstream", attributes={"latency": 500}))
    proxy.add_toxic(name, Toxic("hole", "timeout", "upstream", attributes={"timeout": 0}))
    proxy.set_enabled(name, False)


def test_heal_removes_toxics_and_enables(proxy: Proxy, link: int, connect: Connect) -> None:
    spoil(proxy, "db")
    assert len(proxy.snapshot()["db"]["toxics"]) == 2
    proxy.heal("db")
    state = proxy.snapshot()["db"]
    assert state["enabled"] is True
    assert state["toxics"] == []
    assert median_round_trip(connect(link)) < 0.05


def test_heal_releases_held_data(proxy: Proxy, link: int, connect: Connect) -> None:
    sock = connect(link)
    proxy.add_toxic("db", Toxic("hole", "timeout", "downstream"))
    sock.sendall(b"held")
    sock.settimeout(0.2)
    with pytest.raises(TimeoutError):
        sock.recv(16)
    sock.settimeout(5)
    proxy.heal("db")
    assert recv_exact(sock, 4) == b"held"


def test_reset_heals_every_link(proxy: Proxy, echo: EchoServer, connect: Connect) -> None:
    ports = {name: proxy.add_link(name, upstream=echo.addr) for name in ("a", "b")}
    for name in ports:
        spoil(proxy, name)
    proxy.reset()
    for name, port in ports.items():
        state = proxy.snapshot()[name]
        assert state["enabled"] is True and state["toxics"] == []
        assert median_round_trip(connect(port)) < 0.05


# -- on_change --------------------------------------------------------------------------------


def test_on_change_reports_every_change_in_order(
    proxy: Proxy, link: int, events: list[Event]
) -> None:
    assert [(n, c.split()[0]) for n, c, _ in events] == [("db", "created")]

    before = time.monotonic_ns()
    proxy.set_enabled("db", False)
    after = time.monotonic_ns()
    proxy.set_enabled("db", False)  # no change, no event
    proxy.set_enabled("db", True)
    proxy.add_toxic("db", Toxic("slow", "latency", "downstream", attributes={"latency": 10}))
    proxy.add_toxic("db", Toxic("hole", "timeout", "upstream"))
    proxy.remove_toxic("db", "slow")
    proxy.heal("db")  # removes "hole"; the link is already up
    proxy.remove_link("db")

    changes = [c for _, c, _ in events]
    assert len(changes) == 8, changes
    assert changes[1:3] == ["down", "up"]
    assert changes[3].startswith("+latency downstream slow")
    assert changes[4].startswith("+timeout upstream hole")
    assert changes[5:] == ["-slow", "-hole", "removed"]
    assert all(n == "db" for n, _, _ in events)

    times = [t for _, _, t in events]
    assert times == sorted(times)
    down = times[1]
    assert before <= down <= after


# -- errors -------------------------------------------------------------------------------------


def test_errors(proxy: Proxy, link: int, echo: EchoServer) -> None:
    toxic = Toxic("slow", "latency", attributes={"latency": 10})
    with pytest.raises(ProxyError):
        proxy.set_enabled("nope", False)
    with pytest.raises(ProxyError):
        proxy.add_toxic("nope", toxic)
    with pytest.raises(ProxyError):
        proxy.heal("nope")
    with pytest.raises(ProxyError):
        proxy.connections("nope")
    with pytest.raises(ProxyError):
        proxy.remove_link("nope")
    with pytest.raises(ProxyError):
        proxy.remove_toxic("db", "nope")
    with pytest.raises(ProxyError):
        proxy.add_link("db", upstream=echo.addr)

    proxy.add_toxic("db", toxic)
    with pytest.raises(ProxyError):
        proxy.add_toxic("db", Toxic("slow", "bandwidth", attributes={"rate": 1}))
    assert [t["type"] for t in proxy.snapshot()["db"]["toxics"]] == ["latency"]


def test_toxic_validation() -> None:
    with pytest.raises(ValueError):
        Toxic("x", "packet_loss")
    with pytest.raises(ValueError):
        Toxic("x", "latency", stream="sideways")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        Toxic("x", "latency", toxicity=1.5)


def test_stopped_proxy_refuses_calls() -> None:
    proxy = Proxy()
    with pytest.raises(ProxyError):
        proxy.add_link("db", upstream=(HOST, 1))


# -- no leaks -----------------------------------------------------------------------------------


def test_closed_clients_leave_no_connections(proxy: Proxy, link: int, connect: Connect) -> None:
    socks = [connect(link) for _ in range(5)]
    for sock in socks:
        round_trip(sock)
    assert proxy.connections("db") == 5
    for sock in socks:
        sock.close()
    assert poll(lambda: proxy.connections("db") == 0), proxy.connections("db")


@pytest.mark.parametrize("close_clients_first", [True, False], ids=["closed", "open-at-stop"])
def test_stop_leaves_no_thread_and_no_descriptors(
    echo: EchoServer, close_clients_first: bool
) -> None:
    assert proxy_threads() == []
    fds_before = open_fds()

    proxy = Proxy()
    socks: list[socket.socket] = []
    try:
        proxy.start()
        port = proxy.add_link("db", upstream=echo.addr)
        other = proxy.add_link("other", upstream=echo.addr)
        for p in (port, port, other):
            sock = socket.create_connection((HOST, p), timeout=5)
            socks.append(sock)
            round_trip(sock)
        proxy.add_toxic("db", Toxic("hole", "timeout", "downstream"))
        socks[0].sendall(b"held at stop")
        proxy.set_enabled("other", False)  # resets the connection to "other"
        wait_end(socks[2])
        proxy.set_enabled("other", True)
        if close_clients_first:
            # A blackhole holds a connection whose client has closed until the toxic goes.
            proxy.remove_toxic("db", "hole")
            for sock in socks:
                sock.close()
            assert poll(lambda: proxy.connections("db") == 0)
    finally:
        proxy.stop()
        for sock in socks:
            sock.close()

    assert poll(lambda: proxy_threads() == []), "the proxy thread is still running"
    assert poll(lambda: echo.open_connections() == 0), "upstream connections left open"
    assert poll(lambda: open_fds() == fds_before), (fds_before, open_fds())
