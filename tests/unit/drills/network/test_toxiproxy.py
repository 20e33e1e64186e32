"""The Toxiproxy-compatible API of drills' proxy, driven by drills' Toxiproxy client."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from drills.network.api import ApiServer
from drills.network.proxy import Proxy, ProxyError
from drills.network.toxics import Toxic
from drills.network.toxiproxy import ToxiproxyClient


@pytest.fixture
def echo() -> Iterator[int]:
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(2)
                try:
                    while data := conn.recv(4096):
                        conn.sendall(data)
                except OSError:
                    pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield int(server.getsockname()[1])
    stop.set()
    thread.join(timeout=2)
    server.close()


TOKEN = "unit-test-token-0123456789"


@pytest.fixture
def api() -> Iterator[tuple[Proxy, ToxiproxyClient]]:
    events: list[tuple[str, str]] = []
    with Proxy(lambda link, change, _: events.append((link, change))) as proxy:
        server = ApiServer(proxy, token=TOKEN)
        server.start()
        try:
            yield proxy, ToxiproxyClient(server.url, token=TOKEN)
        finally:
            server.stop()


def _roundtrip(port: int, timeout: float = 1.0) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(b"ping")
        return sock.recv(16)


def test_create_toxic_heal_reset_delete(api: tuple[Proxy, ToxiproxyClient], echo: int) -> None:
    proxy, client = api
    assert "drills-proxy" in client.version()
    created = client.create("db", "127.0.0.1:0", f"127.0.0.1:{echo}")
    port = int(created["listen"].rsplit(":", 1)[1])
    assert created["upstream"] == f"127.0.0.1:{echo}" and created["enabled"] is True
    assert _roundtrip(port) == b"ping"

    client.add_toxic("db", Toxic("hold", "timeout", "downstream"))
    assert [t["name"] for t in client.proxies()["db"]["toxics"]] == ["hold"]
    with pytest.raises(TimeoutError):
        _roundtrip(port, timeout=0.3)
    client.heal("db")
    assert client.proxies()["db"]["toxics"] == []
    assert _roundtrip(port) == b"ping"

    client.set_enabled("db", False)
    with pytest.raises(ConnectionRefusedError):
        _roundtrip(port)
    client.reset()
    assert client.proxies()["db"]["enabled"] is True
    assert _roundtrip(port) == b"ping"

    client.delete("db")
    assert client.proxies() == {}
    assert proxy.links == {}


def test_errors_come_back_as_proxy_errors(api: tuple[Proxy, ToxiproxyClient], echo: int) -> None:
    _, client = api
    with pytest.raises(ProxyError, match="404"):
        client.set_enabled("nope", False)
    client.create("db", "127.0.0.1:0", f"127.0.0.1:{echo}")
    with pytest.raises(ProxyError, match="409"):
        client.create("db", "127.0.0.1:0", f"127.0.0.1:{echo}")
    with pytest.raises(ProxyError, match="404"):
        client.remove_toxic("db", "missing")
    response = client.session.post(
        f"{client.url}/proxies/db/toxics", json={"type": "explode"}, timeout=5
    )
    assert response.status_code == 400 and "unknown toxic type" in response.json()["error"]
    with pytest.raises(ProxyError, match="toxiproxy at"):
        ToxiproxyClient("http://127.0.0.1:9").proxies()


def test_toxic_json_matches_toxiproxy_shape(api: tuple[Proxy, ToxiproxyClient], echo: int) -> None:
    _, client = api
    client.create("db", "127.0.0.1:0", f"127.0.0.1:{echo}")
    body = {
        "name": "lag",
        "type": "latency",
        "stream": "upstream",
        "toxicity": 1.0,
        "attributes": {"latency": 50, "jitter": 5},
    }
    response = client.session.post(f"{client.url}/proxies/db/toxics", json=body, timeout=5)
    assert response.status_code == 200
    assert response.json() == {**body, "attributes": {"latency": 50.0, "jitter": 5.0}}
    got = client.session.get(f"{client.url}/proxies/db/toxics/lag", timeout=5).json()
    assert got["attributes"]["latency"] == 50.0
