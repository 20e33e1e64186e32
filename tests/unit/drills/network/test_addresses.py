"""Where links may forward and listen: the policy, and its check again at every connection."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterator

import pytest

import drills.network.addresses as addresses
from drills.network.addresses import (
    IP,
    AddressPolicy,
    AddressRefused,
    normal_host,
    split_endpoint,
    static_refusal,
)
from drills.network.proxy import Proxy

ip = ipaddress.ip_address
METADATA = ["169.254.169.254", "fd00:ec2::254", "::ffff:169.254.169.254", "100.100.100.200"]


@pytest.mark.parametrize("address", METADATA)
def test_metadata_addresses_are_refused_by_any_name_and_any_allow_list(address: str) -> None:
    policy = AddressPolicy.from_entries(["0.0.0.0/0", "::/0", "innocent.example:80"])
    with pytest.raises(AddressRefused, match="metadata"):
        policy.check_upstream("innocent.example", 80, [ip(address)])  # what DNS said
    with pytest.raises(AddressRefused, match="metadata"):
        policy.check_upstream("innocent.example", 80, [ip("127.0.0.1"), ip(address)])


@pytest.mark.parametrize(
    "name", ["metadata.google.internal", "METADATA.google.internal.", "metadata", "x.metadata.goog"]
)
def test_metadata_names_are_refused_without_resolving(name: str) -> None:
    assert static_refusal(name) is not None
    assert static_refusal("metadata-service.example") is None


def test_loopback_passes_and_everything_else_needs_an_entry() -> None:
    policy = AddressPolicy()
    policy.check_upstream("localhost", 5432, [ip("127.0.0.1"), ip("::1")])
    policy.check_upstream("127.0.0.2", 5432, [ip("127.0.0.2")])
    with pytest.raises(AddressRefused, match="outside loopback"):
        policy.check_upstream("db.example", 5432, [ip("127.0.0.1"), ip("10.0.0.5")])
    with pytest.raises(AddressRefused):
        policy.check_upstream("db.example", 5432, [])
    declared = policy.declaring([("DB.example.", 5432)])
    declared.check_upstream("db.example", 5432, [ip("10.0.0.5")])
    with pytest.raises(AddressRefused):
        declared.check_upstream("db.example", 5433, [ip("10.0.0.5")])
    cidr = AddressPolicy.from_entries(["10.0.0.0/8", "2001:db8::/32"])
    cidr.check_upstream("anything", 1, [ip("10.9.8.7"), ip("2001:db8::5")])


def test_allow_list_entries_are_parsed_or_rejected() -> None:
    policy = AddressPolicy.from_entries(["10.0.0.5", "[2001:db8::1]:5432", "db:5432"])
    assert policy.endpoints == {("2001:db8::1", 5432), ("db", 5432)}
    assert [str(n) for n in policy.networks] == ["10.0.0.5/32"]
    for bad in ("db", "db:port", "10.0.0.0/40", "db:99999"):
        with pytest.raises(ValueError):
            AddressPolicy.from_entries([bad])


def test_spellings() -> None:
    assert split_endpoint("[::1]:80") == ("::1", 80)
    assert normal_host("[0:0::1]") == "::1" and normal_host("LocalHost.") == "localhost"


def test_wildcard_listen_needs_the_allowance() -> None:
    for host in ("0.0.0.0", "::", ""):
        with pytest.raises(AddressRefused, match="every address"):
            AddressPolicy().check_listen(host)
        AddressPolicy(wildcard_listen=True).check_listen(host)
    AddressPolicy().check_listen("127.0.0.1")


# -- DNS rebinding: checked again at every connection -------------------------------------


@pytest.fixture
def upstream() -> Iterator[socket.socket]:
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(1.0)
    try:
        yield server
    finally:
        server.close()


def test_a_name_that_resolves_to_metadata_later_is_refused_at_connect(
    upstream: socket.socket, monkeypatch: pytest.MonkeyPatch
) -> None:
    answers: list[IP] = [ip("127.0.0.1")]

    async def fake_resolve(host: str, port: int) -> list[IP]:
        assert host == "rebind.example"
        return list(answers)

    monkeypatch.setattr(addresses, "resolve", fake_resolve)
    far = int(upstream.getsockname()[1])
    with Proxy(policy=AddressPolicy().declaring([("rebind.example", far)])) as proxy:
        port = proxy.add_link("db", ("rebind.example", far))
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            upstream.settimeout(5.0)  # a busy machine may take a while to forward it
            accepted, _ = upstream.accept()  # forwarded while the name pointed at loopback
            upstream.settimeout(1.0)
            accepted.close()
        answers[:] = [ip("169.254.169.254")]  # now the name points at the metadata service
        assert _refused(port)  # reset, or closed first: either way nothing went through
        with pytest.raises(TimeoutError):
            upstream.accept()  # never forwarded


def _refused(port: int) -> bool:
    """The proxy resets a refused connection at once: on a busy machine the reset can come
    before `connect` has returned, and then `connect` raises it."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
            sock.settimeout(2)
            return _closed(sock)
    except ConnectionResetError:
        return True


def _closed(sock: socket.socket) -> bool:
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True
