"""The fault proxy's own defences, through its public API only (so they hold whatever the
implementation): a link that is down keeps its port (clients refused, nobody else can bind it);
links forward only where allowed and never listen on every address by default.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator

import pytest

from drills.errors import DrillsError
from drills.network.proxy import Proxy

HOST = "127.0.0.1"
UPSTREAM = (HOST, 9)  # nothing listens there: the proxy resets what it accepts


def _touch(port: int) -> None:
    """A connection that comes and goes (accepted, then reset as the upstream refuses)."""
    with contextlib.suppress(ConnectionResetError), socket.create_connection((HOST, port), 2):
        pass


@pytest.fixture
def proxy() -> Iterator[Proxy]:
    with Proxy() as p:
        yield p


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _bind(address: tuple[str, int], option: int | None) -> None:
    """Bind as another local process would, with its choice of socket option; raise if refused."""
    with socket.socket() as sock:
        if option is not None:
            sock.setsockopt(socket.SOL_SOCKET, option, 1)
        sock.bind(address)
        sock.listen(1)


OPTIONS = [None, socket.SO_REUSEADDR, socket.SO_REUSEPORT]


@pytest.mark.parametrize("option", OPTIONS, ids=["plain", "SO_REUSEADDR", "SO_REUSEPORT"])
@pytest.mark.parametrize("chosen_port", [False, True], ids=["port-0", "given-port"])
@pytest.mark.parametrize("traffic", [False, True], ids=["idle", "used"])
def test_binding_a_down_links_port_fails(
    proxy: Proxy, option: int | None, chosen_port: bool, traffic: bool
) -> None:
    port = proxy.add_link("db", UPSTREAM, (HOST, _free_port() if chosen_port else 0))
    if traffic:
        _touch(port)
    proxy.set_enabled("db", False)
    for address in ((HOST, port), ("0.0.0.0", port)):
        with pytest.raises(OSError, match="in use"):
            _bind(address, option)
    with pytest.raises(ConnectionRefusedError):  # clients see what they saw before
        socket.create_connection((HOST, port), timeout=2)


def test_a_link_comes_back_on_its_port_and_frees_it_when_removed(proxy: Proxy) -> None:
    port = proxy.add_link("db", UPSTREAM)
    for _ in range(3):
        proxy.set_enabled("db", False)
        proxy.set_enabled("db", True)
        _touch(port)
    assert proxy.snapshot()["db"]["listen"] == f"{HOST}:{port}"
    proxy.set_enabled("db", False)
    proxy.remove_link("db")
    _bind((HOST, port), socket.SO_REUSEADDR)  # released with the link


def test_a_stopped_proxy_releases_a_down_links_port() -> None:
    with Proxy() as proxy:
        port = proxy.add_link("db", UPSTREAM)
        proxy.set_enabled("db", False)
    _bind((HOST, port), socket.SO_REUSEADDR)


@pytest.mark.parametrize(
    "upstream",
    [("10.0.0.5", 5432), ("169.254.169.254", 80), ("fd00:ec2::254", 80), ("192.168.0.1", 22)],
)
def test_a_link_outside_loopback_is_refused_by_default(
    proxy: Proxy, upstream: tuple[str, int]
) -> None:
    with pytest.raises(DrillsError, match=r"refused|outside loopback"):
        proxy.add_link("db", upstream)
    assert proxy.links == {}


@pytest.mark.parametrize("listen", ["0.0.0.0", "::"])
def test_a_link_does_not_listen_on_every_address_by_default(proxy: Proxy, listen: str) -> None:
    with pytest.raises(DrillsError, match="every address"):
        proxy.add_link("db", UPSTREAM, (listen, 0))
    assert proxy.links == {}
