import socket

import pytest

from drills.network import ports
from drills.network.ports import free_port


def test_a_port_is_picked_below_the_ephemeral_range_where_the_kernel_never_picks() -> None:
    port = free_port()
    assert ports.LOWEST <= port < ports.ephemeral_low()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))  # free


def test_a_port_is_never_given_twice_in_one_process() -> None:
    picked = [free_port() for _ in range(300)]
    assert len(set(picked)) == len(picked)


def test_a_port_something_listens_on_is_not_picked(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        monkeypatch.setattr(ports, "LOWEST", taken)
        monkeypatch.setattr(ports, "ephemeral_low", lambda: taken + 1000)
        assert free_port() != taken


def test_without_room_below_the_ephemeral_range_the_kernel_picks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(ports, "ephemeral_low", lambda: ports.LOWEST + 10)
    port = free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))
